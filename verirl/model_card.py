"""The model card (``README.md``) of a ``verirl push`` release, and the facts it is made of.

Where each fact comes from:

* base model: ``--base-model``, else the run record's origin (``verirl_run.json`` that ``verirl train`` writes; an RL
  run from an SFT run's folder names the SFT run's base model), else ``--recipe``'s ``model_name_or_path``, else a
  PEFT adapter's ``base_model_name_or_path``; a local folder nothing traces to a Hub model is named as such, and only a
  model about which nothing is known is "not recorded";
* recipe and versions: the run record (the recipe with its command-line overrides, the command, the verirl / TRL /
  Transformers / torch versions the run used), else ``--recipe``;
* training figures: ``trainer_state.json`` (the folder or its last checkpoint), else ``metrics.jsonl``, as a table of
  each metric's last value and the step it was logged at;
* evaluation: each ``verirl eval`` ``summary.json``; a figure computed on part of a benchmark says on how many of its
  problems, so a 7-problem run is never read as the benchmark's pass@1.
"""

from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass

#: metrics shown first in the training table (the rest follow in name order)
HEADLINE_METRICS = ("loss", "reward", "reward_std", "pass_rate/all", "entropy", "kl", "learning_rate", "grad_norm")


@dataclass
class BaseModel:
    """What the card says about the model a release was trained from."""

    hub_id: str | None  # goes into the card's metadata
    line: str  # the card's "Base model:" text


def resolve_base_model(explicit: str | None, record: dict | None, recipe: dict | None,
                       adapter_base: str | None) -> BaseModel:
    """The base model by precedence (see the module docstring)."""
    from verirl.train.provenance import base_model_origin, looks_local

    if explicit:
        return BaseModel(explicit, f"`{explicit}`")
    candidates = []
    if record and record.get("base_model"):
        trained_from = record["base_model"]
        origin = record.get("base_model_origin")
        if origin is None and not looks_local(trained_from):
            origin = trained_from
        candidates.append((trained_from, origin))
    for value in ((recipe or {}).get("model_name_or_path"), adapter_base):
        if isinstance(value, str) and value:
            candidates.append((value, base_model_origin(value) if looks_local(value) else value))
    for trained_from, origin in candidates:
        if origin and not looks_local(origin):
            via = f" (trained from the local folder `{trained_from}`)" if trained_from != origin else ""
            return BaseModel(origin, f"`{origin}`{via}")
    if candidates:
        trained_from = candidates[0][0]
        return BaseModel(None, f"a local model folder, `{trained_from}` (no run record traces it to a published "
                               "model; pass --base-model to name it)")
    return BaseModel(None, "not recorded (pass --base-model)")


# ------------------------------------------------------------------------------------------- training figures


def _metric_table(entries: list[dict]) -> dict[str, dict]:
    """Each numeric metric's last value and the step it was logged at, from log entries with a ``step``."""
    last: dict[str, dict] = {}
    for entry in entries:
        step = entry.get("step")
        for key, value in entry.items():
            if key in ("step", "epoch") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            last[key] = {"value": round(value, 6) if isinstance(value, float) else value, "step": step}
    return last


