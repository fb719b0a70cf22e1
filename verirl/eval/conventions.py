"""What the published evaluation flows do, and how far a verirl run is from each of them.

Facts read from the flows' own scripts (docs/eval.md has the full comparison table):

* **Official VerilogEval v2** (NVlabs/verilog-eval at c498220: ``configure.ac``, ``Makefile.in``,
  ``scripts/sv-generate``, ``scripts/sv-iv-analyze``, README): chat prompt (system + user message), extraction by
  ``sv-generate``, verdict by ``sv-iv-analyze`` on the Icarus log (warnings included), 20 samples at temperature 0.85
  and top-p 0.95 (``configure`` defaults) or greedy n = 1 at temperature 0 and top-p 0.01 (README), at most 1024 new
  tokens (``sv-generate``'s default; the Makefile does not pass one), Icarus Verilog 12 (README), reported as
  ``pass_rate``: the mean over problems of ``int(100 * c / n)``.
* **RTLLM v1.1** (``auto_run.py``): Synopsys VCS, a design passes when the simulation output contains "pass" or
  "Pass" within 8 s; pass@k summed over the designs and divided by the number of designs + 1.
* **CodeV-R1** (IPRC-DIP/CodeV-R1 ``test/benchmark_runner.sh``): 20 samples at temperature 1.0 with up to 16384 new
  tokens (vLLM, seed 42), the last ```verilog block of the answer; for VerilogEval v2 the code is fenced again and
  put through ``sv-generate`` and ``sv-iv-analyze`` (code completion: module header removed first); RTLLM on VCS,
  pass@k divided by the number of designs.
"""

from __future__ import annotations

import re

from .generate import OFFICIAL_GREEDY, OFFICIAL_SAMPLED

OFFICIAL_MAX_TOKENS = 1024
OFFICIAL_SIMULATOR_MAJOR = 12
CODEV_R1 = {"n": 20, "temperature": 1.0, "max_tokens": 16384, "extraction": "last-answer-block"}
NAMES = {
    "official": "official VerilogEval v2 flow (NVlabs/verilog-eval sv-generate + sv-iv-analyze)",
    "codev": "CodeV-R1 eval (IPRC-DIP/CodeV-R1 test/benchmark_runner.sh)",
    "rtllm": "RTLLM auto_run.py",
}
DIVISOR = {
    "verilog-eval-v2": "problems (mean over the benchmark's problems, as the official sv-iv-analyze and CodeV-R1)",
    "rtllm": "designs (as CodeV-R1; RTLLM's auto_run.py divides by designs + 1: see pass_at_k_rtllm_script)",
    "tasks": "tasks",
}


def simulator_major(version: str | None) -> int | None:
    match = re.search(r"version (\d+)", version or "")
    return int(match.group(1)) if match else None


def _sampling(s: dict | None) -> tuple | None:
    if not s:
        return None
    return s.get("n"), s.get("temperature"), s.get("top_p")


def _max_tokens_note(s: dict, limit: int, lengths: dict) -> str | None:
    """None when the run's token limit cannot have changed a verdict against a flow that cuts at ``limit``."""
    mine = s.get("max_tokens")
    if mine == limit:
        return None
    if mine is not None and mine < limit:
        cut = lengths.get("truncated") or 0
        return None if cut == 0 else f"max tokens {mine} cut {cut} completions (the flow allows {limit})"
    longer, unknown = lengths.get("longer_than", {}).get(limit), lengths.get("unknown_length") or 0
    if longer == 0 and not unknown:
        return None
    if longer:
        return f"{longer} completions are longer than the flow's {limit}-token limit (max tokens here {mine})"
    return f"max tokens {mine} (the flow cuts at {limit}; completion lengths not recorded)"


def _subset_note(summary: dict) -> str | None:
    """"scored on 7 of 156 problems" when the run covers part of the benchmark (--limit, --problems, or problems
    without samples); None for a whole-benchmark run."""
    total = summary.get("problems_in_benchmark")
    scored = len(summary.get("per_problem") or {}) or summary.get("problems")
    if not isinstance(total, int) or not isinstance(scored, int) or scored >= total:
        return None
    return f"scored on {scored} of the benchmark's {total} problems (a subset)"


