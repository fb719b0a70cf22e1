"""Evaluation outputs: ``summary.json``, ``results.jsonl``, ``report.md`` and the PNG plots.

``summary.json`` holds at least ``pass_at_k`` (k → mean pass@k in [0, 1]), ``n`` (samples per problem),
``sampling``, ``model``, ``benchmark`` (name, task, version, commit), ``tools`` (EDA tool versions) and
``verirl_version``; how the numbers were made: ``extraction`` (rule), ``analysis``, ``simulator``,
``pass_at_k_divisor``, ``unscorable_policy``, ``completion_lengths``, ``known_broken_detection`` and
``comparable_to`` (a citable line, with the deviations from each published flow); plus per-problem counts,
failure-class counts, known-broken problems and PPA comparison.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Sequence

from .benchmarks import Benchmark
from .conventions import CODEV_R1, DIVISOR, NAMES, OFFICIAL_MAX_TOKENS, comparable_to, official_pass_rate
from .failures import FAILURE_CLASSES, code_of
from .passk import PassKError, check_ks, pass_at_k

logger = logging.getLogger(__name__)

SUMMARY_FILE, RESULTS_FILE, REPORT_FILE = "summary.json", "results.jsonl", "report.md"


class RunRefused(ValueError):
    """Too many samples could not be scored for the pass@k to mean anything (``--max-unscorable``)."""


def problem_counts(rows: Sequence[dict]) -> dict[str, dict]:
    """task_id → {n (samples), c (passed), unscorable, failures, codes} in first-seen order.

    A sample that could not be scored (infrastructure or task fault) counts in ``n`` as a failure, as it does in
    the official flows, where every sample gets a verdict; ``unscorable`` says how many there were.
    """
    out: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: r["sample_index"]):
        entry = out.setdefault(row["task_id"], {"n": 0, "c": 0, "unscorable": 0, "failures": Counter(), "codes": ""})
        entry["codes"] += code_of(row["failure"])
        entry["n"] += 1
        if row["failure"] == "unscorable":
            entry["unscorable"] += 1
        if row["passed"]:
            entry["c"] += 1
        else:
            entry["failures"][row["failure"]] += 1
    order = list(dict.fromkeys(r["task_id"] for r in rows))
    return {t: out[t] for t in order}


def completion_lengths(rows: Sequence[dict]) -> dict:
    """How many completions were cut at --max-tokens, are longer than the published flows' limits, or have no
    recorded length."""
    tokens = [r.get("completion_tokens") for r in rows]
    known = [t for t in tokens if isinstance(t, int)]
    return {
        "truncated": sum(1 for r in rows if r.get("finish_reason") == "length"),
        "finish_reason_unknown": sum(1 for r in rows if r.get("finish_reason") is None),
        "unknown_length": len(tokens) - len(known),
        "longest": max(known) if known else None,
        "longer_than": {limit: sum(1 for t in known if t > limit)
                        for limit in (OFFICIAL_MAX_TOKENS, CODEV_R1["max_tokens"])},
    }


def summarize(benchmark: Benchmark, rows: Sequence[dict], ks: Sequence[int], *, exclude_broken: bool = False,
              model: dict | None = None, sampling: dict | None = None, prompt: dict | None = None,
              timings: dict | None = None, source: str | None = None, extraction: str | None = None,
              analysis: str | None = None, reference_check: bool = True,
              selected: Sequence[str] | None = None) -> dict:
    """Build ``summary.json`` from result rows. Raises :class:`PassKError` when a problem has fewer than k samples.

    ``selected``: the problems this run asked for (``--problems``/``--limit``; default all); problems without samples
    are counted among them only."""
    from .extraction import check_rule
    from .scoring import check_analysis

    rule, analysis = check_rule(extraction, benchmark.name), check_analysis(analysis, benchmark.name)
    counts = problem_counts(rows)
    broken, counted = _counted_problems(benchmark, counts, exclude_broken, reference_check)
    ks = check_ks(ks, min(e["n"] for e in counted.values()))
    wanted = list(selected) if selected is not None else list(benchmark.problems)
    tools = _tool_versions()
    simulator = re.sub(r"\s*\(\)\s*$", "", tools.get("iverilog") or "") or None  # "... (stable) ()" → "... (stable)"
    lengths = completion_lengths(rows)
    summary = {
        **_how_made(benchmark, model, sampling, prompt, source, rule, analysis, simulator),
        **_pass_rates(counts, counted, broken, ks, exclude_broken),
        **_sample_counts(benchmark, counts, counted, wanted, lengths),
        **_known_broken(benchmark, counts, broken, simulator, reference_check),
        "per_problem": {t: {"n": e["n"], "c": e["c"], "unscorable": e["unscorable"], "results": e["codes"],
                            "failures": dict(e["failures"])} for t, e in counts.items()},
        "ppa": ppa_comparison(rows),
        "tools": tools,
        "verirl_version": _verirl_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "timings": timings or {},
    }
    _benchmark_figures(summary, benchmark, counted, source, lengths)
    _warn_about(summary, benchmark, wanted, sampling)
    return summary


def _counted_problems(benchmark: Benchmark, counts: dict[str, dict], exclude_broken: bool,
                      reference_check: bool) -> tuple[set[str], dict[str, dict]]:
    """The known-broken problems among ``counts``, and the problems pass@k counts; refuses a run with nothing to
    count."""
    if all(e["unscorable"] == e["n"] for e in counts.values()):
        raise PassKError("no sample could be scored (all infrastructure or task faults); see results.jsonl")
    broken = {t for t in counts if t in benchmark.known_broken}
    if exclude_broken and not reference_check:
        raise PassKError("--exclude-broken needs the reference check (it finds the broken problems): drop "
                         "--no-reference-check")
    counted = {t: e for t, e in counts.items() if not (exclude_broken and t in broken)}
    if not counted:
        raise PassKError("every scored problem is known-broken: nothing is left for pass@k without --exclude-broken")
    return broken, counted


def _how_made(benchmark: Benchmark, model: dict | None, sampling: dict | None, prompt: dict | None,
              source: str | None, rule: str, analysis: str, simulator: str | None) -> dict:
    """What was evaluated and how: benchmark, model, sampling, prompt, extraction, analysis, simulator, divisor."""
    from .extraction import RULES
    from .scoring import ANALYSES

    return {
        "benchmark": {**benchmark.describe(), "known_broken": sorted(benchmark.known_broken)},
        "model": model or {},
        "sampling": sampling,
        "prompt": prompt,
        "source": source,
        "extraction": {"rule": rule, "description": RULES[rule]},
        "analysis": {"name": analysis, "description": ANALYSES[analysis]},
        "simulator": simulator,
        "pass_at_k_divisor": DIVISOR.get(benchmark.name, "problems"),
    }


def _pass_rates(counts: dict[str, dict], counted: dict[str, dict], broken: set[str], ks: Sequence[int],
                exclude_broken: bool) -> dict:
    """n, k and the mean pass@k over the counted problems (and without the known-broken ones)."""
    without_broken = {t: e for t, e in counts.items() if t not in broken}
    return {
        "n": min(e["n"] for e in counted.values()),
        "n_max": max(e["n"] for e in counted.values()),
        "k": list(ks),
        "pass_at_k": {str(k): _mean(pass_at_k(e["n"], e["c"], k) for e in counted.values()) for k in ks},
        "pass_at_k_excluding_known_broken": (
            {str(k): _mean(pass_at_k(e["n"], e["c"], k) for e in without_broken.values()) for k in ks}
            if broken and without_broken else None),
        "excluded_known_broken": bool(exclude_broken and broken),
    }


def _sample_counts(benchmark: Benchmark, counts: dict[str, dict], counted: dict[str, dict], wanted: list[str],
                   lengths: dict) -> dict:
    """How many problems and samples were counted, passed, unscorable or missing, and the failure classes."""
    failures = Counter()
    for e in counts.values():
        failures.update(e["failures"])
    return {
        "problems": len(counted),
        "problems_in_benchmark": len(benchmark.problems),
        "problems_selected": len(wanted),
        "problems_without_samples": [t for t in wanted if t not in counts],
        "samples": sum(e["n"] for e in counted.values()),
        "passed_samples": sum(e["c"] for e in counted.values()),
        "unscorable_samples": sum(e["unscorable"] for e in counts.values()),
        "unscorable_policy": "counted as failures in pass@k (each with its reason in results.jsonl)",
        "completion_lengths": lengths,
        "failure_classes": {name: failures[name] for name in FAILURE_CLASSES if failures[name]},
    }


def _known_broken(benchmark: Benchmark, counts: dict[str, dict], broken: set[str], simulator: str | None,
                  reference_check: bool) -> dict:
    """How broken problems were detected, and their results."""
    return {
        "known_broken_detection": (f"each problem's reference simulated against its own testbench on "
                                   f"{simulator or 'the installed simulator'} before scoring"
                                   if reference_check else "off (--no-reference-check): broken problems are not "
                                   "detected; their samples fail"),
        "known_broken_results": {t: {"n": counts[t]["n"], "c": counts[t]["c"],
                                     "reason": benchmark.known_broken[t]} for t in sorted(broken)},
    }


def _benchmark_figures(summary: dict, benchmark: Benchmark, counted: dict[str, dict], source: str | None,
                       lengths: dict) -> None:
    """The benchmark's own figures (VerilogEval's official pass rate, RTLLM's script's divisor) and the
    ``comparable_to`` line, added to ``summary``."""
    plain = {t: (e["n"], e["c"]) for t, e in counted.items()}
    if benchmark.name == "verilog-eval-v2":
        summary["official_pass_rate"] = official_pass_rate(plain)
    if benchmark.name == "rtllm":
        designs = len(counted)
        summary["pass_at_k_rtllm_script"] = {k: v * designs / (designs + 1) for k, v in summary["pass_at_k"].items()}
    summary["comparable_to"] = comparable_to(summary, lengths)
    if source == "reference designs":
        summary["comparable_to"]["line"] = "Comparable to: not applicable (the benchmark's reference designs)."


def _warn_about(summary: dict, benchmark: Benchmark, wanted: list[str], sampling: dict | None) -> None:
    """Log what a reader of the figures must know: problems without samples, unscorable and truncated samples."""
    missing, unscorable = summary["problems_without_samples"], summary["unscorable_samples"]
    if missing:
        scope = "selected " if len(wanted) < len(benchmark.problems) else ""
        logger.warning("%d of %d %sproblems have no samples (%s%s)", len(missing), len(wanted), scope,
                       ", ".join(missing[:3]), ", ..." if len(missing) > 3 else "")
    if unscorable:
        logger.warning("%d samples could not be scored (infrastructure or task faults); they count as failures — "
                       "see 'reason' in results.jsonl", unscorable)
    if summary["completion_lengths"]["truncated"]:
        logger.warning("%d completions were cut at max tokens %s", summary["completion_lengths"]["truncated"],
                       (sampling or {}).get("max_tokens"))


def check_unscorable(summary: dict, rows: Sequence[dict], max_fraction: float) -> None:
    """Refuse a run in which more than ``max_fraction`` of the samples could not be scored."""
    count, total = summary["unscorable_samples"], len(rows)
    if total and count / total > max_fraction:
        reasons = Counter(_first(r.get("reason") or r.get("engine_failure") or "?") for r in rows
                          if r["failure"] == "unscorable")
        top = "; ".join(f"{n}x {reason}" for reason, n in reasons.most_common(3))
        raise RunRefused(f"{count} of {total} samples ({100 * count / total:.1f}%) could not be scored, more than "
                         f"--max-unscorable {max_fraction:g} allows: {top}. Fix the cause and rerun the same command "
                         "(scored rows are kept; these are scored again), or raise --max-unscorable to accept them "
                         "as failures")


def _first(text: str) -> str:
    return (text.strip().splitlines() or ["?"])[0][:160]


def ppa_comparison(rows: Sequence[dict]) -> dict | None:
    """With ``--ppa``: for passing samples with synthesis figures, how many beat, match or lose to the reference on
    area, depth and cells; the problems whose reference does not synthesize (``reference_failures``, problem → why:
    they keep their verdicts, they only lack PPA figures); passing samples whose own synthesis failed. None when the
    run had no PPA stage."""
    if not any("ppa" in row or "ppa_with" in row for row in rows):
        return None
    points, reference_failures, candidate_failures = [], {}, 0
    for row in rows:
        ppa = row.get("ppa")
        if not isinstance(ppa, dict):
            continue
        if ppa.get("reference_failed"):
            reference_failures.setdefault(row["task_id"], ppa.get("error") or "the reference does not synthesize")
            continue
        if not row.get("passed"):
            continue
        cand, ref = ppa.get("candidate") or {}, ppa.get("reference") or {}
        if not cand or not ref:
            candidate_failures += 1
            continue
        point = {"task_id": row["task_id"], "sample_index": row["sample_index"]}
        for metric in ("area", "depth", "cells"):
            point[metric] = (cand.get(metric), ref.get(metric))
        points.append(point)
    out: dict = {"compared": len(points), "reference_failures": reference_failures,
                 "candidate_synthesis_failures": candidate_failures,
                 "policy": "PPA is computed after the verdict, for passing samples only; it changes no verdict, no "
                           "problem count and no pass@k"}
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
    total, scored = summary.get("problems_in_benchmark"), len(summary.get("per_problem") or {})
    if isinstance(total, int) and scored < total:
        lines.append(f"**A subset: {scored} of the benchmark's {total} problems were scored; these figures are not "
                     f"the benchmark's pass@k.**")
    lines += ["", "| metric | score |", "|---|---|"]
    for k, value in summary["pass_at_k"].items():
        lines.append(f"| pass@{k} | {100 * value:.2f}% |")
    if summary.get("pass_at_k_excluding_known_broken") and not summary.get("excluded_known_broken"):
        for k, value in summary["pass_at_k_excluding_known_broken"].items():
            lines.append(f"| pass@{k} without known-broken problems | {100 * value:.2f}% |")
    if summary.get("official_pass_rate") is not None:
        lines.append(f"| pass_rate as sv-iv-analyze prints it (mean of int(100·c/n)) | "
                     f"{100 * summary['official_pass_rate']:.2f}% |")
    for k, value in (summary.get("pass_at_k_rtllm_script") or {}).items():
        lines.append(f"| pass@{k} as RTLLM's auto_run.py divides (designs + 1) | {100 * value:.2f}% |")
    comparable = (summary.get("comparable_to") or {}).get("line")
    if comparable:
        lines += ["", f"**{comparable}**"]
    lines += ["", "## How these numbers were made", ""]
    lines += _method_lines(summary)
    lines += ["", (f"Samples: {summary['samples']} scored, {summary['passed_samples']} passed, "
              f"{summary['unscorable_samples']} not scorable (infrastructure/task faults, counted as failures)."), ""]
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
                  f"{ppa.get('compared', 0)} passing samples compared; PPA changes no verdict and no pass@k.", "",
                  "| metric | better | equal | worse |", "|---|---|---|---|"]
        for metric in ("area", "depth", "cells"):
            t = ppa.get(metric) or {}
            lines.append(f"| {metric} | {t.get('better', 0)} | {t.get('equal', 0)} | {t.get('worse', 0)} |")
        lines.append("")
        if ppa.get("candidate_synthesis_failures"):
            lines += [(f"{ppa['candidate_synthesis_failures']} passing samples did not synthesize themselves (no PPA "
                      "figures; their verdicts stand)."), ""]
        if ppa.get("reference_failures"):
            lines += [("The reference of these problems does not synthesize with Yosys, so their samples have no PPA "
                      "comparison; their verdicts and pass@k are unaffected:"), "",
                      "| problem | why |", "|---|---|"]
            lines += [f"| {t} | {why.replace('|', '/')} |" for t, why in ppa["reference_failures"].items()]
            lines.append("")
    lines += ["## Per problem", "", "`.` pass; other letters are failure classes (see above).", "",
              "| problem | passed / n | samples |", "|---|---|---|"]
    for t, e in summary["per_problem"].items():
        lines.append(f"| {t} | {e['c']}/{e['n']} | `{e['results']}` |")
    tools = ", ".join(f"{k} {v}" for k, v in (summary.get("tools") or {}).items() if v)
    lines += ["", f"verirl {summary.get('verirl_version')}; tools: {tools or 'unknown'}.", ""]
    return "\n".join(lines)


def _method_lines(summary: dict) -> list[str]:
    """The settings behind the numbers, one bullet each: what a reader needs to compare them with a paper's."""
    out = []
    ext, ana = summary.get("extraction") or {}, summary.get("analysis") or {}
    out.append(f"- Extraction rule: `{ext.get('rule')}` — {ext.get('description')}.")
    out.append(f"- Verdict: `{ana.get('name')}` — {ana.get('description')}.")
    s = summary.get("sampling")
    if s:
        out.append(f"- Sampling: n = {s.get('n')}, temperature {s.get('temperature')}, top-p {s.get('top_p')}, "
                   f"max tokens {s.get('max_tokens')}, seed {s.get('seed')}.")
    else:
        out.append("- Sampling: not recorded (a completions file, or the reference designs).")
    lengths = summary.get("completion_lengths") or {}
    if lengths.get("truncated"):
        out.append(f"- **{lengths['truncated']} completions were cut at max tokens** (finish reason `length`).")
    elif s and lengths.get("finish_reason_unknown", 0) < summary["samples"]:
        out.append("- No completion was cut at max tokens.")
    prompt = summary.get("prompt")
    if prompt:
        out.append(f"- Prompt: {prompt.get('style')} style, {prompt.get('shots')} shots"
                   + (", coding rules" if prompt.get("rules") else "")
                   + (", explanations allowed" if prompt.get("explain") else "") + ".")
    out.append(f"- Simulator: {summary.get('simulator') or 'unknown'}.")
    out.append(f"- pass@k divided by: {summary.get('pass_at_k_divisor')}.")
    out.append(f"- Samples that could not be scored: {summary.get('unscorable_policy')}.")
    out.append(f"- Known-broken problems: {summary.get('known_broken_detection')}.")
    for flow, items in ((summary.get("comparable_to") or {}).get("deviations") or {}).items():
        out.append(f"- Differences from the {NAMES[flow]}: " + ("; ".join(items) if items else "none") + ".")
    return out


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
