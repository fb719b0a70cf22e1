"""Offline assets for the training tests: curriculum tasks, SFT/DPO files and a tiny model built from them."""

from __future__ import annotations

import json
import os
import shutil

import pytest


def write_jsonl(rows, path):
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in rows)
    return str(path)


def build_assets(root) -> dict[str, str]:
    from data_pipeline.curriculum import CurriculumConfig, generate_curriculum
    from verirl.models import build_tiny_model

    root = str(root)
    tasks = generate_curriculum(CurriculumConfig(seed=0, n_train=24, n_test=4, max_level=2))["train"]
    pairs = [
        {"prompt": t["prompt"], "chosen": f"```verilog\n{t['reference']}```",
         "rejected": f"```verilog\nmodule {t['top']}();\nendmodule\n```"}
        for t in tasks
    ]
    texts = [t["prompt"] for t in tasks] + [t["reference"] for t in tasks] + ["```verilog\n", "\n```"] * 4
    model = build_tiny_model(os.path.join(root, "model"), texts, vocab_size=512, hidden_size=64, num_heads=1,
                             max_position_embeddings=512)
    return {
        "model": model,
        "tasks": write_jsonl(tasks, os.path.join(root, "tasks.jsonl")),
        "pairs": write_jsonl(pairs, os.path.join(root, "pairs.jsonl")),
    }


def _has_icarus() -> bool:
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


#: tests whose recipes score completions with the real simulation reward
needs_icarus = pytest.mark.skipif(not _has_icarus(), reason="needs Icarus Verilog (iverilog, vvp): apt-get install iverilog")
