"""The quickstart's report: PNG learning curves, a Markdown summary table and ``summary.json``.

Curves come from the trainers' ``metrics.jsonl`` (one record per logged step): RL reward, pass rate per task
level, the fraction of tokens the entropy gate updated, the dynamic-sampling keep ratio, and the SFT loss. The
table compares the held-out evaluation of every checkpoint, all sampled with the same settings.
"""

from __future__ import annotations

import json
import logging
import os

from verirl.quickstart.stats import paired_task_bootstrap, t_interval

logger = logging.getLogger(__name__)

CURVES = {
    "reward": ("reward", "mean reward per RL step"),
    "pass_rate": ("pass_rate/level_", "training pass rate per task level"),
    "entropy_gate": ("entropy_gate/fraction", "fraction of completion tokens updated (entropy gate)"),
    "keep_ratio": ("dynamic_sampling/keep_ratio", "dynamic sampling: informative groups / generated"),
}


#: window of the moving average drawn over the per-step curves (the raw values are drawn faintly)
SMOOTHING = 5


def _rolling_mean(values: list[float], window: int) -> list[float]:
    out = []
    for i in range(len(values)):
        part = values[max(0, i - window + 1):i + 1]
        out.append(sum(part) / len(part))
    return out


def read_metrics(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for r in records:
        if key in r and isinstance(r[key], (int, float)):
            steps.append(r["step"])
            values.append(float(r[key]))
    return steps, values


def plot_curves(runs: dict[str, list[dict]], sft_records: list[dict], probe_records: list[dict],
                out_dir: str) -> dict[str, str]:
    """One PNG per curve; ``runs`` maps a label (``rl``, ``rl_neither_s0``) to its metrics records."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    written = {}

    def save(fig, name):
        path = os.path.join(out_dir, f"{name}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written[name] = path

    for name, (key, title) in CURVES.items():
        fig, ax = plt.subplots(figsize=(6, 3.5))
        drawn = False
        for label, records in runs.items():
            keys = sorted({k for r in records for k in r if k.startswith(key)}) if key.endswith("_") else [key]
            for k in keys:
                steps, values = _series(records, k)
                if steps:
                    suffix = f" {k[len(key):]}" if key.endswith("_") else ""
                    line, = ax.plot(steps, values, alpha=0.3, linewidth=1)
                    ax.plot(steps, _rolling_mean(values, SMOOTHING), color=line.get_color(), linewidth=2,
                            label=f"{label}{' level' + suffix if suffix else ''} ({SMOOTHING}-step mean)")
                    drawn = True
        if not drawn:
            ax.text(0.5, 0.5, "not logged in this run", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        ax.set_xlabel("RL step")
        if drawn:
            ax.legend(fontsize=7)
        save(fig, name)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps, values = _series(sft_records, "loss")
    ax.plot(steps, values, label="loss")
    ax.set_xlabel("SFT step")
    ax.set_title("SFT loss and probe pass rate (training tasks, greedy)")
    if probe_records:
        ax2 = ax.twinx()
        ax2.plot([r["step"] for r in probe_records], [r["pass_rate"] for r in probe_records], "o-", color="C1",
                 label="probe pass rate")
        ax2.set_ylim(0, 1)
        ax2.set_ylabel("probe pass rate")
    save(fig, "sft_loss")
    return written


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _pts(x) -> str:
    return "–" if x is None else f"{100 * x:+.1f}"


def _split_table(evals: dict, split: str, names: list[str]) -> list[str]:
    ks = sorted({k for n in names for k in evals[n].get(split, {}) if k.startswith("pass@") and "_" not in k},
                key=lambda k: int(k[5:]))
    lines = ["| checkpoint | " + " | ".join(ks) + " | pass@1 levels 3-4 | mean reward |",
             "|---|" + "---|" * (len(ks) + 2)]
    for name in names:
        e = evals[name].get(split)
        if not e:
            continue
        reward = "–" if e.get("mean_reward") is None else f"{e['mean_reward']:.3f}"
        lines.append(f"| {name} | " + " | ".join(_pct(e.get(k)) for k in ks)
                     + f" | {_pct(e.get('pass@1_levels_3_4'))} | {reward} |")
    return lines


def _group_table(evals: dict, split: str, group: str, names: list[str]) -> list[str]:
    keys = sorted({g for n in names for g in evals[n].get(split, {}).get(f"pass@1_by_{group}", {})})
    counts = {}
    for n in names:
        counts.update(evals[n].get(split, {}).get(f"tasks_by_{group}", {}))
    lines = [f"| {group} (tasks) | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for g in keys:
        lines.append(f"| {g} ({counts.get(g, '?')}) | " + " | ".join(
            _pct(evals[n].get(split, {}).get(f"pass@1_by_{group}", {}).get(g)) for n in names) + " |")
    return lines


def render_markdown(summary: dict) -> str:
    from verirl.quickstart.pipeline import EVAL_SPLITS

    evals = summary["eval"]
    names = list(evals)
    main = [n for n in ("sft", "rl") if n in evals]
    sampling = summary["sampling"]
    lines = ["# verirl quickstart report", "", f"**{summary['final_line']}**", ""]
    sft = summary["training"].get("sft", {})
    probe = sft.get("probe")
    if probe:
        where = (f"reached at step {probe['stopped_at']}" if probe["stopped_at"] is not None
                 else f"not reached; SFT ran all {sft.get('steps')} steps")
        clocked = (f", clocked tasks (levels 3-4) at {_pct(probe['clocked_target'])}"
                   if probe.get("clocked_target") else "")
        last_clocked = (f", clocked {_pct(probe['last_pass_rate_clocked'])}"
                        if probe.get("last_pass_rate_clocked") is not None else "")
        lines += [(f"SFT stop: probe of {probe['tasks']} training tasks (greedy) at target "
                  f"{_pct(probe['target'])}{clocked} — {where} (last probe {_pct(probe['last_pass_rate'])}"
                  f"{last_clocked}, {probe['probes']} probes, {probe['seconds']} s)."), ""]
    else:
        lines += [f"SFT: {sft.get('steps')} steps (no probe).", ""]
    rl_prompts = (summary.get("data") or {}).get("rl_prompts")
    if rl_prompts:
        per_level = ", ".join(f"level {k}: {v}" for k, v in sorted(rl_prompts["levels"].items()))
        lines += [(f"RL prompts: {rl_prompts['tasks']} training tasks ({rl_prompts['distinct']} distinct), mix "
                   f"{rl_prompts['mix']} — {per_level}."), ""]
    lines += [(f"{sampling['n']} samples per held-out task at temperature {sampling['temperature']}, top-p "
              f"{sampling['top_p']}, at most {sampling['max_new_tokens']} new tokens, seed {sampling['seed']} — the "
              f"same settings for every checkpoint."), ""]
    for split, title in EVAL_SPLITS.items():
        if not any(split in evals[n] for n in names):
            continue
        first = next(evals[n][split] for n in names if split in evals[n])
        lines += [f"## Held out {title.split('held out ')[1]} ({first['tasks']} tasks)", ""]
        lines += _split_table(evals, split, names)
        for group in ("level", "family"):
            lines += ["", f"pass@1 by {group}:", ""] + _group_table(evals, split, group, main)
        lines += [""]
    if summary.get("ablation"):
        lines += render_ablation(summary["ablation"])
    lines += ["## Failure classes of the held-out samples", "", "| checkpoint | split | failures |", "|---|---|---|"]
    for name in names:
        for split, e in evals[name].items():
            fails = ", ".join(f"{k}: {v}" for k, v in sorted(e["failures"].items())) or "none"
            lines.append(f"| {name} | {split} | {fails} |")
    lines += ["", "## Time per stage", ""]
    machine = summary.get("machine")
    if machine:
        lines += [f"{machine['torch_threads']} torch thread(s) on {machine['usable_cores']} usable core(s), "
                  f"{machine['reward_workers']} simulation worker(s) (the last invocation).", ""]
    lines += ["| stage | wall seconds | CPU seconds (process + simulators) |", "|---|---|---|"]
    for stage, seconds in summary["timings"].items():
        lines.append(f"| {stage} | {seconds} | {summary['cpu_seconds'].get(stage, '–')} |")
    lines += [f"| total of the default pipeline | {summary['default_seconds']} | {summary['default_cpu_seconds']} |",
              f"| this invocation | {summary['wall_seconds']} | |", "", "## Curves", ""]
    for name, path in summary["plots"].items():
        lines.append(f"![{name}]({os.path.relpath(path, summary['report_dir'])})")
    return "\n".join(lines) + "\n"


def render_ablation(ablation: dict) -> list[str]:
    lines = ["## Ablation: entropy gate and dynamic sampling", "",
             (f"Every arm starts from the same SFT checkpoint (held-out-by-parameters pass@1 {_pct(ablation['sft'])});"
             f" seeds {ablation['seeds']}. Gains are in points over SFT; intervals are 95% Student-t intervals over "
             f"the RL seeds."), "",
             "| arm | pass@1 per seed | gain (mean, 95% CI) | gain levels 3-4 (mean, 95% CI) |", "|---|---|---|---|"]
    for arm, a in ablation["arms"].items():
        per_seed = ", ".join(_pct(v) for v in a["pass@1"])
        g, g34 = a["gain"], a["gain_levels_3_4"]
        lines.append(f"| {arm} | {per_seed} | {_pts(g[0])} [{_pts(g[1])}, {_pts(g[2])}] | "
                     + (f"{_pts(g34[0])} [{_pts(g34[1])}, {_pts(g34[2])}]" if g34 else "–") + " |")
    if ablation.get("differences"):
        lines += ["", ("Paired differences between arms (the same RL seeds; a t interval over the seeds, which holds "
                       "RL-run noise, and a bootstrap over the held-out tasks, which holds only the evaluation's):"),
                  "", "| difference | levels | mean | 95% CI over seeds | 95% CI over tasks | per seed |",
                  "|---|---|---|---|---|---|"]
        for d in ablation["differences"]:
            for label, key in (("all", "all"), ("3-4", "levels_3_4")):
                part = d.get(key)
                if part is None:
                    continue
                seeds, tasks = part["seeds"], part["tasks"]
                lines.append(f"| {d['a']} − {d['b']} | {label} | {_pts(seeds[0])} | [{_pts(seeds[1])}, "
                             f"{_pts(seeds[2])}] | [{_pts(tasks[1])}, {_pts(tasks[2])}] | "
                             + ", ".join(_pts(v) for v in part["per_seed"]) + " |")
    return lines + [""]


def _paired(values: dict[str, dict[int, float]], per_task: dict[str, dict[int, dict[str, float]]], a: str, b: str,
            seeds: list[int]) -> dict:
    """Arm ``a`` minus arm ``b`` on the seeds both ran: per seed, a t interval over them, a task bootstrap."""
    diffs = [values[a][s] - values[b][s] for s in seeds]
    return {"per_seed": diffs, "seeds": list(t_interval(diffs)),
            "tasks": list(paired_task_bootstrap([per_task[a][s] for s in seeds], [per_task[b][s] for s in seeds]))}


def ablation_summary(run, evals: dict) -> dict | None:
    """Per arm: pass@1 per RL seed, gain over SFT with a t interval; paired differences between every two arms.

    Reads the RL stages the run recorded in ``state.json`` (``rl_stages``: name -> arm and seed); ``None`` unless
    there are at least two evaluated RL stages (two arms, or one arm with several seeds). ``differences`` holds one
    entry per pair of arms in :data:`~verirl.quickstart.config.ARMS` order (``a`` minus ``b``), on all held-out
    tasks and on levels 3-4 alone.
    """
    from verirl.quickstart.config import ARMS
    from verirl.quickstart.evaluate import SEQUENTIAL_LEVELS, per_task_pass_rates

    recorded = run.state.get("rl_stages", {})
    stages = {n: info for n, info in recorded.items() if "test" in evals.get(n, {})}
    if len(stages) < 2:
        return None
    sft = evals["sft"]["test"]
    by_arm: dict[str, list[str]] = {}
    for name, info in sorted(stages.items(), key=lambda kv: (list(ARMS).index(kv[1]["arm"]), kv[1]["seed"], kv[0])):
        by_arm.setdefault(info["arm"], []).append(name)
    out = {"sft": sft["pass@1"], "seeds": sorted({info["seed"] for info in stages.values()}), "arms": {},
           "differences": []}
    values = {"all": {}, "levels_3_4": {}}
    per_task = {"all": {}, "levels_3_4": {}}
    for arm, names in by_arm.items():
        seeds = [stages[n]["seed"] for n in names]
        overall = [evals[n]["test"]["pass@1"] for n in names]
        seq = [evals[n]["test"].get("pass@1_levels_3_4") for n in names]
        has_seq = sft.get("pass@1_levels_3_4") is not None and None not in seq
        out["arms"][arm] = {
            "stages": names, "seeds": seeds, "pass@1": overall,
            "gain": list(t_interval([v - sft["pass@1"] for v in overall])),
            "gain_levels_3_4": (list(t_interval([v - sft["pass@1_levels_3_4"] for v in seq])) if has_seq else None),
        }
        rows = {seed: read_metrics(run.path("eval", f"{n}.jsonl")) for seed, n in zip(seeds, names)}
        values["all"][arm] = dict(zip(seeds, overall))
        per_task["all"][arm] = {seed: per_task_pass_rates(r) for seed, r in rows.items()}
        if has_seq:
            values["levels_3_4"][arm] = dict(zip(seeds, seq))
            per_task["levels_3_4"][arm] = {seed: per_task_pass_rates(r, SEQUENTIAL_LEVELS) for seed, r in rows.items()}
    arms = list(by_arm)
    for i, a in enumerate(arms):
        for b in arms[i + 1:]:
            common = sorted(set(values["all"][a]) & set(values["all"][b]))
            if not common:
                continue
            entry = {"a": a, "b": b, "seeds_used": common,
                     "all": _paired(values["all"], per_task["all"], a, b, common), "levels_3_4": None}
            if a in values["levels_3_4"] and b in values["levels_3_4"]:
                entry["levels_3_4"] = _paired(values["levels_3_4"], per_task["levels_3_4"], a, b, common)
            out["differences"].append(entry)
    return out


def final_line(evals: dict) -> str:
    """``held-out pass@1: SFT X% → RL Y%`` (held out by parameters), then levels 3-4 and unseen families."""
    sft, rl = evals["sft"], evals["rl"]
    line = f"held-out pass@1: SFT {100 * sft['test']['pass@1']:.1f}% → RL {100 * rl['test']['pass@1']:.1f}%"
    extra = []
    if sft["test"].get("pass@1_levels_3_4") is not None:
        extra.append(f"levels 3-4: {100 * sft['test']['pass@1_levels_3_4']:.1f}% → "
                     f"{100 * rl['test']['pass@1_levels_3_4']:.1f}%")
    if "test_family" in sft and "test_family" in rl:
        extra.append(f"unseen families: {100 * sft['test_family']['pass@1']:.1f}% → "
                     f"{100 * rl['test_family']['pass@1']:.1f}%")
    return line + (f" ({'; '.join(extra)})" if extra else "")


#: stages of the default pipeline (what the 20-minute budget covers)
DEFAULT_STAGES = ("data", "model", "sft", "eval_sft", "rl", "eval_rl")


def write_report(run, timings: dict, wall_seconds: float) -> dict:
    """Write ``report/report.md``, ``report/*.png`` and ``summary.json``; return the summary."""
    stages = run.state["stages"]
    evals = {name[len("eval_"):]: result for name, result in stages.items() if name.startswith("eval_")}
    report_dir = run.path("report")
    rl_runs = {name: read_metrics(run.path(name, "metrics.jsonl")) for name in evals if name.startswith("rl")}
    plots = plot_curves(rl_runs, read_metrics(run.path("sft", "metrics.jsonl")),
                        read_metrics(run.path("sft", "probe.jsonl")), report_dir)
    cpu = run.state.get("cpu_seconds", {})
    summary = {
        "final_line": final_line(evals),
        "eval": evals,
        "sampling": evals["sft"]["test"]["sampling"],
        "model": stages.get("model"),
        "data": stages.get("data"),
        "training": {k: v for k, v in stages.items() if k == "sft" or k.startswith("rl")},
        "ablation": ablation_summary(run, evals),
        "config": run.state["config"],
        "timings": timings,
        "cpu_seconds": cpu,
        "default_seconds": round(sum(timings.get(s, 0.0) for s in DEFAULT_STAGES), 1),
        "default_cpu_seconds": round(sum(cpu.get(s, 0.0) for s in DEFAULT_STAGES), 1),
        "wall_seconds": round(wall_seconds, 1),
        "machine": run.state.get("machine"),
        "plots": plots,
        "report_dir": report_dir,
    }
    with open(os.path.join(report_dir, "report.md"), "w", encoding="utf-8") as fh:
        fh.write(render_markdown(summary))
    with open(run.path("summary.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2, sort_keys=True)
    return summary