def training_summary(model_dir: str, extra: str | None = None, record: dict | None = None) -> dict:
    """Steps, epochs and each metric's last logged value, from ``trainer_state.json`` (the folder or its last
    checkpoint) or else ``metrics.jsonl``; the run record's step count when neither has one; merged with a user-given
    JSON file (``--training-summary``)."""
    out: dict = {}
    candidates = [os.path.join(model_dir, "trainer_state.json")]
    checkpoints = sorted(glob.glob(os.path.join(model_dir, "checkpoint-*", "trainer_state.json")),
                         key=lambda p: int(re.sub(r"\D", "", os.path.basename(os.path.dirname(p))) or 0))
    candidates += checkpoints[::-1]
    for path in candidates:
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                state = json.load(fh)
            out["global_step"] = state.get("global_step")
            out["epoch"] = state.get("epoch")
            out["metrics"] = _metric_table(state.get("log_history", []))
            break
    else:
        metrics = os.path.join(model_dir, "metrics.jsonl")
        if os.path.isfile(metrics):
            with open(metrics, encoding="utf-8") as fh:
                entries = [json.loads(line) for line in fh if line.strip()]
            out["metrics"] = _metric_table(entries)
            epochs = [e["epoch"] for e in entries if isinstance(e.get("epoch"), (int, float))]
            if epochs:
                out["epoch"] = epochs[-1]
            steps = [e["step"] for e in entries if isinstance(e.get("step"), int)]
            if steps and not (record and record.get("global_step") is not None):
                out["global_step"] = max(steps)
    if out.get("global_step") is None and record and record.get("global_step") is not None:
        out["global_step"] = record["global_step"]
    if isinstance(out.get("epoch"), float):
        out["epoch"] = round(out["epoch"], 4)
    if extra:
        with open(extra, encoding="utf-8") as fh:
            out.update(json.load(fh))
    return {k: v for k, v in out.items() if v not in (None, {})}


def _metrics_lines(metrics: dict[str, dict]) -> list[str]:
    order = [k for k in HEADLINE_METRICS if k in metrics] + sorted(k for k in metrics if k not in HEADLINE_METRICS)
    lines = ["", f"<details><summary>Last logged training metrics ({len(metrics)})</summary>", "",
             "| metric | last value | at step |", "|---|---|---|"]
    lines += [f"| `{k}` | {metrics[k]['value']} | {metrics[k]['step'] if metrics[k]['step'] is not None else '—'} |"
              for k in order]
    lines += ["", "</details>"]
    return lines


# ------------------------------------------------------------------------------------------------ evaluation


def eval_coverage(summary: dict) -> tuple[str, str | None]:
    """How much of its benchmark an eval summary covers: the table cell and, for a partial run, a warning."""
    b = summary.get("benchmark") or {}
    counted = summary.get("problems")
    total = summary.get("problems_in_benchmark", b.get("problems"))
    broken = len(summary.get("known_broken_results") or {}) if summary.get("excluded_known_broken") else 0
    if not isinstance(counted, int):
        return "?", None
    if not isinstance(total, int) or total <= 0:
        return str(counted), None
    cell = f"{counted} of {total}"
    missing = total - counted - broken
    if missing <= 0:
        return cell + (f" ({broken} known-broken excluded)" if broken else ""), None
    name = f"{b.get('name')} {b.get('task') or ''}".strip()
    why = f"; {broken} known-broken excluded" if broken else ""
    return (cell + " (subset)",
            (f"{name}: computed on {counted} of its {total} problems{why} — a subset, not comparable to pass@k "
             "reported on the whole benchmark"))


def _eval_lines(evals: list[dict]) -> list[str]:
    if not evals:
        return ["Not evaluated yet (run `verirl eval` and pass `--eval` to `verirl push`)."]
    lines = ["| benchmark | task | problems | n | metric | score |", "|---|---|---|---|---|---|"]
    notes = []
    for s in evals:
        b = s["benchmark"]
        bench = f"{b.get('name')} {b.get('version') or ''}".strip()
        coverage, warning = eval_coverage(s)
        if warning:
            notes.append(warning)
        for k, v in s["pass_at_k"].items():
            lines.append(f"| {bench} | {b.get('task') or '—'} | {coverage} | {s['n']} | pass@{k} | {100 * v:.2f}% |")
    lines.append("")
    lines += [f"- **Partial evaluation.** {note}." for note in notes]
    for s in evals:
        b = s["benchmark"]
        broken = s.get("known_broken_results") or {}
        samp = s.get("sampling") or {}
        lines.append(f"- {b.get('name')} {b.get('task') or ''}: commit `{b.get('commit') or 'unknown'}`, "
                     f"{s.get('problems')} problems scored, temperature {samp.get('temperature', 'n/a')}, top-p "
                     f"{samp.get('top_p', 'n/a')}; known-broken problems ({len(broken)}) "
                     f"{'excluded' if s.get('excluded_known_broken') else 'included'}.")
    lines.append("- Scored with `verirl eval` (unbiased pass@k estimator; sanitized candidates, no early-$finish "
                 "or hierarchical-reference passes).")
    return lines