def deviations(summary: dict, lengths: dict) -> dict[str, list[str]]:
    """For each flow that applies to the run's benchmark, the list of ways the run differs from it."""
    bench = summary["benchmark"]["name"]
    task = summary["benchmark"].get("task")
    sampling, prompt = summary.get("sampling"), summary.get("prompt")
    rule, analysis = summary["extraction"]["rule"], summary["analysis"]["name"]
    sim = summary.get("simulator")
    out: dict[str, list[str]] = {}
    subset = _subset_note(summary)
    if bench == "verilog-eval-v2":
        off: list[str] = [subset] if subset else []
        if rule != "official":
            off.append(f"extraction {rule} (official: sv-generate)")
        if analysis != "official":
            off.append("verdict by the engine alone (official: sv-iv-analyze, warnings included)")
        if sampling is None:
            off.append("sampling settings not recorded")
        elif _sampling(sampling) not in (_sampling(OFFICIAL_SAMPLED), _sampling(OFFICIAL_GREEDY)):
            off.append("sampling n={}, temperature {}, top-p {} (official: n=20, 0.85, 0.95 or greedy n=1, 0, "
                       "0.01)".format(*_sampling(sampling)))
        if sampling is not None and (note := _max_tokens_note(sampling, OFFICIAL_MAX_TOKENS, lengths)):
            off.append(note)
        if prompt is None:
            off.append("prompt not recorded")
        elif prompt.get("style") != "chat":
            off.append("plain-text prompt (official: chat messages)")
        if simulator_major(sim) != OFFICIAL_SIMULATOR_MAJOR:
            off.append(f"simulator {sim or 'unknown'} (official: Icarus Verilog {OFFICIAL_SIMULATOR_MAJOR})")
        out["official"] = off
    if bench in ("verilog-eval-v2", "rtllm"):
        codev: list[str] = [subset] if subset else []
        if rule != CODEV_R1["extraction"]:
            codev.append(f"extraction {rule} (CodeV-R1: last ```verilog block of the answer)")
        if bench == "verilog-eval-v2" and analysis != "official":
            codev.append("verdict by the engine alone (CodeV-R1: sv-iv-analyze)")
        if bench == "verilog-eval-v2" and task == "code-complete":
            codev.append("the answer's module header is kept (CodeV-R1 replaces it with the interface)")
        if sampling is None:
            codev.append("sampling settings not recorded")
        else:
            if (sampling.get("n"), sampling.get("temperature")) != (CODEV_R1["n"], CODEV_R1["temperature"]):
                codev.append(f"sampling n={sampling.get('n')}, temperature {sampling.get('temperature')} "
                             f"(CodeV-R1: n=20, temperature 1.0)")
            if note := _max_tokens_note(sampling, CODEV_R1["max_tokens"], lengths):
                codev.append(note)
        if bench == "rtllm":
            codev.append(f"simulator {sim or 'unknown'} (CodeV-R1 and RTLLM: Synopsys VCS)")
        out["codev"] = codev
    return out


def comparable_to(summary: dict, lengths: dict) -> dict:
    """``{"line": ..., "deviations": {flow: [...]}}``: the flow the run matches (or is closest to), as a line a
    reader can cite."""
    devs = deviations(summary, lengths)
    if not devs:
        return {"line": "Comparable to: no published flow (a verirl task file).", "deviations": {}}
    exact = [flow for flow, items in devs.items() if not items]
    if exact:
        line = "Comparable to: " + " and ".join(NAMES[f] for f in exact) + "."
    else:
        flow = min(devs, key=lambda f: len(devs[f]))
        line = f"Comparable to: {NAMES[flow]}, except: " + "; ".join(devs[flow]) + "."
    return {"line": line, "deviations": devs}


def official_pass_rate(counts: dict[str, tuple[int, int]]) -> float:
    """sv-iv-analyze's ``pass_rate``: the mean over problems of ``int(100 * c / n)``, as a fraction."""
    return sum(int((c / n) * 100) for n, c in counts.values()) / len(counts) / 100
