"""Evaluation outputs: ``summary.json``, ``results.jsonl``, ``report.md`` and the PNG plots.

``summary.json`` holds at least ``pass_at_k`` (k → mean pass@k in [0, 1]), ``n`` (samples per problem),
``sampling``, ``model``, ``benchmark`` (name, task, version, commit), ``tools`` (EDA tool versions) and
``verirl_version``; plus per-problem counts, failure-class counts, known-broken problems and PPA comparison.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from collections import Counter
from collections.abc import Sequence

from .benchmarks import Benchmark
from .failures import FAILURE_CLASSES, code_of
from .passk import PassKError, check_ks, pass_at_k

logger = logging.getLogger(__name__)

SUMMARY_FILE, RESULTS_FILE, REPORT_FILE = "summary.json", "results.jsonl", "report.md"


def problem_counts(rows: Sequence[dict]) -> dict[str, dict]:
    """task_id → {n (scorable samples), c (passed), unscorable, failures, codes} in first-seen order."""
    out: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: r["sample_index"]):
        entry = out.setdefault(row["task_id"], {"n": 0, "c": 0, "unscorable": 0, "failures": Counter(), "codes": ""})
        entry["codes"] += code_of(row["failure"])
        if row["failure"] == "unscorable":
            entry["unscorable"] += 1
            continue
        entry["n"] += 1
        if row["passed"]:
            entry["c"] += 1
        else:
            entry["failures"][row["failure"]] += 1
    order = list(dict.fromkeys(r["task_id"] for r in rows))
    return {t: out[t] for t in order}


def summarize(benchmark: Benchmark, rows: Sequence[dict], ks: Sequence[int], *, exclude_broken: bool = False,
              model: dict | None = None, sampling: dict | None = None, prompt: dict | None = None,
              timings: dict | None = None, source: str | None = None) -> dict:
    """Build ``summary.json`` from result rows. Raises :class:`PassKError` when a problem has fewer than k samples."""
    counts = problem_counts(rows)
    scored = {t: e for t, e in counts.items() if e["n"] > 0}
    if not scored:
        raise PassKError("no sample could be scored (all infrastructure or task faults); see results.jsonl")
    broken = {t for t in counts if t in benchmark.known_broken}
    counted = {t: e for t, e in scored.items() if not (exclude_broken and t in broken)}
    if not counted:
        raise PassKError("every scored problem is known-broken: nothing is left for pass@k without --exclude-broken")
    n_min = min(e["n"] for e in counted.values())
    ks = check_ks(ks, n_min)
    pass_k = {str(k): _mean(pass_at_k(e["n"], e["c"], k) for e in counted.values()) for k in ks}
    without_broken = {t: e for t, e in scored.items() if t not in broken}
    failures = Counter()
    for e in counts.values():
        failures.update(e["failures"])
    unscorable = sum(e["unscorable"] for e in counts.values())
    missing = [t for t in benchmark.problems if t not in counts]
    summary = {
        "benchmark": {**benchmark.describe(), "known_broken": sorted(benchmark.known_broken)},
        "model": model or {},
        "sampling": sampling,
        "prompt": prompt,
        "source": source,
        "n": n_min,
        "n_max": max(e["n"] for e in counted.values()),
        "k": list(ks),
        "pass_at_k": pass_k,
        "pass_at_k_excluding_known_broken": (
            {str(k): _mean(pass_at_k(e["n"], e["c"], k) for e in without_broken.values()) for k in ks}
            if broken and without_broken else None),
        "excluded_known_broken": bool(exclude_broken and broken),
        "problems": len(counted),
        "problems_in_benchmark": len(benchmark.problems),
        "problems_without_samples": missing,
        "samples": sum(e["n"] for e in counted.values()),
        "passed_samples": sum(e["c"] for e in counted.values()),
        "unscorable_samples": unscorable,
        "failure_classes": {name: failures[name] for name in FAILURE_CLASSES if failures[name]},
        "known_broken_results": {t: {"n": counts[t]["n"], "c": counts[t]["c"],
                                     "reason": benchmark.known_broken[t]} for t in sorted(broken)},
        "per_problem": {t: {"n": e["n"], "c": e["c"], "unscorable": e["unscorable"], "results": e["codes"],
                            "failures": dict(e["failures"])} for t, e in counts.items()},
        "ppa": ppa_comparison(rows),
        "tools": _tool_versions(),
        "verirl_version": _verirl_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "timings": timings or {},
    }
    if missing:
        logger.warning("%d of %d problems have no samples (%s...)", len(missing), len(benchmark.problems),
                       ", ".join(missing[:3]))
    if unscorable:
        logger.warning("%d samples could not be scored (infrastructure or task faults); they are not counted "
                       "against the model — see 'reason' in results.jsonl", unscorable)
    return summary


def ppa_comparison(rows: Sequence[dict]) -> dict | None:
    """For passing samples with synthesis figures: how many beat, match or lose to the reference on area, depth."""
    points = []
    for row in rows:
        ppa = row.get("ppa")
        if not row.get("passed") or not isinstance(ppa, dict):
            continue
        cand, ref = ppa.get("candidate") or {}, ppa.get("reference") or {}
        point = {"task_id": row["task_id"], "sample_index": row["sample_index"]}
        for metric in ("area", "depth", "cells"):
            point[metric] = (cand.get(metric), ref.get(metric))
        points.append(point)
    if not points:
        return None
    out: dict = {"compared": len(points)}
    for metric in ("area", "depth", "cells"):
        tally = Counter()
        for p in points:
            c, r = p[metric]
            if c is None or r is None:
                continue
            tally["better" if c < r else "equal" if c == r else "worse"] += 1
        out[metric] = {key: tally[key] for key in ("better", "equal", "worse")}
    out["points"] = [{"task_id": p["task_id"], "sample_index": p["sample_index"],
                      **{f"{m}_candidate": p[m][0] for m in ("area", "depth", "cells")},
                      **{f"{m}_reference": p[m][1] for m in ("area", "depth", "cells")}} for p in points]
    return out


def render_markdown(summary: dict) -> str:
    """The Markdown report: headline table, failure classes, known-broken problems, PPA, per-problem table."""
    bench = summary["benchmark"]
    title = bench["name"] + (f" ({bench['task']})" if bench.get("task") else "")
    model = summary.get("model") or {}
    lines = [f"# {title}: pass@k", ""]
    who = model.get("name") or summary.get("source") or "completions"
    lines.append(f"Model: `{who}`" + (f" (revision `{model['revision']}`)" if model.get("revision") else ""))
    lines.append(f"Benchmark: {bench['name']} {bench.get('version') or ''} at commit "
                 f"`{bench.get('commit') or 'unknown'}`, {summary['problems']} problems, n = {summary['n']}"
                 + (f"–{summary['n_max']}" if summary.get("n_max", summary["n"]) != summary["n"] else "")
                 + " samples per problem.")
    if summary.get("sampling"):
        s = summary["sampling"]
        lines.append(f"Sampling: temperature {s.get('temperature')}, top-p {s.get('top_p')}, "
                     f"max tokens {s.get('max_tokens')}.")
    lines += ["", "| metric | score |", "|---|---|"]
    for k, value in summary["pass_at_k"].items():
        lines.append(f"| pass@{k} | {100 * value:.2f}% |")
    if summary.get("pass_at_k_excluding_known_broken") and not summary.get("excluded_known_broken"):
        for k, value in summary["pass_at_k_excluding_known_broken"].items():
            lines.append(f"| pass@{k} without known-broken problems | {100 * value:.2f}% |")
    lines += ["", (f"Samples: {summary['samples']} scored, {summary['passed_samples']} passed, "
              f"{summary['unscorable_samples']} not scorable (infrastructure/task faults, not counted)."), ""]
    if summary["failure_classes"]:
        lines += ["## Failure classes", "", "| code | class | samples |", "|---|---|---|"]
        for name, count in summary["failure_classes"].items():
            code, text = FAILURE_CLASSES[name]
            lines.append(f"| `{code}` | {text} | {count} |")
        lines.append("")
    if summary["known_broken_results"]:
        verb = "excluded from" if summary["excluded_known_broken"] else "included in"
        lines += ["## Known-broken problems", "",
                  (f"The reference solution of these problems fails its own testbench on this simulator; they are "
                  f"{verb} pass@k."), "", "| problem | passed / n | reason |", "|---|---|---|"]
        for t, e in summary["known_broken_results"].items():
            lines.append(f"| {t} | {e['c']}/{e['n']} | {e['reason']} |")
        lines.append("")
    ppa = summary.get("ppa")
    if ppa:
        lines += ["## PPA against the reference design (passing samples)", "",
                  "| metric | better | equal | worse |", "|---|---|---|---|"]
        for metric in ("area", "depth", "cells"):
            t = ppa.get(metric) or {}
            lines.append(f"| {metric} | {t.get('better', 0)} | {t.get('equal', 0)} | {t.get('worse', 0)} |")
        lines.append("")
    lines += ["## Per problem", "", "`.` pass; other letters are failure classes (see above).", "",
              "| problem | passed / n | samples |", "|---|---|---|"]
    for t, e in summary["per_problem"].items():
        lines.append(f"| {t} | {e['c']}/{e['n']} | `{e['results']}` |")
    tools = ", ".join(f"{k} {v}" for k, v in (summary.get("tools") or {}).items() if v)
    lines += ["", f"verirl {summary.get('verirl_version')}; tools: {tools or 'unknown'}.", ""]
    return "\n".join(lines)


def write_outputs(out_dir: str, summary: dict, rows: Sequence[dict] | None = None, plots: bool = True) -> dict:
    """Write summary.json, report.md (and results.jsonl when ``rows`` is given) and the plots; returns paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"summary": os.path.join(out_dir, SUMMARY_FILE), "report": os.path.join(out_dir, REPORT_FILE)}
    with open(paths["summary"], "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2, sort_keys=False)
        fh.write("\n")
    with open(paths["report"], "w", encoding="utf-8") as fh:
        fh.write(render_markdown(summary))
    if rows is not None:
        from .scoring import compact_results

        paths["results"] = os.path.join(out_dir, RESULTS_FILE)
        compact_results(paths["results"], rows)
    if plots:
        from .plots import write_plots

        paths.update(write_plots(summary, out_dir))
    return paths


def load_run(path: str) -> tuple[dict, list[dict]]:
    """(summary, result rows) of a run folder (or of its summary.json)."""
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    summary_path = os.path.join(folder, SUMMARY_FILE)
    if not os.path.isfile(summary_path):
        raise FileNotFoundError(f"{folder} is not an evaluation run: no {SUMMARY_FILE} in it")
    with open(summary_path, encoding="utf-8") as fh:
        summary = json.load(fh)
    rows: list[dict] = []
    results = os.path.join(folder, RESULTS_FILE)
    if os.path.isfile(results):
        from .benchmarks import iter_jsonl

        rows = [row for _, row in iter_jsonl(results)]
    return summary, rows


def per_problem_rates(summary: dict) -> dict[str, tuple[int, int]]:
    return {t: (e["c"], e["n"]) for t, e in summary.get("per_problem", {}).items()}


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def _tool_versions() -> dict:
    try:
        from rewards.toolchain import tool_versions

        return tool_versions()
    except Exception as exc:  # noqa: BLE001 - a report must not fail over a version probe
        logger.debug("tool version probe failed: %s", exc)
        return {}


def _verirl_version() -> str:
    try:
        from importlib.metadata import version

        return version("verirl")
    except Exception:  # noqa: BLE001
        import verirl

        return getattr(verirl, "__version__", "unknown")
