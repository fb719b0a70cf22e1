"""`verirl train` records what it ran in `<output_dir>/verirl_run.json`: the recipe with its command-line overrides
(which reloads to the same settings), every resolved setting, the versions and the command line; a resumed run keeps
the earlier parts; secrets never reach the file."""

from __future__ import annotations

import json
import os

import yaml

from verirl.config import load_recipe
from verirl.train.provenance import (
    REDACTED,
    RUN_RECORD,
    base_model_origin,
    finish_run_record,
    read_run_record,
    write_run_record,
)

from .conftest import ROOT

SFT = os.path.join(ROOT, "recipes", "tiny", "sft.yaml")


def test_the_record_holds_the_recipe_with_its_overrides(tmp_path):
    recipe = load_recipe(SFT, ["--learning_rate", "2e-4", f"output_dir={tmp_path}", "--max_steps=3"], check_only=True)
    path = write_run_record(recipe, str(tmp_path), argv=["verirl", "train", "--config", SFT, "--learning_rate", "2e-4"])
    assert path == str(tmp_path / RUN_RECORD)
    record = json.loads((tmp_path / RUN_RECORD).read_text())
    assert record["recipe"]["learning_rate"] == 2e-4 and record["recipe"]["max_steps"] == 3
    assert record["recipe"]["trainer"] == "sft" and record["recipe_file"] == SFT
    assert record["overrides"] == {"learning_rate": 2e-4, "output_dir": str(tmp_path), "max_steps": 3}
    assert record["resolved"]["training"]["learning_rate"] == 2e-4
    assert record["resolved"]["model"]["model_name_or_path"] == "runs/tiny/model" == record["base_model"]
    assert record["base_model_origin"] is None  # a local folder no record describes
    assert {"verirl", "trl", "transformers", "torch", "python"} <= set(record["versions"])
    assert record["versions"]["trl"] and record["command"].startswith("verirl train --config")
    assert record["start_step"] == 0 and record["finished"] is None


def test_the_recorded_recipe_reloads_to_the_same_settings(tmp_path):
    recipe = load_recipe(SFT, ["--learning_rate", "2e-4", "--gradient_accumulation_steps", "2"], check_only=True)
    write_run_record(recipe, str(tmp_path))
    record = read_run_record(str(tmp_path))
    replay = tmp_path / "replay.yaml"
    replay.write_text(yaml.safe_dump(record["recipe"]))
    again = load_recipe(str(replay), check_only=True)
    assert again.training.to_dict() == recipe.training.to_dict()
    assert again.model == recipe.model  # the training config holds verirl's settings too (compared above)


def test_a_resumed_run_keeps_the_earlier_parts(tmp_path):
    recipe = load_recipe(SFT, [f"output_dir={tmp_path}"], check_only=True)
    write_run_record(recipe, str(tmp_path), argv=["verirl", "train", "first"])
    finish_run_record(str(tmp_path), 2)
    write_run_record(recipe, str(tmp_path), start_step=2, argv=["verirl", "train", "second", "--resume"])
    write_run_record(recipe, str(tmp_path), start_step=4, argv=["verirl", "train", "third", "--resume"])
    finish_run_record(str(tmp_path), 6)
    record = read_run_record(str(tmp_path))
    assert record["command"] == "verirl train third --resume" and record["global_step"] == 6
    assert [p["command"] for p in record["previous"]] == ["verirl train first", "verirl train second --resume"]
    assert record["previous"][0]["global_step"] == 2 and "_path" not in record["previous"][0]
    # a fresh start (step 0) replaces the record: the old run's model is being overwritten
    write_run_record(recipe, str(tmp_path), argv=["verirl", "train", "fresh"])
    assert "previous" not in read_run_record(str(tmp_path))


def test_secrets_are_redacted(tmp_path):
    recipe = load_recipe(SFT, ["--hub_token", "hf_SECRET123", "--hub_model_id", "org/model"], check_only=True)
    write_run_record(recipe, str(tmp_path), argv=["verirl", "train", "--hub_token", "hf_SECRET123"])
    text = (tmp_path / RUN_RECORD).read_text()
    assert "hf_SECRET123" not in text
    record = json.loads(text)
    assert record["recipe"]["hub_token"] == REDACTED and record["overrides"]["hub_token"] == REDACTED
    assert record["recipe"]["hub_model_id"] == "org/model"  # not a secret


def test_base_model_origin_follows_a_chain_of_runs(tmp_path):
    sft, grpo = tmp_path / "sft", tmp_path / "grpo"
    for folder, base in ((sft, "Qwen/Qwen2.5-Coder-1.5B-Instruct"), (grpo, str(sft))):
        folder.mkdir()
        (folder / RUN_RECORD).write_text(json.dumps({"base_model": base}))
    assert base_model_origin(str(grpo)) == "Qwen/Qwen2.5-Coder-1.5B-Instruct"
    assert base_model_origin("org/name") == "org/name"
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / RUN_RECORD).write_text(json.dumps({"base_model": str(loop)}))
    assert base_model_origin(str(loop)) is None  # a record naming its own folder does not hang
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / RUN_RECORD).write_text("{")
    assert base_model_origin(str(tmp_path / "bad")) is None
