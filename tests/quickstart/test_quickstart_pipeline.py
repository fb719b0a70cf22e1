"""A short quickstart (a few steps per stage) produces every artifact, well-formed; a rerun resumes."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter

import pytest

from verirl.quickstart import QuickstartConfig, run_quickstart, usable_cores
from verirl.quickstart.pipeline import QuickstartError

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("iverilog") is None or shutil.which("vvp") is None,
                       reason="needs Icarus Verilog (iverilog, vvp): apt-get install iverilog"),
]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def short_config(out, **overrides) -> QuickstartConfig:
    settings = {"out": str(out), "n_train": 48, "n_test": 6, "n_test_family": 4, "sft_max_steps": 4, "sft_min_steps": 2,
                "sft_probe_every": 2, "sft_probe_tasks": 4, "sft_batch_size": 8, "rl_steps": 2, "rl_prompts": 2,
                "num_generations": 4, "eval_samples": 2, "max_completion_length": 24, "vocab_size": 400,
                "ablation": True, "ablation_seeds": 2}
    settings.update(overrides)
    return QuickstartConfig(**settings)


def _lines(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


ABLATION_STAGES = ["rl_neither_s0", "rl_full_s1", "rl_neither_s1"]


def test_short_pipeline_writes_every_artifact_and_resumes(tmp_path):
    out = tmp_path / "run"
    messages = []
    run_quickstart(short_config(out, ablation=False), say=messages.append)
    assert len(messages) == 6 and not any("skipped" in m for m in messages)
    # adding --ablation to a finished run runs only the ablation stages
    messages.clear()
    summary = run_quickstart(short_config(out), say=messages.append)
    assert [m for m in messages if "skipped" not in m] == [
        m for name in ABLATION_STAGES for m in (f"[{name}] ...", f"[eval_{name}] ...")]

    # dataset: task schema, held out by parameters and by family
    train, test = _lines(out / "data" / "train.jsonl"), _lines(out / "data" / "test.jsonl")
    family = _lines(out / "data" / "test_family.jsonl")
    assert len(train) == 48 and len(test) == 6 and len(family) == 4
    assert {"id", "prompt", "top", "reference", "testbench", "harness", "metadata"} <= set(train[0])
    assert not {t["metadata"]["param_key"] for t in train} & {t["metadata"]["param_key"] for t in test}
    assert {t["metadata"]["family"] for t in family} == {"subtractor"}
    assert "subtractor" not in {t["metadata"]["family"] for t in train + test}

    # RL prompts (--rl-prompt-mix balanced, the default): training tasks only, every level the same share
    prompts = _lines(out / "data" / "rl_prompts.jsonl")
    levels = Counter(t["metadata"]["level"] for t in prompts)
    assert len(set(levels.values())) == 1 and len(prompts) == len(levels) * (48 // len(levels))
    assert {t["id"] for t in prompts} <= {t["id"] for t in train}
    assert summary["data"]["rl_prompts"]["mix"] == "balanced"
    assert summary["data"]["rl_prompts"]["levels"] == {str(k): v for k, v in levels.items()}

    # the SFT probe ran on training tasks only, at the configured steps, and is reported
    probes = _lines(out / "sft" / "probe.jsonl")
    assert [p["step"] for p in probes] == [2, 4] and all(0.0 <= p["pass_rate"] <= 1.0 for p in probes)
    sft = summary["training"]["sft"]
    assert sft["probe"]["probes"] == 2 and sft["probe"]["target"] == 0.45 and sft["steps"] == 4
    assert sft["probe"]["clocked_target"] == 0.25 and all(0.0 <= p["pass_rate_clocked"] <= 1.0 for p in probes)

    # checkpoints load back through the real loading code
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for name in ("model_init", "sft", "rl", *ABLATION_STAGES):
        AutoTokenizer.from_pretrained(out / name)
        AutoModelForCausalLM.from_pretrained(out / name)
    # the gate logs on every step that trains; a step whose groups all lack a signal (a 4-step SFT model passes
    # nothing) makes no optimizer step and says so
    for name in ("rl", "rl_full_s1"):
        rl_metrics = _lines(out / name / "metrics.jsonl")
        trained = [r for r in rl_metrics if r.get("optimizer/skipped_steps") == 0.0]
        skipped = [r for r in rl_metrics if r.get("optimizer/skipped_steps") == 1.0]
        assert len(trained) + len(skipped) == 2
        assert all("entropy_gate/fraction" in r for r in trained)
        assert any("dynamic_sampling/keep_ratio" in r for r in rl_metrics)
    for name in ("rl_neither_s0", "rl_neither_s1"):
        ablation_metrics = _lines(out / name / "metrics.jsonl")
        assert not any("entropy_gate/fraction" in r for r in ablation_metrics)
        assert not any("dynamic_sampling/keep_ratio" in r for r in ablation_metrics)

    # held-out samples: n per task for every checkpoint and split, with the same sampling settings
    for name in ("sft", "rl", *ABLATION_STAGES):
        for split, suffix, n_tasks in (("test", "", 6), ("test_family", ".test_family", 4)):
            rows = _lines(out / "eval" / f"{name}{suffix}.jsonl")
            assert len(rows) == n_tasks * 2 and all(isinstance(r["passed"], bool) for r in rows)
            e = summary["eval"][name][split]
            assert e["sampling"] == summary["eval"]["sft"]["test"]["sampling"]
            assert 0.0 <= e["pass@1"] <= e["pass@2"] <= 1.0
            assert set(e["pass@1_by_level"]) == {str(r["level"]) for r in rows}

    # the ablation: two seeds per arm, the same SFT checkpoint, intervals
    ablation = summary["ablation"]
    assert set(ablation["arms"]) == {"full", "neither"} and ablation["seeds"] == [0, 1]
    assert ablation["arms"]["full"]["stages"] == ["rl", "rl_full_s1"]
    (pair,) = ablation["differences"]
    assert (pair["a"], pair["b"], pair["seeds_used"]) == ("full", "neither", [0, 1])
    for scope in ("all", "levels_3_4"):
        low, high = pair[scope]["seeds"][1:]
        assert low <= pair[scope]["seeds"][0] <= high and len(pair[scope]["per_seed"]) == 2

    # report: plots are real PNGs, the tables and the final line are there
    for plot in ("reward", "pass_rate", "entropy_gate", "keep_ratio", "sft_loss"):
        path = out / "report" / f"{plot}.png"
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 2000, plot
    report = (out / "report" / "report.md").read_text()
    assert summary["final_line"] in report and "| rl_neither_s1 |" in report and "## Ablation" in report
    assert "Held out by family" in report and "Held out by parameters" in report
    assert "RL prompts: " in report and "mix balanced" in report
    assert summary["final_line"].startswith("held-out pass@1: SFT ") and " → RL " in summary["final_line"]
    assert "unseen families: " in summary["final_line"]
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["final_line"] == summary["final_line"]
    assert set(on_disk["timings"]) >= {"data", "model", "sft", "eval_sft", "rl", "eval_rl"}
    assert set(on_disk["cpu_seconds"]) == set(on_disk["timings"]) and on_disk["default_cpu_seconds"] > 0
    # the default --torch-threads 0 is one torch thread per usable core, and the report says what ran
    cores = usable_cores()
    assert on_disk["machine"] == {"usable_cores": cores, "torch_threads": cores, "reward_workers": 2}
    assert f"{cores} torch thread(s) on {cores} usable core(s)" in report

    # every recorded verdict re-scores identically through `verirl score`; a tampered verdict is caught
    from verirl.quickstart.rescore import main as rescore_main
    from verirl.quickstart.rescore import rescore_run

    rescored = rescore_run(str(out))
    assert len(rescored) == 2 * 5 and all(not r["differences"] for r in rescored.values())
    rows = _lines(out / "eval" / "rl.jsonl")
    rows[0]["passed"] = not rows[0]["passed"]
    (out / "eval" / "rl.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert rescore_main([str(out)]) == 1
    assert rescore_run(str(out))["eval/rl.jsonl"]["differences"][0]["row"] == 0
    rows[0]["passed"] = not rows[0]["passed"]
    (out / "eval" / "rl.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    # a rerun resumes: every stage is skipped and the results are the same
    messages.clear()
    again = run_quickstart(short_config(out), say=messages.append)
    assert all("skipped" in m for m in messages) and len(messages) == 6 + 2 * len(ABLATION_STAGES)
    assert again["eval"] == summary["eval"]

    # other settings in the same folder are refused; --fresh starts over
    with pytest.raises(QuickstartError, match="--fresh"):
        run_quickstart(short_config(out, sft_max_steps=6), say=messages.append)
    messages.clear()
    summary = run_quickstart(short_config(out, ablation=False, fresh=True, sft_probe_target=0.0,
                                          rl_prompt_mix="natural"), say=messages.append)
    assert not any("skipped" in m for m in messages)
    assert not os.path.exists(out / "rl_neither_s0") and not os.path.exists(out / "sft" / "probe.jsonl")
    # --rl-prompt-mix natural: RL draws from the training split itself
    assert not os.path.exists(out / "data" / "rl_prompts.jsonl") and summary["data"]["rl_prompts"]["mix"] == "natural"
    assert summary["data"]["rl_prompts"]["tasks"] == summary["data"]["rl_prompts"]["distinct"] == 48


def test_bad_settings_fail_early(tmp_path):
    with pytest.raises(ValueError, match="num-generations"):
        short_config(tmp_path, num_generations=1)
    with pytest.raises(ValueError, match="hidden-size"):
        short_config(tmp_path, hidden_size=100)
    with pytest.raises(ValueError, match="temperature"):
        short_config(tmp_path, temperature=0.0)
    with pytest.raises(ValueError, match="unknown families"):
        short_config(tmp_path, heldout_families="subtractor,nope")
    with pytest.raises(ValueError, match="ablation-arms"):
        short_config(tmp_path, ablation_arms="full,no_entropy")
    with pytest.raises(ValueError, match="sft-probe-target"):
        short_config(tmp_path, sft_probe_target=1.5)
    with pytest.raises(ValueError, match="sft-probe-clocked-target"):
        short_config(tmp_path, sft_probe_clocked_target=-0.1)
    with pytest.raises(ValueError, match="sft-min-steps"):
        short_config(tmp_path, sft_min_steps=10, sft_max_steps=5)
    with pytest.raises(ValueError, match="torch-threads"):
        short_config(tmp_path, torch_threads=-1)
    with pytest.raises(ValueError, match="rl-prompt-mix"):
        short_config(tmp_path, rl_prompt_mix="uniform")


def test_torch_threads_default_to_the_usable_cores_and_are_restored():
    import torch

    from verirl.quickstart import _torch_threads, resolve_torch_threads

    assert resolve_torch_threads(3) == 3 and resolve_torch_threads(0) == usable_cores() >= 1
    before = torch.get_num_threads()
    with _torch_threads(0):
        assert torch.get_num_threads() == usable_cores()
    with _torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


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
