"""The quickstart's report: PNG learning curves, a Markdown summary table and ``summary.json``.

Curves come from the trainers' ``metrics.jsonl`` (one record per logged step): RL reward, pass rate per task
level, the fraction of tokens the entropy gate updated, the dynamic-sampling keep ratio, and the SFT loss. The
table compares the held-out evaluation of every checkpoint, all sampled with the same settings.
"""

from __future__ import annotations

import json
import logging
import os

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


def plot_curves(runs: dict[str, list[dict]], sft_records: list[dict], out_dir: str) -> dict[str, str]:
    """One PNG per curve; ``runs`` maps a label (``rl``, ``rl_ablation``) to its metrics records."""
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
            ax.legend(fontsize=8)
        save(fig, name)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps, values = _series(sft_records, "loss")
    ax.plot(steps, values)
    ax.set_title("SFT loss")
    ax.set_xlabel("SFT step")
    save(fig, "sft_loss")
    return written


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def render_markdown(summary: dict) -> str:
    evals = summary["eval"]
    names = list(evals)
    ks = sorted({k for e in evals.values() for k in e if k.startswith("pass@") and "_by_" not in k})
    lines = ["# verirl quickstart report", "", f"**{summary['final_line']}**", "",
             (f"Held-out split: {evals[names[0]]['tasks']} tasks whose parameter combinations never appear in "
             f"training; {summary['sampling']['n']} samples per task at temperature "
             f"{summary['sampling']['temperature']}, top-p {summary['sampling']['top_p']}, at most "
             f"{summary['sampling']['max_new_tokens']} new tokens, seed {summary['sampling']['seed']} — the same "
             f"settings for every checkpoint."), "",
             "| checkpoint | " + " | ".join(ks) + " | mean reward |",
             "|---|" + "---|" * (len(ks) + 1)]
    for name in names:
        e = evals[name]
        reward = "–" if e.get("mean_reward") is None else f"{e['mean_reward']:.3f}"
        lines.append(f"| {name} | " + " | ".join(_pct(e.get(k)) for k in ks) + f" | {reward} |")
    for group in ("level", "family"):
        keys = sorted({g for e in evals.values() for g in e.get(f"pass@1_by_{group}", {})})
        lines += ["", f"pass@1 by {group}:", "", f"| {group} | " + " | ".join(names) + " |",
                  "|---|" + "---|" * len(names)]
        for g in keys:
            lines.append(f"| {g} | " + " | ".join(_pct(evals[n].get(f"pass@1_by_{group}", {}).get(g))
                                                    for n in names) + " |")
    lines += ["", "Failure classes of the held-out samples:", "", "| checkpoint | failures |", "|---|---|"]
    for name in names:
        fails = ", ".join(f"{k}: {v}" for k, v in sorted(evals[name]["failures"].items())) or "none"
        lines.append(f"| {name} | {fails} |")
    lines += ["", "Time per stage (seconds):", "", "| stage | seconds |", "|---|---|"]
    for stage, seconds in summary["timings"].items():
        lines.append(f"| {stage} | {seconds} |")
    lines += [f"| total (this invocation) | {summary['wall_seconds']} |", "", "Curves:", ""]
    for name, path in summary["plots"].items():
        lines.append(f"![{name}]({os.path.relpath(path, summary['report_dir'])})")
    return "\n".join(lines) + "\n"


def final_line(evals: dict) -> str:
    sft = evals["sft"]["pass@1"]
    line = f"held-out pass@1: SFT {100 * sft:.1f}% → RL {100 * evals['rl']['pass@1']:.1f}%"
    if "rl_ablation" in evals:
        line += f" (ablation without entropy gate and dynamic sampling: {100 * evals['rl_ablation']['pass@1']:.1f}%)"
    return line


def write_report(run, timings: dict, wall_seconds: float) -> dict:
    """Write ``report/report.md``, ``report/*.png`` and ``summary.json``; return the summary."""
    stages = run.state["stages"]
    evals = {name[len("eval_"):]: result for name, result in stages.items() if name.startswith("eval_")}
    report_dir = run.path("report")
    rl_runs = {name: read_metrics(run.path(name, "metrics.jsonl")) for name in ("rl", "rl_ablation")
               if name in evals}
    plots = plot_curves(rl_runs, read_metrics(run.path("sft", "metrics.jsonl")), report_dir)
    summary = {
        "final_line": final_line(evals),
        "eval": evals,
        "sampling": evals["sft"]["sampling"],
        "model": stages.get("model"),
        "data": stages.get("data"),
        "training": {k: stages[k] for k in ("sft", "rl", "rl_ablation") if k in stages},
        "config": run.state["config"],
        "timings": timings,
        "wall_seconds": round(wall_seconds, 1),
        "plots": plots,
        "report_dir": report_dir,
    }
    with open(os.path.join(report_dir, "report.md"), "w", encoding="utf-8") as fh:
        fh.write(render_markdown(summary))
    with open(run.path("summary.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2, sort_keys=True)
    return summary
