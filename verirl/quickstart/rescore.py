"""Check a quickstart run's recorded verdicts: re-score every held-out sample with ``verirl score``.

``python -m verirl.quickstart.rescore runs/quickstart`` feeds each ``eval/<checkpoint>[.<split>].jsonl`` of the run,
with the split's tasks from ``data/``, through the ``verirl score`` command (the same code path a user runs by hand)
and compares pass/fail, failure class and reward row by row. Exit status 0 when every verdict re-scores identically,
1 otherwise (the differing rows are listed; a difference in which either side timed out is marked as such, since a
simulation timeout depends on the machine's load).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile

logger = logging.getLogger(__name__)

#: reward values are compared to this precision (they are computed by the same code; floats round-trip JSON)
REWARD_TOLERANCE = 1e-9


def _lines(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def eval_files(run_dir: str) -> list[tuple[str, str]]:
    """(eval file, tasks file) of every recorded held-out evaluation of the run."""
    folder = os.path.join(run_dir, "eval")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{run_dir} has no eval/ folder; is it a `verirl quickstart` run folder?")
    out = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".jsonl"):
            continue
        parts = name[: -len(".jsonl")].split(".")
        split = parts[1] if len(parts) > 1 else "test"
        tasks = os.path.join(run_dir, "data", f"{split}.jsonl")
        if not os.path.exists(tasks):
            raise FileNotFoundError(f"{name} needs {tasks}, which is missing")
        out.append((os.path.join(folder, name), tasks))
    return out


def compare(recorded: list[dict], rescored: list[dict]) -> list[dict]:
    """Rows whose verdict differs: pass/fail, failure class, or reward."""
    if len(recorded) != len(rescored):
        raise ValueError(f"re-scoring returned {len(rescored)} rows for {len(recorded)} recorded ones")
    diffs = []
    for i, (a, b) in enumerate(zip(recorded, rescored)):
        if a["task_id"] != b["task_id"]:
            raise ValueError(f"row {i}: task ids out of order ({a['task_id']} vs {b['task_id']})")
        same_reward = (a["reward"] is None) == (b["reward"] is None) and (
            a["reward"] is None or abs(a["reward"] - b["reward"]) <= REWARD_TOLERANCE)
        if bool(a["passed"]) != bool(b["passed"]) or a["failure"] != b["failure"] or not same_reward:
            diffs.append({"row": i, "task_id": a["task_id"], "recorded": [a["passed"], a["failure"], a["reward"]],
                          "rescored": [b["passed"], b["failure"], b["reward"]],
                          "timeout": "timeout" in (a["failure"], b["failure"])})
    return diffs


def rescore_run(run_dir: str, *, workers: int | None = None) -> dict[str, dict]:
    """Re-score every eval file of ``run_dir`` with ``verirl score``; per file: rows and differing rows."""
    from verirl.cli import main as verirl_main

    report = {}
    with tempfile.TemporaryDirectory(prefix="verirl-rescore-") as tmp:
        for eval_path, tasks_path in eval_files(run_dir):
            out = os.path.join(tmp, os.path.basename(eval_path))
            argv = ["score", "--tasks", tasks_path, "--completions", eval_path, "--out", out]
            if workers:
                argv += ["--workers", str(workers)]
            code = verirl_main(argv)
            if code != 0:
                raise RuntimeError(f"verirl score failed on {eval_path} (exit {code})")
            recorded = _lines(eval_path)
            report[os.path.relpath(eval_path, run_dir)] = {"rows": len(recorded),
                                                            "differences": compare(recorded, _lines(out))}
    return report


#: simulation timeout floor of the timeout audit (the default floor is 0.3 s, which a loaded machine can exceed)
AUDIT_MIN_TIMEOUT = 10.0


def audit_timeouts(run_dir: str, *, workers: int | None = None) -> dict:
    """Re-simulate every recorded ``timeout`` verdict with a ``AUDIT_MIN_TIMEOUT`` floor.

    A candidate that still times out really hangs (an infinite loop, a clock-free ``always``); one that now ends
    with another verdict was a spurious timeout caused by load. One that cannot be re-simulated now (the machine is
    too loaded even for the wall-clock backstop, a tool fault) proves neither: it is counted as ``unchecked``.
    Returns counts, the spurious rows and the unchecked ones.
    """
    from rewards.hierarchy import RewardConfig
    from rewards.pool import RewardPool
    from rewards.simulate import SimLimits
    from rewards.task import load_tasks

    rows = []
    for eval_path, tasks_path in eval_files(run_dir):
        tasks = load_tasks(tasks_path)
        rows += [(os.path.relpath(eval_path, run_dir), i, r, tasks[str(r["task_id"])])
                 for i, r in enumerate(_lines(eval_path)) if r["failure"] == "timeout"]
    config = RewardConfig(sim=SimLimits(min_timeout=AUDIT_MIN_TIMEOUT, max_timeout=max(20.0, AUDIT_MIN_TIMEOUT)))
    with RewardPool(config, workers=workers) as pool:
        scores = pool.score([(task, r["completion"]) for _, _, r, task in rows]) if rows else []
    found: dict[str, list] = {"spurious": [], "unchecked": []}
    for (f, i, r, _), s in zip(rows, scores):
        if s.failure != "timeout":
            found["spurious" if s.scorable else "unchecked"].append(
                {"file": f, "row": i, "task_id": r["task_id"], "now": [s.passed, s.failure]})
    return {"timeouts": len(rows), **found}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verirl.quickstart.rescore", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="the quickstart run folder (--out of `verirl quickstart`)")
    parser.add_argument("--workers", type=int, help="parallel scoring jobs (default: verirl score's)")
    parser.add_argument("--audit-timeouts", action="store_true",
                        help=f"instead, re-simulate the recorded timeouts with a {AUDIT_MIN_TIMEOUT:g} s floor and "
                             f"report those that were spurious (load)")
    args = parser.parse_args(argv)
    if args.audit_timeouts:
        try:
            audit = audit_timeouts(args.run_dir, workers=args.workers)
        except (OSError, ValueError) as exc:
            print(f"rescore: error: {exc}", file=sys.stderr)
            return 2
        for item in audit["spurious"][:20]:
            print(f"{item['file']} row {item['row']} ({item['task_id']}): timeout → {item['now']}")
        for item in audit["unchecked"][:20]:
            print(f"{item['file']} row {item['row']} ({item['task_id']}): not re-checked ({item['now'][1]})")
        print(f"{audit['timeouts']} recorded timeouts, {len(audit['spurious'])} spurious (no timeout with a "
              f"{AUDIT_MIN_TIMEOUT:g} s floor), {len(audit['unchecked'])} not re-checked (infrastructure: rerun on "
              f"a less loaded machine)")
        return 0 if not audit["spurious"] and not audit["unchecked"] else 1
    try:
        report = rescore_run(args.run_dir, workers=args.workers)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"rescore: error: {exc}", file=sys.stderr)
        return 2
    total = sum(r["rows"] for r in report.values())
    diffs = [(name, d) for name, r in report.items() for d in r["differences"]]
    for name, d in diffs[:20]:
        print(f"{name} row {d['row']} ({d['task_id']}): recorded {d['recorded']} re-scored {d['rescored']}"
              + (" [a simulation timed out: load-dependent]" if d["timeout"] else ""))
    print(f"{total - len(diffs)} of {total} recorded verdicts in {len(report)} files re-score identically with "
          f"`verirl score`")
    return 0 if not diffs else 1


if __name__ == "__main__":
    sys.exit(main())
