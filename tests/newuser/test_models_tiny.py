"""`verirl models tiny` builds what recipes/tiny/*.yaml need, in the places they name, from nothing; it is idempotent,
refuses to replace what it did not build, and an interrupted build leaves nothing that looks like a model."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from verirl.models import build_tiny_kit, read_tiny_kit

from .conftest import ROOT, run_verirl

TINY = os.path.join(ROOT, "recipes", "tiny")


def _recipe_paths(recipe: str) -> dict[str, str]:
    with open(os.path.join(TINY, recipe)) as fh:
        data = yaml.safe_load(fh)
    return {k: data[k] for k in ("model_name_or_path", "dataset") if k in data}


@pytest.mark.parametrize("recipe", sorted(os.listdir(TINY)))
def test_the_kit_provides_every_local_path_a_tiny_recipe_names(recipe, tiny_kit):
    kit_root = os.path.dirname(tiny_kit["model"])  # .../runs/tiny
    for key, value in _recipe_paths(recipe).items():
        assert value.startswith("runs/tiny/"), f"{recipe}: {key}={value} is not under runs/tiny"
        assert os.path.exists(os.path.join(os.path.dirname(os.path.dirname(kit_root)), value)), (recipe, key, value)


def test_kit_contents_load(tiny_kit):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_kit["model"])
    model = AutoModelForCausalLM.from_pretrained(tiny_kit["model"])
    assert tok.chat_template and model.config.vocab_size == len(tok)
    with open(tiny_kit["tasks"]) as fh:
        tasks = [json.loads(line) for line in fh]
    with open(tiny_kit["pairs"]) as fh:
        pairs = [json.loads(line) for line in fh]
    assert tasks and all({"id", "prompt", "top", "reference", "testbench"} <= set(t) for t in tasks)
    assert len(pairs) == len(tasks) and all(p["chosen"] != p["rejected"] for p in pairs)
    assert read_tiny_kit(os.path.dirname(tiny_kit["model"]))["tasks"] == len(tasks)


def test_cli_builds_then_does_nothing_then_refuses_other_settings(tmp_path):
    first = run_verirl(["models", "tiny", "--tasks", "6"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "runs/tiny/model" in first.stdout and "verirl train --config recipes/tiny/" in first.stdout
    assert (tmp_path / "runs/tiny/model/config.json").is_file()
    stamp = (tmp_path / "runs/tiny/model/model.safetensors").stat().st_mtime_ns
    again = run_verirl(["models", "tiny", "--tasks", "6"], cwd=tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert (tmp_path / "runs/tiny/model/model.safetensors").stat().st_mtime_ns == stamp
    other = run_verirl(["models", "tiny", "--tasks", "7"], cwd=tmp_path)
    assert other.returncode == 2 and "--force" in other.stderr
    forced = run_verirl(["models", "tiny", "--tasks", "7", "--force"], cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert read_tiny_kit(tmp_path / "runs/tiny")["tasks"] == 7


def test_cli_does_not_replace_a_model_it_did_not_build(tmp_path):
    own = tmp_path / "runs/tiny/model"
    own.mkdir(parents=True)
    (own / "config.json").write_text("{}")
    proc = run_verirl(["models", "tiny"], cwd=tmp_path)
    assert proc.returncode == 2 and "was not written by `verirl models tiny`" in proc.stderr
    assert (own / "config.json").read_text() == "{}"


def test_an_interrupted_build_leaves_no_model(tmp_path, monkeypatch):
    from verirl.models import tiny

    def fail(out_dir, *args, **kwargs):
        os.makedirs(out_dir)
        open(os.path.join(out_dir, "config.json"), "w").close()  # half written, then the build dies
        raise KeyboardInterrupt

    monkeypatch.setattr(tiny, "build_tiny_model", fail)
    with pytest.raises(KeyboardInterrupt):
        build_tiny_kit(tmp_path / "kit", n_tasks=2)
    assert sorted(os.listdir(tmp_path / "kit")) == []
    assert read_tiny_kit(tmp_path / "kit") is None


def test_unknown_kit_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown setting"):
        build_tiny_kit(tmp_path, hidden=3)
