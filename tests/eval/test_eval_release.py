"""``verirl push``: dry run builds and validates the release folder offline; the upload refuses to overwrite an
existing revision (checked against an in-memory stand-in for the Hub API, since no network is reachable here)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import types

import pytest

from verirl import release
from verirl.cli import main as verirl_main

pytestmark = pytest.mark.slow

SUMMARY = {"benchmark": {"name": "verilog-eval-v2", "task": "spec-to-rtl", "version": "v2", "commit": "c0ffee"},
           "pass_at_k": {"1": 0.25, "5": 0.5}, "n": 10, "problems": 156, "sampling": {"temperature": 0.8,
                                                                                       "top_p": 0.95},
           "tools": {"iverilog": "Icarus Verilog version 11.0"}, "known_broken_results": {}}


@pytest.fixture
def model_dir(tiny_model, tmp_path):
    folder = tmp_path / "trained"
    shutil.copytree(tiny_model, folder)
    (folder / "optimizer.pt").write_bytes(b"not for upload")
    ckpt = folder / "checkpoint-20"
    ckpt.mkdir()
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 20, "epoch": 1.0, "log_history": [
        {"loss": 2.5, "step": 10}, {"loss": 1.25, "reward": 0.4, "step": 20}]}))
    return str(folder)


@pytest.fixture
def eval_dir(tmp_path):
    folder = tmp_path / "eval-run"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps(SUMMARY))
    (folder / "report.md").write_text("# report\n")
    return str(folder)


def test_dry_run_builds_a_valid_folder_and_card(model_dir, eval_dir, tmp_path, capsys):
    recipe = tmp_path / "config_grpo.yaml"
    recipe.write_text("model_name_or_path: Qwen/Qwen2.5-Coder-1.5B-Instruct\nloss_type: dapo\n")
    stage = tmp_path / "stage"
    assert verirl_main(["push", "--model-dir", model_dir, "--repo-id", "my-org/tiny-verilog", "--dry-run",
                        "--eval", eval_dir, "--recipe", str(recipe), "--data", "verirl curriculum v1",
                        "--stage-dir", str(stage)]) == 0
    out = capsys.readouterr().out
    files = set(os.listdir(stage))
    assert {"config.json", "generation_config.json", "tokenizer_config.json", "README.md", "recipe.yaml"} <= files
    assert any(f.endswith(".safetensors") for f in files)
    assert "optimizer.pt" not in files and "checkpoint-20" not in files
    assert (stage / "eval" / "verilog-eval-v2-spec-to-rtl" / "summary.json").is_file()
    card = (stage / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0")
    assert "base_model: Qwen/Qwen2.5-Coder-1.5B-Instruct" in card
    assert "| verilog-eval-v2 v2 | spec-to-rtl | 156 | 10 | pass@1 | 25.00% |" in card
    assert "global step: 20" in card and "| `loss` | 1.25 | 20 |" in card and "## Intended use and limits" in card
    assert "nothing was uploaded" in out


def test_dry_run_rejects_a_folder_that_is_not_a_model(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "weights.txt").write_text("x")
    assert verirl_main(["push", "--model-dir", str(tmp_path / "m"), "--repo-id", "o/n", "--dry-run"]) == 2
    assert "is not a saved model" in capsys.readouterr().err
    assert verirl_main(["push", "--model-dir", str(tmp_path / "m"), "--repo-id", "no-slash", "--dry-run"]) == 2
    assert "ORG/NAME" in capsys.readouterr().err


class FakeHub:
    """Just enough of huggingface_hub.HfApi, in memory: repositories → branch → files."""

    def __init__(self):
        self.repos: dict[str, dict[str, set[str]]] = {}
        self.calls: list[str] = []

    def list_repo_refs(self, repo_id):
        from huggingface_hub.errors import RepositoryNotFoundError

        if repo_id not in self.repos:
            raise RepositoryNotFoundError(f"{repo_id} not found", response=types.SimpleNamespace(
                headers={}, status_code=404, request=None, url=""))
        return types.SimpleNamespace(branches=[types.SimpleNamespace(name=b) for b in self.repos[repo_id]],
                                     tags=[])

    def list_repo_files(self, repo_id, revision):
        return sorted(self.repos[repo_id][revision])

    def create_repo(self, repo_id, private, exist_ok):
        self.calls.append(f"create_repo {repo_id} private={private}")
        self.repos[repo_id] = {"main": {".gitattributes"}}

    def create_branch(self, repo_id, branch, exist_ok):
        self.calls.append(f"create_branch {branch}")
        self.repos[repo_id][branch] = set(self.repos[repo_id]["main"])

    def upload_folder(self, repo_id, folder_path, revision, commit_message, delete_patterns):
        self.calls.append(f"upload {revision} delete={delete_patterns}")
        files = {os.path.relpath(os.path.join(d, f), folder_path) for d, _, fs in os.walk(folder_path) for f in fs}
        self.repos[repo_id][revision] = (set() if delete_patterns else self.repos[repo_id][revision]) | files
        return types.SimpleNamespace(commit_url=f"https://hub.example/{repo_id}/commit/{revision}")


def _args(model_dir, **kw):
    base = {"model_dir": model_dir, "repo_id": "org/tiny", "revision": None, "private": True, "dry_run": False,
                "overwrite": False, "eval": [], "recipe": None, "base_model": "tiny-base", "data": None, "training_summary": None,
                "license": "apache-2.0", "stage_dir": None}
    base.update(kw)
    return argparse.Namespace(**base)


def test_push_creates_then_refuses_to_overwrite(model_dir, capsys):
    hub = FakeHub()
    assert release.run(_args(model_dir), api=hub) == 0
    assert hub.calls[0] == "create_repo org/tiny private=True" and "README.md" in hub.repos["org/tiny"]["main"]
    assert release.run(_args(model_dir), api=hub) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert release.run(_args(model_dir, revision="v2"), api=hub) == 0        # a new branch is fine
    assert "create_branch v2" in hub.calls
    assert release.run(_args(model_dir, revision="v2"), api=hub) == 2
    assert release.run(_args(model_dir, revision="v2", overwrite=True), api=hub) == 0
    assert hub.calls[-1] == "upload v2 delete=['*']"
