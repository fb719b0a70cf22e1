"""Build without an LLM (manifest, dataset files, drop report), the `verirl data` CLI, and the
example recipes."""

from __future__ import annotations

import glob
import json
import os

import pytest
import yaml
from data_fixtures import BENCH_RTLLM, BENCH_VE, CORPUS

from data_pipeline.build import Builder, load_tasks_dataset
from data_pipeline.config import DifficultyConfig, PreferenceConfig, load_build_config
from rewards.task import Task
from verirl.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: what the fixture corpus loses, and why (every reason of the filter stages is exercised)
EXPECTED_DROPS = {"broken": "parse_error", "orphan": "unresolved_dependency", "wire1": "too_short",
                  "adder8": "exact_duplicate", "two_edges": "synth", "alu8_v2": "near_duplicate",
                  "TopModule": "contaminated"}


def recipe(tmp_path, **extra) -> str:
    data = {"output_dir": str(tmp_path / "out"), "sources": [{"kind": "folder", "path": CORPUS}],
            "decontaminate": {"enabled": True, "benchmarks": [{"kind": "verilog-eval", "path": BENCH_VE},
                                                              {"kind": "rtllm", "path": BENCH_RTLLM}]},
            "shard_size": 5, **extra}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.eda
def test_build_writes_dataset_manifest_and_drop_report(tmp_path, eda):
    manifest = Builder(load_build_config(recipe(tmp_path)), progress=False).run()
    counts = manifest["counts"]
    assert counts["split"] == 16 and counts["tasks"] == 9
    assert list(counts) == ["split", "structure", "exact_dedupe", "decontaminate", "interface", "compile",
                            "scorable", "synth", "near_dedupe", "roundtrip", "tasks"]
    assert all(a >= b for a, b in zip(list(counts.values()), list(counts.values())[1:]))  # monotone
    drops = [json.loads(line) for line in open(tmp_path / "out" / "drops.jsonl")]
    assert {d["top"]: d["reason"] for d in drops} == EXPECTED_DROPS
    assert sum(manifest["drops"].values()) == counts["split"] - counts["tasks"]
    assert manifest["drops_by_stage"]["structure"] == {"parse_error": 1, "unresolved_dependency": 1, "too_short": 1}
    assert manifest["tool_versions"]["yosys"] and manifest["tool_versions"]["iverilog"]
    assert manifest["packages"]["datasketch"] and manifest["seed"] == 0
    # seconds per stage and the throughput are in the summary
    assert {"split", "structure", "compile", "scorable", "synth", "total"} <= set(manifest["timings_s"])
    assert manifest["throughput"]["modules"] == 16 and manifest["throughput"]["modules_per_s"] > 0
    assert manifest["sources"]["corpus"]["items"] == 14 and manifest["shards"]["committed"] == 4

    jsonl = load_tasks_dataset(manifest["dataset"]["files"]["jsonl"])
    parquet = load_tasks_dataset(manifest["dataset"]["files"]["parquet"])
    assert jsonl["id"] == parquet["id"] and len(set(parquet["id"])) == 9
    for row in parquet:
        task = Task.from_dict(row)  # the reward engine's schema
        assert task.reference and task.top in task.reference and task.harness == "verirl"
        meta = row["metadata"]
        assert meta["interface"]["name"] == task.top and meta["stats"]["cells"] is not None
        assert meta["provenance"]["key"].startswith("corpus/")
    parity = next(r for r in parquet if r["top"] == "parity_top")
    assert parity["metadata"]["provenance"]["dependencies"] == ["parity_core", "popcount8"]
    counter = next(r for r in parquet if r["top"] == "up_counter")["metadata"]["interface"]
    assert counter["resets"] == [{"name": "rst_n", "polarity": "low", "kind": "async"}]

    # rerunning the finished build is a no-op that reproduces the same files
    again = Builder(load_build_config(recipe(tmp_path)), progress=False).run()
    assert again["counts"] == counts
    assert load_tasks_dataset(again["dataset"]["files"]["parquet"])["id"] == parquet["id"]

    # a run stopped by max_modules inside a shard, then continued over the whole corpus, equals a fresh run
    out2 = tmp_path / "partial"
    Builder(load_build_config(recipe(tmp_path), {"output_dir": str(out2), "max_modules": 7}), progress=False).run()
    grown = Builder(load_build_config(recipe(tmp_path), {"output_dir": str(out2)}), progress=False).run()
    assert grown["counts"] == counts
    assert load_tasks_dataset(grown["dataset"]["files"]["parquet"])["id"] == parquet["id"]


