"""The unbiased pass@k estimator (Chen et al., 2021, "Evaluating Large Language Models Trained on Code").

For one problem with ``n`` samples of which ``c`` pass, pass@k = 1 - C(n-c, k) / C(n, k): the probability that at
least one of ``k`` samples drawn without replacement from the ``n`` passes. Binomial coefficients overflow floats
for realistic ``n``, so it is computed as the product ``1 - prod_{i=n-c+1}^{n} (1 - k / i)``, which is exact in
exact arithmetic and stable in floating point. It is only defined for ``k <= n``; the benchmark score is the mean
over problems.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


class PassKError(ValueError):
    """pass@k was asked for with impossible counts (k > n, c > n, negative numbers)."""


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with ``n`` samples, ``c`` of them correct."""
    for name, value in (("n", n), ("c", c), ("k", k)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise PassKError(f"pass@k needs integer {name}, got {value!r}")
    if n < 1 or k < 1 or c < 0:
        raise PassKError(f"pass@k needs n >= 1, k >= 1 and c >= 0 (got n={n}, c={c}, k={k})")
    if c > n:
        raise PassKError(f"{c} correct samples out of {n} is impossible")
    if k > n:
        raise PassKError(f"pass@{k} needs at least {k} samples per problem, but there are only {n}; "
                         f"sample more (--n {k}) or drop k={k}")
    if n - c < k:  # every draw of k samples contains a correct one
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def mean_pass_at_k(counts: Mapping[str, tuple[int, int]], ks: Sequence[int]) -> dict[int, float]:
    """Mean pass@k over problems; ``counts`` maps problem → (n, c). Every problem must have ``n >= k``."""
    if not counts:
        raise PassKError("no scored problems: pass@k is undefined")
    check_ks(ks, min(n for n, _ in counts.values()))
    return {k: sum(pass_at_k(n, c, k) for n, c in counts.values()) / len(counts) for k in ks}


def check_ks(ks: Iterable[int], n: int) -> list[int]:
    """Validate requested k values against the samples per problem; returns them sorted, de-duplicated."""
    ks = sorted(set(ks))
    if not ks:
        raise PassKError("no k requested: pass e.g. --k 1,5,10")
    if ks[0] < 1:
        raise PassKError(f"k must be >= 1, got {ks[0]}")
    too_big = [k for k in ks if k > n]
    if too_big:
        raise PassKError(
            f"pass@{too_big[0]} is undefined with n={n} samples per problem (needs k <= n): "
            f"raise --n to at least {max(too_big)} or drop k={','.join(map(str, too_big))}"
        )
    return ks


def parse_ks(text: str) -> list[int]:
    """``"1,5,10"`` → ``[1, 5, 10]`` with a clear error."""
    try:
        ks = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise PassKError(f"--k must be a comma-separated list of integers such as 1,5,10, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise PassKError(f"--k must list positive integers such as 1,5,10, got {text!r}")
    return sorted(set(ks))
