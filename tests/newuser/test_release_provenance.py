"""`verirl push` tells the truth about a model: the base model and recipe from the run record that `verirl train`
wrote (with the command-line overrides it ran), versions from the run, which part of a benchmark a figure is on, and
the training metrics as a table."""

from __future__ import annotations

import argparse
import json
import os
import shutil

import pytest

from verirl import release
from verirl.model_card import eval_coverage, resolve_base_model, training_summary
from verirl.train.provenance import RUN_RECORD, _redact_argv, base_model_origin, read_run_record

SUMMARY = {"benchmark": {"name": "verilog-eval-v2", "task": "spec-to-rtl", "version": "v2", "commit": "c0ffee",
                         "problems": 156},
           "pass_at_k": {"1": 0.25}, "n": 5, "problems": 7, "problems_in_benchmark": 156,
           "sampling": {"temperature": 0.8, "top_p": 0.95}, "known_broken_results": {}}


def _record(base, **extra):
    record = {"format": 1, "trainer": "grpo", "recipe": {"trainer": "grpo", "model_name_or_path": base,
                                                         "dataset": "data/tasks", "learning_rate": 2e-4},
              "recipe_file": "recipes/x/grpo.yaml", "overrides": {"learning_rate": 2e-4}, "base_model": base,
              "base_model_origin": base if "/" in base and not base.startswith(("runs", "/")) else None,
              "versions": {"verirl": "0.1.0", "trl": "1.16.0", "transformers": "5.17.0", "torch": "2.13.0"},
              "command": "verirl train --config recipes/x/grpo.yaml --learning_rate 2e-4", "global_step": 3}
    record.update(extra)
    return record


@pytest.fixture
def model_dir(tiny_kit, tmp_path):
    folder = tmp_path / "trained"
    shutil.copytree(tiny_kit["model"], folder)
    return folder


def _write_record(folder, record):
    (folder / RUN_RECORD).write_text(json.dumps(record))


def _push(model_dir, tmp_path, *extra):
    from verirl.cli import main

    stage = tmp_path / f"stage{len(os.listdir(tmp_path))}"
    status = main(["push", "--model-dir", str(model_dir), "--repo-id", "org/tiny", "--dry-run",
                   "--stage-dir", str(stage), *extra])
    return status, stage


def _card(stage):
    return (stage / "README.md").read_text()


def test_base_model_and_recipe_come_from_the_run_record(model_dir, tmp_path, capsys):
    _write_record(model_dir, _record("Qwen/Qwen2.5-Coder-1.5B-Instruct"))
    status, stage = _push(model_dir, tmp_path)
    assert status == 0, capsys.readouterr().err
    card = _card(stage)
    assert "base_model: Qwen/Qwen2.5-Coder-1.5B-Instruct" in card
    assert "- Base model: `Qwen/Qwen2.5-Coder-1.5B-Instruct`" in card and "not recorded" not in card.split("## Eval")[0]
    assert "verirl train --config recipes/x/grpo.yaml --learning_rate 2e-4" in card
    assert "learning_rate: 0.0002" in (stage / "recipe.yaml").read_text()
    assert "- Data: `data/tasks`" in card
    assert "trl 1.16.0" in card and "transformers 5.17.0" in card and "torch 2.13.0" in card
    staged = json.loads((stage / RUN_RECORD).read_text())
    assert staged["base_model"] == "Qwen/Qwen2.5-Coder-1.5B-Instruct" and "_path" not in staged


def test_the_recorded_override_wins_over_the_recipe_file(model_dir, tmp_path, capsys):
    """The model was trained from an override; --recipe still names the YAML's model: the record is what ran."""
    _write_record(model_dir, _record("org/override-model"))
    recipe = tmp_path / "grpo.yaml"
    recipe.write_text("trainer: grpo\nmodel_name_or_path: org/yaml-model\n")
    status, stage = _push(model_dir, tmp_path, "--recipe", str(recipe))
    assert status == 0
    card = _card(stage)
    assert "base_model: org/override-model" in card and "org/yaml-model" not in card
    assert "differs from the recipe recorded" in capsys.readouterr().err


def test_an_explicit_base_model_wins(model_dir, tmp_path):
    _write_record(model_dir, _record("org/recorded"))
    status, stage = _push(model_dir, tmp_path, "--base-model", "org/explicit")
    assert status == 0 and "base_model: org/explicit" in _card(stage) and "org/recorded`" not in _card(stage)


def test_a_chain_of_runs_leads_back_to_the_hub_model(model_dir, tmp_path):
    sft = tmp_path / "runs" / "sft"
    sft.mkdir(parents=True)
    _write_record(sft, _record("Qwen/Qwen2.5-Coder-1.5B-Instruct", trainer="sft"))
    assert base_model_origin(str(sft)) == "Qwen/Qwen2.5-Coder-1.5B-Instruct"
    _write_record(model_dir, _record(str(sft), base_model_origin=base_model_origin(str(sft))))
    status, stage = _push(model_dir, tmp_path)
    card = _card(stage)
    assert status == 0 and "base_model: Qwen/Qwen2.5-Coder-1.5B-Instruct" in card
    assert f"trained from the local folder `{sft}`" in card


def test_a_local_base_model_is_named_as_local_not_as_unknown(model_dir, tmp_path):
    _write_record(model_dir, _record("runs/tiny/model"))
    status, stage = _push(model_dir, tmp_path)
    card = _card(stage)
    assert status == 0 and "base_model:" not in card.split("---")[1]  # no fake Hub id in the metadata
    assert "a local model folder, `runs/tiny/model`" in card and "not recorded" not in card.split("## Eval")[0]


def test_not_recorded_only_when_nothing_is_known(model_dir, tmp_path):
    status, stage = _push(model_dir, tmp_path)
    assert status == 0 and "- Base model: not recorded" in _card(stage)


