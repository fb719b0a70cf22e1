"""Every recipe in recipes/tiny/ trains as shipped — no override — from a clean folder after the one documented
command, `verirl models tiny`; and `--check` fails, naming what to run, while that command has not been run."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from verirl.cli import main as verirl_main

from .conftest import ROOT

TINY = sorted(n[:-5] for n in os.listdir(os.path.join(ROOT, "recipes", "tiny")) if n.endswith(".yaml"))
NEEDS_ICARUS = {"grpo", "dapo"}  # their recipes score with the simulation reward


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory):
    """A folder laid out like a fresh clone (the recipes, nothing under runs/), after `verirl models tiny`."""
    root = tmp_path_factory.mktemp("clone")
    shutil.copytree(os.path.join(ROOT, "recipes"), root / "recipes")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert verirl_main(["models", "tiny"]) == 0
    finally:
        os.chdir(cwd)
    return root


@pytest.mark.parametrize("name", TINY)
def test_check_fails_before_the_kit_is_built(name, tmp_path, monkeypatch, capsys):
    shutil.copytree(os.path.join(ROOT, "recipes"), tmp_path / "recipes")
    monkeypatch.chdir(tmp_path)
    assert verirl_main(["train", "--config", f"recipes/tiny/{name}.yaml", "--check"]) == 2
    err = capsys.readouterr().err
    assert "runs/tiny/model" in err and "verirl models tiny" in err


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.eda]) if n in NEEDS_ICARUS else n
                                  for n in TINY])
def test_tiny_recipe_trains_as_shipped(name, fresh_clone, monkeypatch, capsys, request):
    if name in NEEDS_ICARUS:
        request.getfixturevalue("eda")
    monkeypatch.chdir(fresh_clone)
    assert verirl_main(["train", "--config", f"recipes/tiny/{name}.yaml", "--check"]) == 0
    assert verirl_main(["train", "--config", f"recipes/tiny/{name}.yaml"]) == 0
    out = capsys.readouterr().out
    assert f"model saved to runs/tiny/{name}" in out
    run_dir = fresh_clone / "runs" / "tiny" / name
    assert (run_dir / "config.json").is_file()
    with open(run_dir / "verirl_run.json") as fh:
        record = json.load(fh)
    assert record["recipe"]["trainer"] == name and record["recipe_file"] == f"recipes/tiny/{name}.yaml"
    assert record["base_model"] == "runs/tiny/model" and record["global_step"] >= 1
    with open(run_dir / "metrics.jsonl") as fh:
        logged = set().union(*(json.loads(line) for line in fh))
    if name == "dapo":  # every reward is logged under the recipe's name for it
        assert {"rewards/overlong/mean", "rewards/simulation/mean", "rewards/format/mean"} <= logged
        assert not any("soft_overlong" in key for key in logged)


def test_check_settings_validates_without_the_model(tmp_path, monkeypatch, capsys):
    """--check-settings validates a recipe on a machine without its model and data (e.g. a GPU recipe on a laptop)."""
    shutil.copytree(os.path.join(ROOT, "recipes"), tmp_path / "recipes")
    monkeypatch.chdir(tmp_path)
    assert verirl_main(["train", "--config", "recipes/tiny/grpo.yaml", "--check-settings"]) == 0
    assert "settings only" in capsys.readouterr().out


@pytest.mark.parametrize("key, value", [("dataset", "runs/none/tasks.jsonl"), ("eval_dataset", "nowhere.jsonl")])
def test_check_fails_for_missing_data(key, value, fresh_clone, monkeypatch, capsys):
    monkeypatch.chdir(fresh_clone)
    assert verirl_main(["train", "--config", "recipes/tiny/sft.yaml", f"{key}={value}", "--check"]) == 2
    err = capsys.readouterr().err
    assert f"{key} {value!r} does not exist" in err and err.count("does not exist") == 1


def test_check_passes_for_a_hub_id_without_looking_it_up(fresh_clone, monkeypatch, capsys):
    monkeypatch.chdir(fresh_clone)
    assert verirl_main(["train", "--config", "recipes/tiny/sft.yaml", "model_name_or_path=org/some-model",
                        "--check"]) == 0