@pytest.mark.eda
def test_cli_steps_chain_and_report(tmp_path, capsys, eda):
    modules, kept, dedup, clean = (str(tmp_path / f"{n}.jsonl") for n in ("m", "k", "d", "c"))
    assert main(["data", "split", "--folder", CORPUS, "--out", modules]) == 0
    assert json.loads(capsys.readouterr().out)["modules"] == 16
    assert main(["data", "filter", "--input", modules, "--out", kept, "--drops", str(tmp_path / "fd.jsonl"),
                 "--no-synth"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["drop:parse_error"] == 1 and summary["kept"] == 13
    assert main(["data", "dedupe", "--input", kept, "--out", dedup]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["drop:exact_duplicate"] == 1 and summary["drop:near_duplicate"] == 1
    assert main(["data", "decontaminate", "--input", dedup, "--out", clean, "--drops", str(tmp_path / "cd.jsonl"),
                 "--verilog-eval", BENCH_VE]) == 0
    assert json.loads(capsys.readouterr().out)["drop:contaminated"] == 1
    tops = [json.loads(line)["top"] for line in open(clean)]
    assert "TopModule" not in tops and "up_counter" in tops


def test_cli_config_errors_exit_2_with_the_key_named(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("output_dir: /tmp/x\nsources: [{kind: folder, path: /tmp}]\nshard_sise: 3\n")
    assert main(["data", "build", "--config", str(bad)]) == 2
    assert "shard_sise" in capsys.readouterr().err
    assert main(["data", "build", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert main(["data", "split", "--out", str(tmp_path / "x.jsonl")]) == 2  # no source given
    assert "no source" in capsys.readouterr().err


def test_example_recipe_runs_from_the_repository_root(tmp_path, capsys, eda, monkeypatch):
    monkeypatch.chdir(REPO)
    path = os.path.join("recipes", "data", "example_fixture.yaml")
    assert main(["data", "build", "--config", path, "--no-progress", "--output-dir", str(tmp_path / "ex")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"]["tasks"] == 9 and summary["drops"]["contaminated"] == 1


def test_cli_build_runs_end_to_end(tmp_path, capsys, eda):
    path = recipe(tmp_path, filters={"synthesize": False}, max_modules=6)
    assert main(["data", "build", "--config", path, "--no-progress", "--output-dir", str(tmp_path / "o2")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"]["split"] == 6 and os.path.isfile(tmp_path / "o2" / "manifest.json")


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "recipes", "data", "*.yaml"))))
def test_example_recipes_parse(path):
    data = yaml.safe_load(open(path))
    if "tasks" in data:
        cls = PreferenceConfig if "margin" in data else DifficultyConfig
        load_build_config(path, cls=cls).validate_for_run()
    else:
        cfg = load_build_config(path)
        cfg.validate_for_run()
        assert cfg.sources


def test_every_config_field_is_documented():
    import dataclasses

    from data_pipeline import config

    doc = open(os.path.join(REPO, "docs", "data_pipeline.md"), encoding="utf-8").read()
    classes = [config.BuildConfig, config.SourceConfig, config.FilterConfig, config.DedupeConfig,
               config.DecontaminationConfig, config.BenchmarkConfig, config.RoundTripConfig, config.LLMConfig,
               config.PreferenceConfig, config.DifficultyConfig]
    for cls in classes:
        for field in dataclasses.fields(cls):
            assert field.metadata.get("help"), f"{cls.__name__}.{field.name} has no help text"
            assert f"| `{field.name}` |" in doc, f"{cls.__name__}.{field.name} is not in docs/data_pipeline.md"


def test_data_pipeline_never_imports_verirl_and_keeps_heavy_imports_lazy():
    import ast

    for path in glob.glob(os.path.join(REPO, "data_pipeline", "**", "*.py"), recursive=True):
        tree = ast.parse(open(path, encoding="utf-8").read())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            assert not any(n == "verirl" or n.startswith("verirl.") for n in names), f"{path} imports verirl"
        if os.sep + "curriculum" + os.sep in path:
            continue  # another module's own import policy
        top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        heavy = {"torch", "transformers", "vllm", "datasets"}
        for node in top_level:
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            assert not any(m.split(".")[0] in heavy for m in mods), f"{path}: heavy import at module level"
