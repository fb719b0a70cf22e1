"""Round trip end to end: a build over the fixture corpus with an OpenAI-compatible server on
127.0.0.1 (keep and drop paths), resume after a kill, and the transformers backend with a tiny
local model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import yaml
from data_fixtures import BENCH_RTLLM, BENCH_VE, CORPUS, EXPECTED_DROPS, EXPECTED_KEPT

from data_pipeline.build import Builder, load_tasks_dataset
from data_pipeline.config import LLMConfig, RoundTripConfig, load_build_config
from data_pipeline.llm import LLMUnavailable
from data_pipeline.runctl import TEST_STOP_ENV, scratch_root
from data_pipeline.templates import load_template, render
from rewards.task import Task

pytestmark = pytest.mark.eda


def write_recipe(path, out_dir, llm: dict, **extra) -> str:
    recipe = {
        "output_dir": str(out_dir),
        "sources": [{"kind": "folder", "path": CORPUS}],
        "decontaminate": {"enabled": True, "benchmarks": [{"kind": "verilog-eval", "path": BENCH_VE},
                                                          {"kind": "rtllm", "path": BENCH_RTLLM}]},
        "roundtrip": {"enabled": True, "llm": llm,
                      "equivalence": {"sequences": 3, "cycles": 40, "long_cycles": 100, "vectors": 300}},
        "shard_size": 3,
        "seed": 7,
        **extra,
    }
    with open(path, "w") as fh:
        yaml.safe_dump(recipe, fh)
    return str(path)


def openai_llm(base_url: str) -> dict:
    return {"kind": "openai", "model": "mock-coder", "base_url": base_url, "api_key_env": "",
            "max_retries": 1, "request_timeout_s": 30, "temperature": 0.0}


def test_templates_are_validated_and_rendered_once(tmp_path):
    text = load_template("describe")
    assert "{{code}}" in text
    custom = tmp_path / "describe.txt"
    custom.write_text("Describe {{top}}:\n{{code}}\n")
    assert load_template("describe", str(custom)) == "Describe {{top}}:\n{{code}}\n"
    with pytest.raises(ValueError, match="unknown placeholder"):
        load_template("describe", "{{code}} {{colour}}")
    with pytest.raises(ValueError, match="must contain"):
        load_template("regenerate", "no description here {{top}}")
    # inserted text is not expanded again (code containing braces or placeholders stays as is)
    assert render("A {{code}} B", code="{{top}} {x, y}") == "A {{top}} {x, y} B"


@pytest.fixture(scope="module")
def reference_build(tmp_path_factory, _llm_server_session):
    """One uninterrupted build over the fixture corpus: (manifest, output dir, number of LLM requests)."""
    base_url, mock = _llm_server_session
    mock.reset()
    out = tmp_path_factory.mktemp("reference")
    recipe = write_recipe(out / "r.yaml", out / "out", openai_llm(base_url))
    manifest = Builder(load_build_config(recipe), progress=False).run()
    return manifest, out / "out", len(mock.requests)


def test_step_by_step_pipeline_writes_the_rows_the_build_writes(reference_build, tmp_path, _llm_server_session):
    """`data split/filter/dedupe/decontaminate/roundtrip` and `data build` share one task-row builder: same ids,
    prompts, provenance, interface, round-trip record and stats for the same modules."""
    from verirl.cli import main

    manifest, out_dir, _ = reference_build
    with open(manifest["dataset"]["files"]["jsonl"]) as fh:
        built = {r["top"]: r for r in map(json.loads, fh)}
    recipe = str(out_dir.parent / "r.yaml")
    paths = {n: str(tmp_path / f"{n}.jsonl") for n in ("split", "filter", "dedupe", "decon", "tasks")}
    assert main(["data", "split", "--config", recipe, "--out", paths["split"]]) == 0
    assert main(["data", "filter", "--config", recipe, "--input", paths["split"], "--out", paths["filter"]]) == 0
    assert main(["data", "dedupe", "--config", recipe, "--input", paths["filter"], "--out", paths["dedupe"]]) == 0
    assert main(["data", "decontaminate", "--config", recipe, "--input", paths["dedupe"], "--out",
                 paths["decon"]]) == 0
    assert main(["data", "roundtrip", "--config", recipe, "--input", paths["decon"], "--out", paths["tasks"]]) == 0
    with open(paths["tasks"]) as fh:
        stepped = {r["top"]: r for r in map(json.loads, fh)}
    assert set(stepped) == set(built) == EXPECTED_KEPT
    for top, row in stepped.items():
        for key, value in row["metadata"].items():
            assert value == built[top]["metadata"][key], (top, key)
        assert row == built[top], top


def test_task_ids_stay_unique_when_module_texts_repeat():
    from data_pipeline.sources import ModuleRecord
    from data_pipeline.task_rows import TaskIds, task_id

    ids = TaskIds()
    recs = [ModuleRecord(key=f"corpus/{name}.v:inv", top="inv", code="module inv; endmodule", dependencies=[],
                         missing=[], source={"name": "corpus"}) for name in ("a", "b", "c")]
    given = [ids.assign(rec, "0123456789abcdef") for rec in recs]
    assert given[0] == task_id(recs[0], "0123456789abcdef") == "corpus/inv-0123456789ab"
    assert len(set(given)) == 3 and all(g.startswith("corpus/inv-0123456789ab-") for g in given[1:])
    again = TaskIds()
    again.reserve(given[:1])  # a resumed build: ids of committed shards are taken
    assert again.assign(recs[1], "0123456789abcdef") == given[1]
    assert again.assign(recs[1], "0123456789abcdef") != given[1]  # the same key listed twice


def test_roundtrip_build_keeps_equivalent_pairs_only(reference_build):
    manifest, out_dir, n_requests = reference_build
    rows = [json.loads(line) for line in open(manifest["dataset"]["files"]["jsonl"])]
    assert {r["top"] for r in rows} == EXPECTED_KEPT
    drops = [json.loads(line) for line in open(out_dir / "drops.jsonl")]
    rt_drops = {d["top"]: d["reason"] for d in drops if d["stage"] == "roundtrip"}
    assert rt_drops == EXPECTED_DROPS
    assert "counterexample" in next(d["detail"] for d in drops if d["top"] == "mux4")
    # every row is a valid task whose prompt was rendered from the description, with provenance
    for row in rows:
        task = Task.from_dict(row)
        assert task.reference and task.testbench is None
        meta = row["metadata"]
        assert meta["description"] in row["prompt"] and f"`{row['top']}`" in row["prompt"]
        assert meta["roundtrip"]["method"] in ("formal", "simulation")
        assert meta["roundtrip"]["model"] == "mock-coder"
        assert meta["provenance"]["source"] == "corpus" and meta["interface"]["ports"]
    ds = load_tasks_dataset(manifest["dataset"]["files"]["parquet"])
    assert sorted(ds["id"]) == sorted(r["id"] for r in rows)
    counts = manifest["counts"]
    assert counts["near_dedupe"] - counts["roundtrip"] == len(EXPECTED_DROPS)
    assert manifest["llm"]["model"] == "mock-coder" and manifest["seed"] == 7
    # describe + regenerate requests only for modules that reached the round trip
    assert n_requests == 2 * counts["near_dedupe"]


def test_rejected_request_drops_only_that_row(tmp_path, llm_server):
    base_url, mock = llm_server
    mock.reject_tops = {"adder8"}
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "out", openai_llm(base_url), max_modules=3)
    manifest = Builder(load_build_config(recipe), progress=False).run()
    assert manifest["drops"]["llm_rejected"] == 1
    assert "adder8" not in {json.loads(line)["top"] for line in open(manifest["dataset"]["files"]["jsonl"])}



def test_endpoint_outage_stops_the_run_and_the_shard_is_redone(tmp_path, llm_server):
    base_url, mock = llm_server
    mock.fail_with = 503
    recipe = write_recipe(tmp_path / "r2.yaml", tmp_path / "out2", openai_llm(base_url), max_modules=3)
    with pytest.raises(LLMUnavailable, match="HTTP 503"):
        Builder(load_build_config(recipe), progress=False).run()
    assert not os.path.exists(tmp_path / "out2" / "shards" / "shard-00000.json")  # not committed
    # once the endpoint is back, a rerun redoes the shard
    mock.fail_with = None
    manifest = Builder(load_build_config(recipe), progress=False).run()
    assert manifest["shards"]["committed"] == 1
    assert {json.loads(line)["top"] for line in open(manifest["dataset"]["files"]["jsonl"])} == {"adder8", "alu8"}


def _run_build_cli(recipe: str, stop_after: int | None = None, signal_name: str = "KILL"):
    """Run `verirl data build` in a child process; with ``stop_after`` the build sends itself
    ``signal_name`` right after committing that many shards (the test-only switch of
    data_pipeline.runctl), so the stop point is exact, not a race with a poller."""
    env = dict(os.environ)
    env.pop(TEST_STOP_ENV, None)
    if stop_after is not None:
        env[TEST_STOP_ENV] = f"{stop_after}:{signal_name}"
    return subprocess.run([sys.executable, "-m", "verirl.cli", "data", "build", "--config", recipe, "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=900)


def _committed(out_dir) -> list[str]:
    return sorted(f for f in os.listdir(os.path.join(out_dir, "shards")) if f.endswith(".json"))


@pytest.mark.parametrize("how", ["KILL", "INT", "TERM"])
def test_stopped_build_resumes_without_duplicates_or_losses(tmp_path, llm_server, reference_build, how):
    base_url, mock = llm_server
    ref = reference_build[0]
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "out", openai_llm(base_url))
    first = _run_build_cli(recipe, stop_after=1, signal_name=how)
    # stopped exactly after the first shard: one commit, no manifest, nothing left in flight
    assert _committed(tmp_path / "out") == ["shard-00000.json"]
    assert not os.path.exists(tmp_path / "out" / "manifest.json")
    assert ref["shards"]["count"] > 1
    if how == "KILL":
        assert first.returncode == -signal.SIGKILL
    else:  # Ctrl-C / SIGTERM: one clean line, no traceback, the conventional exit status
        assert first.returncode == 128 + getattr(signal, f"SIG{how}"), first.stderr[-2000:]
        assert "stopped: 1 shards saved; rerun the same command to resume" in first.stderr
        assert "Traceback" not in first.stderr
        scratch = scratch_root(str(tmp_path / "out"))  # closed before the process exited: nothing left
        assert not os.path.isdir(scratch) or not os.listdir(scratch)

    second = _run_build_cli(recipe)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming: 1 shards already done" in second.stderr
    summary = json.loads(second.stdout)
    resumed = [json.loads(line) for line in open(summary["dataset"]["files"]["jsonl"])]
    expected = [json.loads(line) for line in open(ref["dataset"]["files"]["jsonl"])]
    assert [r["id"] for r in resumed] == [r["id"] for r in expected]  # same rows, same order, no duplicate
    assert resumed == expected
    assert summary["counts"] == ref["counts"]
    drops = [json.loads(line)["key"] for line in open(tmp_path / "out" / "drops.jsonl")]
    assert len(drops) == len(set(drops)) == ref["counts"]["split"] - ref["counts"]["tasks"]
    manifest = json.load(open(tmp_path / "out" / "manifest.json"))
    assert manifest["llm"]["model"] == "mock-coder"  # recorded although the LLM of shard 0 ran before the stop


def test_changed_recipe_does_not_resume_silently(tmp_path, llm_server):
    base_url, _ = llm_server
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "out", openai_llm(base_url), max_modules=3)
    Builder(load_build_config(recipe), progress=False).run()
    changed = write_recipe(tmp_path / "r2.yaml", tmp_path / "out", openai_llm(base_url), seed=8)
    with pytest.raises(ValueError, match="different configuration.*seed"):
        Builder(load_build_config(changed), progress=False)
    Builder(load_build_config(changed), restart=True, progress=False)  # --restart discards the old run
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    other = write_recipe(tmp_path / "r3.yaml", tmp_path / "precious", openai_llm(base_url))
    with pytest.raises(ValueError, match="does not hold a data build"):
        Builder(load_build_config(other), restart=True, progress=False)
    assert (tmp_path / "precious" / "notes.txt").exists()


@pytest.mark.slow
def test_tiny_transformers_model_round_trip_with_resume(tmp_path, tiny_model):
    """The acceptance run: a tiny local model (built offline) drives the round trip end to end, the
    build is killed right after its first shard (the build's own test switch: no race) and resumed.
    An untrained model writes no valid Verilog, so every module reaching the round trip is dropped,
    each exactly once, with a counted reason."""
    llm = {"kind": "transformers", "model": tiny_model, "max_new_tokens": 12, "temperature": 0.0,
           "batch_size": 4, "device": "cpu", "dtype": "float32"}
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("adder.v", "counter.v", "mux.v", "alu.v"):
        shutil.copy(os.path.join(CORPUS, name), corpus / name)
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "out", llm, shard_size=2,
                          filters={"synthesize": False}, sources=[{"kind": "folder", "path": str(corpus)}])
    first = _run_build_cli(recipe, stop_after=1)
    assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
    assert _committed(tmp_path / "out") == ["shard-00000.json"]
    second = _run_build_cli(recipe)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming: 1 shards already done" in second.stderr
    summary = json.loads(second.stdout)
    assert summary["shards"]["committed"] == summary["shards"]["count"] >= 2
    counts = summary["counts"]
    assert counts["near_dedupe"] > 0 and counts["tasks"] == counts["roundtrip"]
    drops = [json.loads(line) for line in open(tmp_path / "out" / "drops.jsonl")]
    keys = [d["key"] for d in drops]
    assert len(keys) == len(set(keys)) == counts["split"] - counts["tasks"]
    rt = [d for d in drops if d["stage"] == "roundtrip"]
    assert len(rt) == counts["near_dedupe"] - counts["roundtrip"]
    assert {d["reason"] for d in rt} <= {"no_code", "empty_description", "description_contains_code",
                                         "candidate_rejected", "interface_mismatch", "not_equivalent"}
    manifest = json.load(open(tmp_path / "out" / "manifest.json"))
    assert manifest["llm"]["kind"] == "transformers"


def test_bad_template_fails_when_the_recipe_is_read(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", tmp_path / "out", openai_llm("http://127.0.0.1:9/v1"))
    data = yaml.safe_load(open(path))
    data["roundtrip"]["regenerate_template"] = "Write {{top}} from {{spec}}"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="unknown placeholder.*spec"):
        load_build_config(str(tmp_path / "bad.yaml"))


def test_roundtrip_config_requires_backend():
    with pytest.raises(ValueError, match="roundtrip.llm"):
        RoundTripConfig(enabled=True)
    with pytest.raises(ValueError, match="llm.kind"):
        LLMConfig(kind="gpt", model="x")


def test_roundtrip_and_preferences_steps_from_the_cli(tmp_path, llm_server, capsys):
    from verirl.cli import main

    base_url, _ = llm_server
    modules, kept, tasks = (str(tmp_path / f"{n}.jsonl") for n in ("m", "k", "t"))
    assert main(["data", "split", "--folder", CORPUS, "--out", modules]) == 0
    assert main(["data", "filter", "--input", modules, "--out", kept, "--no-synth"]) == 0
    step_recipe = tmp_path / "rt.yaml"
    step_recipe.write_text(yaml.safe_dump({"roundtrip": {"enabled": True, "llm": openai_llm(base_url)},
                                           "decontaminate": {"enabled": False}}))
    capsys.readouterr()
    assert main(["data", "roundtrip", "--config", str(step_recipe), "--input", kept, "--out", tasks,
                 "--drops", str(tmp_path / "d.jsonl")]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = [json.loads(line) for line in open(tasks)]
    assert {r["top"] for r in rows} == EXPECTED_KEPT and summary["kept"] == len(rows)
    assert summary["drop:not_equivalent"] == 2 and summary["drop:interface_mismatch"] == 1
    assert all(Task.from_dict(r).reference for r in rows)

    # preferences from a file of samples: the regenerated code (right) against a wrong one
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": rows[0]["id"], "completion": "no code"}) + "\n" +
                       json.dumps({"task_id": rows[0]["id"], "completion": "```verilog\n" + rows[0]["reference"]
                                   + "```"}) + "\n")
    assert main(["data", "preferences", "--tasks", tasks, "--completions", str(samples), "--output",
                 str(tmp_path / "pairs.jsonl"), "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"] == 1
    pair = json.loads(open(tmp_path / "pairs.jsonl").readline())
    assert pair["rejected"] == "no code" and pair["chosen_score"]["pass_fraction"] == 1.0
