"""pass@k against the exact combinatorial formula 1 - C(n-c, k) / C(n, k)."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import pytest

from verirl.eval.passk import PassKError, check_ks, mean_pass_at_k, parse_ks, pass_at_k


def exact(n: int, c: int, k: int) -> Fraction:
    return 1 - Fraction(comb(n - c, k), comb(n, k))


@pytest.mark.parametrize("n", [1, 2, 5, 10, 20, 37])
def test_matches_exact_formula_for_every_c_and_k(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(float(exact(n, c, k)), abs=1e-12), (n, c, k)


def test_edge_cases():
    assert pass_at_k(10, 0, 1) == 0.0          # c = 0
    assert pass_at_k(10, 0, 10) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0         # c = n
    assert pass_at_k(10, 10, 10) == 1.0
    assert pass_at_k(10, 7, 5) == 1.0          # n - c < k: every draw holds a correct sample
    assert pass_at_k(10, 6, 5) == 1.0          # n - c = 4 < k = 5
    assert pass_at_k(10, 5, 5) == pytest.approx(float(exact(10, 5, 5)))  # n - c == k: not yet certain
    assert pass_at_k(10, 5, 5) < 1.0
    assert pass_at_k(2, 1, 1) == pytest.approx(0.5)   # human-eval's known answer


def test_large_n_is_stable():
    # C(1000, 500) overflows a float; the product form does not
    value = pass_at_k(1000, 3, 500)
    assert value == pytest.approx(float(exact(1000, 3, 500)), rel=1e-9)
    assert 0.0 <= pass_at_k(1000, 1, 1) == pytest.approx(0.001)


def test_k_greater_than_n_is_an_error_with_advice():
    with pytest.raises(PassKError, match=r"pass@5 needs at least 5 samples"):
        pass_at_k(3, 1, 5)
    with pytest.raises(PassKError, match=r"raise --n to at least 10"):
        check_ks([1, 5, 10], 4)
    with pytest.raises(PassKError):
        pass_at_k(3, 4, 1)                     # c > n
    with pytest.raises(PassKError):
        pass_at_k(3, 1, 0)


def test_mean_over_problems():
    counts = {"a": (4, 0), "b": (4, 4), "c": (4, 2)}
    result = mean_pass_at_k(counts, [1, 2])
    assert result[1] == pytest.approx((0 + 1 + 0.5) / 3)
    assert result[2] == pytest.approx((0 + 1 + float(exact(4, 2, 2))) / 3)
    with pytest.raises(PassKError):
        mean_pass_at_k(counts, [5])


def test_parse_ks():
    assert parse_ks("10,1,5,1") == [1, 5, 10]
    for bad in ("", "1,x", "0", "-1"):
        with pytest.raises(PassKError):
            parse_ks(bad)
