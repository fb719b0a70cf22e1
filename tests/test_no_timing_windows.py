"""The test suite never races the clock: no test sleeps and then looks (a timing window that a loaded or a fast
machine misses), and no test asserts how long something took. Tests synchronise on events the code provides
(test-only stop switches, pidfds, markers in a stream); a wait for a condition that stays true once reached (a
file, a process state) is a ``while`` loop with a deadline, which a slow machine only makes slower.

The rule is read from the source (AST), so a new test that sleeps-then-asserts fails here, not at random in CI."""

from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")

CLOCKS = {"monotonic", "time", "perf_counter", "process_time", "monotonic_ns", "time_ns", "perf_counter_ns"}

#: (file under tests/, function) -> why a sleep outside a polling loop is not a wait for a race
SLEEP_ALLOWED = {
    ("data/data_fixtures.py", "MockLLM.answer"): "the mock LLM server's switch that makes it answer slowly",
}
#: (file under tests/, function) -> why an assertion reads the clock (none left: a test asserts what happened, never
#: how fast)
CLOCK_ASSERT_ALLOWED: dict[tuple[str, str], str] = {}


def _test_files() -> list[str]:
    found = []
    for folder, dirs, files in os.walk(TESTS):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        found += [os.path.relpath(os.path.join(folder, f), TESTS) for f in sorted(files) if f.endswith(".py")]
    return found


def _is_clock_call(node: ast.AST, names: set[str]) -> bool:
    """``time.monotonic()`` and friends, or a bare ``monotonic()`` imported from time."""
    if not isinstance(node, ast.Call):
        return False
    fn = node.func
    if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name) and fn.value.id == "time":
        return fn.attr in CLOCKS
    return isinstance(fn, ast.Name) and fn.id in names & CLOCKS


def _is_sleep(node: ast.AST, names: set[str]) -> bool:
    if not isinstance(node, ast.Call):
        return False
    fn = node.func
    if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name):
        return fn.attr == "sleep" and fn.value.id in ("time", "asyncio")
    return isinstance(fn, ast.Name) and fn.id == "sleep" and "sleep" in names


class _Finder(ast.NodeVisitor):
    """Sleeps outside a ``while`` loop and assertions that read the clock, with the function they are in."""

    def __init__(self, from_time: set[str]):
        self.from_time = from_time
        self.scope: list[str] = []
        self.loops: list[int] = [0]  # ``while`` loops open in the current function
        self.sleeps: list[tuple[str, int]] = []
        self.clock_asserts: list[tuple[str, int]] = []

    def _function(self, node):
        self.scope.append(node.name)
        self.loops.append(0)
        self.generic_visit(node)
        self.loops.pop()
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node):
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_While(self, node):
        self.loops[-1] += 1
        self.generic_visit(node)
        self.loops[-1] -= 1

    def visit_Call(self, node):
        if _is_sleep(node, self.from_time) and not self.loops[-1]:
            self.sleeps.append((".".join(self.scope), node.lineno))
        self.generic_visit(node)

    def visit_Assert(self, node):
        if any(_is_clock_call(sub, self.from_time) for sub in ast.walk(node.test)):
            self.clock_asserts.append((".".join(self.scope), node.lineno))
        self.generic_visit(node)


def _scan(rel: str) -> _Finder:
    with open(os.path.join(TESTS, rel), encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), rel)
    from_time = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                 and node.module in ("time", "asyncio") for alias in node.names}
    finder = _Finder(from_time)
    finder.visit(tree)
    return finder


@pytest.mark.parametrize("rel", _test_files())
def test_no_sleep_then_look_and_no_clock_in_assertions(rel):
    finder = _scan(rel)
    sleeps = [f"tests/{rel}:{line} ({fn or 'module'}) sleeps outside a polling loop" for fn, line in finder.sleeps
              if (rel, fn) not in SLEEP_ALLOWED]
    clocks = [f"tests/{rel}:{line} ({fn or 'module'}) asserts on the clock" for fn, line in finder.clock_asserts
              if (rel, fn) not in CLOCK_ASSERT_ALLOWED]
    assert not sleeps + clocks, ("; ".join(sleeps + clocks) + ": synchronise on an event the code provides (a "
                                 "test-only stop switch, a pidfd, a marker in the output) instead of a timing window")


SAMPLES = {
    "sleep_then_look": ("import time\ndef test_x(p):\n    p.start()\n    time.sleep(1)\n    assert p.done\n", 1, 0),
    "bare_sleep_import": "from time import sleep\ndef test_x():\n    sleep(0.5)\n",
    "asyncio_sleep": "import asyncio\nasync def test_x():\n    await asyncio.sleep(1)\n",
    "in_a_for_loop": "import time\ndef test_x(p):\n    for _ in range(9):\n        time.sleep(0.1)\n    assert p.ok\n",
    "clock_assert": (("import time\ndef test_x(f):\n    t = time.monotonic()\n    f()\n"
                      "    assert time.monotonic() - t < 5\n"), 0, 1),
    "aliased_clock": "from time import perf_counter\ndef test_x(f):\n    assert perf_counter() > 0\n",
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_rule_catches_each_shape_of_a_timing_window(name, tmp_path, monkeypatch):
    sample = SAMPLES[name]
    code, sleeps, clocks = sample if isinstance(sample, tuple) else (sample, None, None)
    (tmp_path / "t.py").write_text(code)
    monkeypatch.setitem(globals(), "TESTS", str(tmp_path))
    finder = _scan("t.py")
    assert finder.sleeps or finder.clock_asserts, name
    if sleeps is not None:
        assert (len(finder.sleeps), len(finder.clock_asserts)) == (sleeps, clocks)


def test_a_deadline_bounded_wait_for_a_lasting_condition_is_allowed(tmp_path, monkeypatch):
    (tmp_path / "t.py").write_text(
        "import time\ndef wait(pred):\n    deadline = time.monotonic() + 60\n    while not pred():\n"
        "        if time.monotonic() > deadline:\n            raise TimeoutError\n        time.sleep(0.1)\n")
    monkeypatch.setitem(globals(), "TESTS", str(tmp_path))
    finder = _scan("t.py")
    assert finder.sleeps == [] and finder.clock_asserts == []
