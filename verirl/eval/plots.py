"""PNG plots of an evaluation run: pass@k bars, failure-class breakdown, PPA scatter against the reference.

matplotlib is imported inside :func:`write_plots` with the non-interactive ``Agg`` backend (no display needed).
"""

from __future__ import annotations

import logging
import os

from .failures import FAILURE_CLASSES

logger = logging.getLogger(__name__)


def write_plots(summary: dict, out_dir: str) -> dict[str, str]:
    """Write ``pass_at_k.png``, ``failures.png`` and (when there are PPA figures) ``ppa.png``; returns paths."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    paths: dict[str, str] = {}
    bench = summary["benchmark"]
    title = bench["name"] + (f" {bench['task']}" if bench.get("task") else "")

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ks = list(summary["pass_at_k"])
    values = [100 * summary["pass_at_k"][k] for k in ks]
    bars = ax.bar([f"pass@{k}" for k in ks], values, color="#4C72B0")
    for bar, value in zip(bars, values):
        ax.annotate(f"{value:.1f}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom")
    ax.set_ylim(0, 105)
    ax.set_ylabel("% of problems")
    ax.set_title(f"{title} (n={summary['n']})")
    paths["plot_pass_at_k"] = _save(fig, plt, out_dir, "pass_at_k.png")

    classes = summary.get("failure_classes") or {}
    names = list(classes)
    fig, ax = plt.subplots(figsize=(6.5, 1.2 + 0.35 * max(len(names), 2)))
    if names:
        ax.barh([f"{n.replace('_', ' ')} ({FAILURE_CLASSES[n][0]})" for n in names], [classes[n] for n in names],
                color="#DD8452")
        ax.invert_yaxis()
        ax.set_xlabel("failed samples")
    else:
        ax.text(0.5, 0.5, "no failures", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    ax.set_title(f"{title}: failure classes")
    paths["plot_failures"] = _save(fig, plt, out_dir, "failures.png")

    ppa = summary.get("ppa")
    if ppa and ppa.get("points"):
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
        for ax, metric in zip(axes, ("area", "depth")):
            pts = [(p[f"{metric}_reference"], p[f"{metric}_candidate"]) for p in ppa["points"]
                   if p.get(f"{metric}_reference") is not None and p.get(f"{metric}_candidate") is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.scatter(xs, ys, s=14, alpha=0.7)
                hi = max(max(xs), max(ys)) * 1.05 or 1
                ax.plot([0, hi], [0, hi], color="grey", linewidth=0.8, linestyle="--")
            ax.set_xlabel(f"reference {metric}")
            ax.set_ylabel(f"candidate {metric}")
            ax.set_title(f"{metric} (below the line: better than the reference)", fontsize=9)
        paths["plot_ppa"] = _save(fig, plt, out_dir, "ppa.png")
    return paths


def _save(fig, plt, out_dir: str, name: str) -> str:
    path = os.path.join(out_dir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