def test_resolve_base_model_precedence():
    rec = _record("org/a")
    assert resolve_base_model("org/x", rec, {"model_name_or_path": "org/b"}, "org/c").hub_id == "org/x"
    assert resolve_base_model(None, rec, {"model_name_or_path": "org/b"}, "org/c").hub_id == "org/a"
    assert resolve_base_model(None, None, {"model_name_or_path": "org/b"}, "org/c").hub_id == "org/b"
    assert resolve_base_model(None, None, {}, "org/c").hub_id == "org/c"
    assert resolve_base_model(None, None, {}, None).line.startswith("not recorded")


def test_a_corrupt_run_record_stops_the_release(model_dir, tmp_path, capsys):
    (model_dir / RUN_RECORD).write_text("{not json")
    status, _ = _push(model_dir, tmp_path)
    assert status == 2 and RUN_RECORD in capsys.readouterr().err


def test_a_checkpoint_folder_finds_its_runs_record(model_dir, tmp_path):
    _write_record(model_dir, _record("org/a"))
    ckpt = model_dir / "checkpoint-2"
    ckpt.mkdir()
    assert read_run_record(str(ckpt))["base_model"] == "org/a"


# ------------------------------------------------------------------------------------------------ evaluation


def test_a_subset_is_never_tabulated_as_the_benchmark(model_dir, tmp_path):
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "summary.json").write_text(json.dumps(SUMMARY))
    status, stage = _push(model_dir, tmp_path, "--eval", str(ev))
    card = _card(stage)
    assert status == 0
    assert "| verilog-eval-v2 v2 | spec-to-rtl | 7 of 156 (subset) | 5 | pass@1 | 25.00% |" in card
    assert "computed on 7 of its 156 problems" in card and "not comparable" in card


@pytest.mark.parametrize("summary, cell, partial", [
    ({"problems": 156, "problems_in_benchmark": 156}, "156 of 156", False),
    ({"problems": 7, "problems_in_benchmark": 156}, "7 of 156 (subset)", True),
    ({"problems": 150, "problems_in_benchmark": 156, "excluded_known_broken": True,
      "known_broken_results": {f"P{i}": {} for i in range(6)}}, "150 of 156 (6 known-broken excluded)", False),
    ({"problems": 140, "problems_in_benchmark": 156, "excluded_known_broken": True,
      "known_broken_results": {f"P{i}": {} for i in range(6)}}, "140 of 156 (subset)", True),
    ({"problems": 7, "benchmark": {"name": "rtllm", "problems": 50}}, "7 of 50 (subset)", True),  # older summaries
    ({"problems": 7}, "7", False),
])
def test_eval_coverage(summary, cell, partial):
    got_cell, warning = eval_coverage(summary)
    assert got_cell == cell and bool(warning) == partial


# ------------------------------------------------------------------------------------------------- training


def test_metrics_are_a_table_with_the_step_of_each_value(model_dir, tmp_path):
    log = [{"step": 1, "loss": 2.5, "reward": 0.1, "rewards/simulation/mean": 0.0},
           {"step": 2, "loss": 1.25, "reward": 0.4, "epoch": 0.5}]
    log += [{"step": 3, **{f"metric_{i:02d}": i / 3 for i in range(60)}}]
    (model_dir / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    status, stage = _push(model_dir, tmp_path)
    card = _card(stage)
    assert status == 0
    assert "| metric | last value | at step |" in card
    assert "| `loss` | 1.25 | 2 |" in card and "| `rewards/simulation/mean` | 0.0 | 1 |" in card
    assert "| `metric_59` | 19.666667 | 3 |" in card
    assert not any(line.count(" = ") > 5 for line in card.splitlines())  # no line of ~60 "k = v" figures
    assert card.index("`loss`") < card.index("`metric_00`")  # headline metrics first


def test_training_summary_prefers_trainer_state(model_dir):
    (model_dir / "trainer_state.json").write_text(json.dumps({"global_step": 20, "epoch": 1.0, "log_history": [
        {"loss": 2.5, "step": 10}, {"loss": 1.25, "step": 20}]}))
    (model_dir / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 9.0}) + "\n")
    summary = training_summary(str(model_dir))
    assert summary["global_step"] == 20 and summary["metrics"]["loss"] == {"value": 1.25, "step": 20}


def test_step_count_from_the_record_when_nothing_else_has_it(model_dir):
    assert training_summary(str(model_dir), record={"global_step": 3})["global_step"] == 3


# ------------------------------------------------------------------------------------------------ redaction


@pytest.mark.parametrize("argv, hidden", [
    (["verirl", "train", "--hub_token", "hf_abc"], "hf_abc"),
    (["verirl", "train", "--hub_token=hf_abc"], "hf_abc"),
    (["verirl", "train", "hub_token=hf_abc"], "hf_abc"),
    (["verirl", "train", "--wandb_api_key", "k123"], "k123"),
])
def test_secrets_do_not_reach_the_command_line_record(argv, hidden):
    assert hidden not in " ".join(_redact_argv(argv))


def test_tokenizer_settings_are_not_mistaken_for_secrets():
    argv = ["verirl", "train", "--max_tokens", "512", "pad_token=<pad>"]
    assert _redact_argv(argv) == argv


def test_push_run_uses_build_release(model_dir, tmp_path):
    """release.run reports inconsistencies as warnings on stderr and still builds."""
    args = argparse.Namespace(model_dir=str(model_dir), repo_id="org/t", revision=None, private=False, dry_run=True,
                              overwrite=False, eval=[], recipe=None, base_model=None, data=None,
                              training_summary=None, license="apache-2.0", stage_dir=str(tmp_path / "s"))
    assert release.run(args) == 0