# ------------------------------------------------------------------------------------------------------ card


def render_model_card(*, repo_id: str, base: BaseModel, recipe_name: str | None, recipe_text: str | None,
                      data: str | None, training: dict, evals: list[dict], license: str, record: dict | None = None,
                      tools: dict | None = None, verirl_version: str | None = None) -> str:
    """The README.md of the release: YAML metadata, then description, training, evaluation, tools, limits."""
    import yaml

    meta: dict = {"license": license, "library_name": "transformers",
                  "tags": ["verilog", "hardware-design", "code", "reinforcement-learning", "verirl"],
                  "pipeline_tag": "text-generation"}
    if base.hub_id:
        meta["base_model"] = base.hub_id
    name = repo_id.split("/", 1)[1]
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", "", f"# {name}", ""]
    lines.append(f"A language model that writes Verilog, trained with verirl "
                 f"from {'`' + base.hub_id + '`' if base.hub_id else 'a base model'} with rewards from Icarus "
                 "Verilog simulation and Yosys synthesis.")
    lines += ["", "## Training", ""]
    lines.append(f"- Base model: {base.line}")
    if record:
        lines.append(f"- Trainer: {record.get('trainer') or 'unknown'}; command: `{record.get('command') or '?'}`")
    lines.append(f"- Recipe: `{recipe_name}`" if recipe_name else "- Recipe: not recorded")
    recorded_data = ((record or {}).get("recipe") or {}).get("dataset")
    if data:
        lines.append(f"- Data: {data}")
    elif recorded_data:
        lines.append(f"- Data: `{recorded_data}` (the recipe's dataset, from the run record)")
    else:
        lines.append("- Data: not recorded (pass --data)")
    for key in ("global_step", "epoch"):
        if training.get(key) is not None:
            lines.append(f"- {key.replace('_', ' ')}: {training[key]}")
    for key, value in training.items():
        if key not in ("global_step", "epoch", "metrics"):
            lines.append(f"- {key}: {value}")
    if training.get("metrics"):
        lines += _metrics_lines(training["metrics"])
    if recipe_text:
        lines += ["", "<details><summary>Recipe</summary>", "", "```yaml", recipe_text.rstrip(), "```", "",
                  "</details>"]
    lines += ["", "## Evaluation", ""] + _eval_lines(evals)
    tools = tools or (evals[0].get("tools") if evals else None) or {}
    lines += ["", "## Tools", ""]
    versions = (record or {}).get("versions") or {}
    if versions:
        trained = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
        lines.append(f"- Trained with {trained} (from the run record)")
    lines.append(f"- Released with verirl {verirl_version or 'unknown'}")
    for tool, version in tools.items():
        lines.append(f"- {tool}: {version or 'not installed'}")
    lines += ["", "## Intended use and limits", "",
              ("- Intended for research on LLM-assisted RTL design: drafting Verilog modules from natural-language "
               "specifications, to be reviewed and verified by an engineer."),
              ("- Generated designs can be functionally wrong, unsynthesizable or inefficient even when they compile; "
               "always simulate and verify them against your own testbenches before use."),
              ("- Benchmark scores were measured with Icarus Verilog; other simulators and synthesis flows can "
               "disagree. Rewards were computed on small self-checking testbenches that do not prove correctness."),
              "- Not intended for safety-critical hardware without independent verification.", ""]
    return "\n".join(lines)
