"""A short quickstart (a few steps per stage) produces every artifact, well-formed; a rerun resumes."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from verirl.quickstart import QuickstartConfig, run_quickstart
from verirl.quickstart.pipeline import QuickstartError

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("iverilog") is None or shutil.which("vvp") is None,
                       reason="needs Icarus Verilog (iverilog, vvp): apt-get install iverilog"),
]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def short_config(out, **overrides) -> QuickstartConfig:
    settings = {"out": str(out), "n_train": 48, "n_test": 6, "sft_steps": 3, "sft_batch_size": 8, "rl_steps": 2, "rl_prompts": 2,
                    "num_generations": 4, "eval_samples": 2, "max_completion_length": 24, "vocab_size": 400, "ablation": True}
    settings.update(overrides)
    return QuickstartConfig(**settings)


def _lines(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_short_pipeline_writes_every_artifact_and_resumes(tmp_path):
    out = tmp_path / "run"
    messages = []
    run_quickstart(short_config(out, ablation=False), say=messages.append)
    assert len(messages) == 6 and not any("skipped" in m for m in messages)
    # adding --ablation to a finished run runs only the ablation stages
    messages.clear()
    summary = run_quickstart(short_config(out), say=messages.append)
    assert [m for m in messages if "skipped" not in m] == ["[rl_ablation] ...", "[eval_rl_ablation] ..."]

    # dataset: task schema, held out by parameters
    train, test = _lines(out / "data" / "train.jsonl"), _lines(out / "data" / "test.jsonl")
    assert len(train) == 48 and len(test) == 6
    assert {"id", "prompt", "top", "reference", "testbench", "harness", "metadata"} <= set(train[0])
    assert not {t["metadata"]["param_key"] for t in train} & {t["metadata"]["param_key"] for t in test}

    # checkpoints load back through the real loading code
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for name in ("model_init", "sft", "rl", "rl_ablation"):
        AutoTokenizer.from_pretrained(out / name)
        AutoModelForCausalLM.from_pretrained(out / name)
    rl_metrics = _lines(out / "rl" / "metrics.jsonl")
    # the gate logs on every step that trains; a step whose groups all lack a signal (this 3-step SFT model passes
    # nothing) makes no optimizer step and says so
    trained = [r for r in rl_metrics if r.get("optimizer/skipped_steps") == 0.0]
    skipped = [r for r in rl_metrics if r.get("optimizer/skipped_steps") == 1.0]
    assert len(trained) + len(skipped) == 2
    assert all("entropy_gate/fraction" in r for r in trained)
    assert any("dynamic_sampling/keep_ratio" in r for r in rl_metrics)
    ablation_metrics = _lines(out / "rl_ablation" / "metrics.jsonl")
    assert not any("entropy_gate/fraction" in r for r in ablation_metrics)
    assert not any("dynamic_sampling/keep_ratio" in r for r in ablation_metrics)

    # held-out samples: n per task for every checkpoint, with the same sampling settings
    for name in ("sft", "rl", "rl_ablation"):
        rows = _lines(out / "eval" / f"{name}.jsonl")
        assert len(rows) == 6 * 2 and all(isinstance(r["passed"], bool) for r in rows)
        assert summary["eval"][name]["sampling"] == summary["eval"]["sft"]["sampling"]
        assert 0.0 <= summary["eval"][name]["pass@1"] <= summary["eval"][name]["pass@2"] <= 1.0

    # report: plots are real PNGs, the table and the final line are there
    for plot in ("reward", "pass_rate", "entropy_gate", "keep_ratio", "sft_loss"):
        path = out / "report" / f"{plot}.png"
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 2000, plot
    report = (out / "report" / "report.md").read_text()
    assert summary["final_line"] in report and "| rl_ablation |" in report
    assert summary["final_line"].startswith("held-out pass@1: SFT ") and " → RL " in summary["final_line"]
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["final_line"] == summary["final_line"]
    assert set(on_disk["timings"]) >= {"data", "model", "sft", "eval_sft", "rl", "eval_rl"}

    # a rerun resumes: every stage is skipped and the results are the same
    messages.clear()
    again = run_quickstart(short_config(out), say=messages.append)
    assert all("skipped" in m for m in messages) and len(messages) == 8
    assert again["eval"] == summary["eval"]

    # other settings in the same folder are refused; --fresh starts over
    with pytest.raises(QuickstartError, match="--fresh"):
        run_quickstart(short_config(out, sft_steps=4), say=messages.append)
    messages.clear()
    run_quickstart(short_config(out, ablation=False, fresh=True), say=messages.append)
    assert not any("skipped" in m for m in messages)
    assert not os.path.exists(out / "rl_ablation")


def test_bad_settings_fail_early(tmp_path):
    with pytest.raises(ValueError, match="num-generations"):
        short_config(tmp_path, num_generations=1)
    with pytest.raises(ValueError, match="hidden-size"):
        short_config(tmp_path, hidden_size=100)
    with pytest.raises(ValueError, match="temperature"):
        short_config(tmp_path, temperature=0.0)


def test_cli_flags_cover_every_setting():
    import argparse
    import dataclasses

    from verirl import quickstart
    from verirl.quickstart.config import from_args

    parser = argparse.ArgumentParser()
    quickstart.add_arguments(parser)
    args = parser.parse_args(["--seed", "4", "--ablation", "--rl-steps", "7", "--temperature", "0.8"])
    config = from_args(args)
    assert (config.seed, config.ablation, config.rl_steps, config.temperature) == (4, True, 7, 0.8)
    assert from_args(parser.parse_args([])) == QuickstartConfig()
    flags = {a.dest for a in parser._actions}
    assert {f.name for f in dataclasses.fields(QuickstartConfig)} <= flags
