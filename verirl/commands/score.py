"""``verirl score``: score completions against tasks with the hierarchical reward engine.

Streams the completions file and writes one JSON row per completion, in input order, as
soon as its window is scored, so memory does not grow with the number of completions.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time

from rewards.errors import ConfigError, TaskError
from rewards.hierarchy import DEFAULT_WEIGHTS, RewardConfig
from rewards.pool import RewardPool
from rewards.score import LEVELS
from rewards.task import iter_jsonl, load_tasks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", required=True, help="tasks JSONL (the task schema: docs/architecture.md)")
    parser.add_argument("--completions", required=True, help="completions JSONL: rows with task_id and completion")
    parser.add_argument("--out", required=True, help="scores JSONL to write (one row per completion, input order)")
    for level in LEVELS:
        parser.add_argument(f"--w-{level}", type=float, default=DEFAULT_WEIGHTS[level],
                            help=f"weight of the {level} level (default {DEFAULT_WEIGHTS[level]}; 0 disables)")
    parser.add_argument("--no-partial-credit", action="store_true", help="function credit is all-or-nothing")
    parser.add_argument("--reasoning", choices=("none", "optional", "required"), default="optional",
                        help="whether completions carry a <think> block")
    parser.add_argument("--liberty", help="Liberty file for PPA area in um^2")
    parser.add_argument("--workers", type=int,
                        help="parallel scoring jobs (default: twice the CPUs; with Ray, the cluster's CPUs)")
    parser.add_argument("--backend", choices=("local", "ray"),
                        help="where jobs run: local threads (default) or a Ray cluster (implied by --ray-address; "
                             "--backend ray alone joins $RAY_ADDRESS)")
    parser.add_argument("--ray-address", metavar="HOST:PORT",
                        help="join this Ray cluster (`ray start --head` prints it; default $RAY_ADDRESS); `local` "
                             "starts a private Ray in this process")
    parser.add_argument("--batch-deadline", type=float, metavar="SECONDS",
                        help="completions of a window still unscored after this long are written as not scorable "
                             "(default: only when scoring stalls; docs/training.md, 'Moving to a cluster')")
    parser.add_argument("--cache", help="SQLite file that keeps scores across runs")


def _check_paths(args: argparse.Namespace) -> None:
    """Arguments that cannot succeed fail before any work, naming the argument."""
    for option, path in (("--tasks", args.tasks), ("--completions", args.completions)):
        if not os.path.isfile(path):
            raise TaskError(f"{option} {path}: " + ("is a folder, not a JSONL file" if os.path.isdir(path)
                                                     else "no such file"))
    folder = os.path.dirname(os.path.abspath(args.out))
    if os.path.isdir(args.out):
        raise TaskError(f"--out {args.out} is a folder; give the scores file to write, e.g. {args.out}/scores.jsonl")
    if not os.path.isdir(folder):
        raise TaskError(f"--out {args.out}: the folder {os.path.dirname(args.out) or folder} does not exist; create it "
                        "or choose another --out")


def run(args: argparse.Namespace) -> int:
    try:
        _check_paths(args)
        tasks = load_tasks(args.tasks)
        if not tasks:
            raise TaskError(f"--tasks {args.tasks} holds no tasks (an empty file); give the tasks the completions "
                            "answer (one JSON object per line, docs/architecture.md)")
        count = _check_completions(args.completions, tasks)
        config = RewardConfig(
            weights={level: getattr(args, f"w_{level}") for level in LEVELS},
            partial_credit=not args.no_partial_credit,
            reasoning=args.reasoning,
            liberty=args.liberty,
        )
        backend = args.backend or ("ray" if args.ray_address else "local")
        pool = RewardPool(config, workers=args.workers, backend=backend, cache_path=args.cache,
                          ray_address=args.ray_address, batch_deadline=args.batch_deadline)
    except (TaskError, ConfigError, OSError) as exc:
        print(f"verirl score: error: {exc}", file=sys.stderr)
        return 2
    failures: collections.Counter[str] = collections.Counter()
    n = passed = unscorable = 0
    total_reward = 0.0
    start = time.monotonic()
    tmp = args.out + ".tmp"
    try:
        pairs = _pairs(args.completions, tasks)
        with pool, open(tmp, "w", encoding="utf-8") as out:
            for (task_id, row_extra), score in zip(_ids(args.completions, tasks), pool.score_iter(pairs)):
                row = {"task_id": task_id, **row_extra, "reward": score.reward, "passed": score.passed,
                       "failure": score.failure, "components": score.components, "detail": score.detail}
                out.write(json.dumps(row) + "\n")
                n += 1
                passed += bool(score.passed)
                unscorable += score.reward is None
                total_reward += score.reward or 0.0
                if score.failure:
                    failures[score.failure] += 1
        os.replace(tmp, args.out)
    except (TaskError, OSError) as exc:
        _remove(tmp)
        print(f"verirl score: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _remove(tmp)
        print(f"verirl score: stopped by SIGINT after {n} of {count} completions; nothing was written to {args.out} "
              "(scores are written whole; with --cache FILE a rerun reuses the scores computed so far)",
              file=sys.stderr)
        return 130
    elapsed = time.monotonic() - start
    where = f" on the Ray cluster at {pool.ray_address}" if backend == "ray" else ""
    print(f"scored {n} completions{where} in {elapsed:.1f}s ({n / max(elapsed, 1e-9):.1f}/s): "
          f"{passed} passed ({100 * passed / max(n, 1):.1f}%), mean reward {total_reward / max(n, 1):.3f}, "
          f"{unscorable} not scorable")
    if failures:
        print("failures: " + ", ".join(f"{k}={v}" for k, v in failures.most_common()))
    print(f"wrote {args.out}")
    return 0


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _check_completions(path: str, tasks) -> int:
    """Read the completions file once before scoring: every row valid, at least one; returns the count."""
    count = sum(1 for _ in _rows(path, tasks))
    if not count:
        raise TaskError(f"--completions {path} holds no completions (an empty file); give rows "
                        '{"task_id": ..., "completion": ...}')
    return count


def _rows(path: str, tasks):
    for lineno, row in iter_jsonl(path):
        task_id = row.get("task_id")
        if task_id is None or "completion" not in row:
            raise TaskError(f"{path}:{lineno}: a completion row needs `task_id` and `completion`")
        if str(task_id) not in tasks:
            raise TaskError(f"{path}:{lineno}: unknown task_id {task_id!r} (not in the tasks file)")
        yield str(task_id), row


def _pairs(path: str, tasks):
    for task_id, row in _rows(path, tasks):
        yield tasks[task_id], row["completion"]


def _ids(path: str, tasks):
    for task_id, row in _rows(path, tasks):
        yield task_id, ({"sample_index": row["sample_index"]} if "sample_index" in row else {})
