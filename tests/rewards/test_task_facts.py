"""Per-task facts: checked once per machine (a SQLite file in the per-user cache folder), shared by processes,
keyed by task content, tool binaries and engine version; failures remembered only when the task's content decides
them; one-off validation that
remembers nothing; the longest jobs first."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from rewards import pool as pool_module
from rewards import task_checks, task_facts
from rewards.errors import ReferenceRejected, TaskError
from rewards.hierarchy import RewardConfig, score_completion, validate_reference
from rewards.simulate import SimLimits
from rewards.task import Task

GOOD = "```verilog\nmodule adder(input [3:0] a, b, output [4:0] s);\n  assign s = a + b;\nendmodule\n```"
WRONG = "```verilog\nmodule adder(input [3:0] a, b, output [4:0] s);\n  assign s = a - b;\nendmodule\n```"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "verirl-cache"
    monkeypatch.setenv(task_facts.ENV, str(folder))
    task_checks.forget()
    yield folder
    task_checks.forget()


def test_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VERIRL_CACHE_DIR", str(tmp_path / "x"))
    assert task_facts.cache_dir() == str(tmp_path / "x")
    monkeypatch.setenv("VERIRL_CACHE_DIR", "off")
    assert task_facts.cache_dir() is None and task_facts.store() is None
    monkeypatch.delenv("VERIRL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert task_facts.cache_dir() == str(tmp_path / "xdg" / "verirl")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert task_facts.cache_dir() == os.path.join(os.path.expanduser("~"), ".cache", "verirl")


def test_an_unusable_cache_folder_degrades_to_per_process_facts(tmp_path, monkeypatch, adder_task, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("VERIRL_CACHE_DIR", str(blocker / "sub"))
    task_checks.forget()
    assert score_completion(adder_task, WRONG).failure == "mismatch"
    assert "unusable" in caplog.text


def _score_in_new_process(completion: str, task: Task, env: dict) -> dict:
    code = textwrap.dedent("""
        import json, sys
        from rewards.hierarchy import score_completion
        from rewards.task import Task
        score = score_completion(Task.from_dict(json.loads(sys.argv[1])), sys.argv[2])
        print(json.dumps({"failure": score.failure, "tools": score.detail.get("tools", {})}))
    """)
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(task.to_dict()), completion], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.usefixtures("eda")
def test_a_reference_is_simulated_once_per_machine(cache, adder_task):
    env = {**os.environ, "PYTHONPATH": ROOT, "VERIRL_CACHE_DIR": str(cache)}
    first = _score_in_new_process(WRONG, adder_task, env)
    assert first["failure"] == "mismatch" and first["tools"]["reference"]["runs"] == 2  # compile + run
    second = _score_in_new_process(WRONG, adder_task, env)
    assert second["failure"] == "mismatch" and "reference" not in second["tools"]
    # another task content is another key
    other = dataclasses.replace(adder_task, testbench=adder_task.testbench.replace("i < 256", "i < 255"))
    assert "reference" in _score_in_new_process(WRONG, other, env)["tools"]


@pytest.mark.usefixtures("eda")
def test_another_tool_binary_is_another_key(cache, adder_task, tmp_path, monkeypatch):
    assert "reference" in score_completion(adder_task, WRONG).detail["tools"]
    task_checks.forget()
    assert "reference" not in score_completion(adder_task, WRONG).detail["tools"]
    task_checks.forget()
    copy = tmp_path / "bin" / "vvp"
    copy.parent.mkdir()
    shutil.copy2(shutil.which("vvp"), copy)
    with open(copy, "ab") as fh:  # another build: same version string, other bytes
        fh.write(b"\0")
    monkeypatch.setenv("VERIRL_VVP", str(copy))
    assert "reference" in score_completion(adder_task, WRONG).detail["tools"]


@pytest.mark.usefixtures("eda")
def test_the_reference_cpu_time_is_remembered_and_sets_the_budget(cache, adder_task):
    score_completion(adder_task, WRONG)
    cpu = task_checks.task_state(adder_task, RewardConfig()).reference_cpu
    assert cpu is not None and 0 < cpu < 5
    task_checks.forget()
    assert task_checks.expected_seconds(adder_task, RewardConfig()) == pytest.approx(cpu)
    # a new process reads it back, and the candidate's budget is computed from it
    state = task_checks.task_state(adder_task, RewardConfig())
    assert task_checks.known_simulation(state, adder_task, RewardConfig()) and state.reference_cpu == pytest.approx(cpu)
    limits = RewardConfig().sim
    assert limits.run_timeout(cpu) == pytest.approx(max(limits.min_timeout, 10 * cpu + limits.timeout_margin))


@pytest.mark.usefixtures("eda")
def test_concurrent_processes_share_one_facts_file(cache, adder_task):
    env = {**os.environ, "PYTHONPATH": ROOT, "VERIRL_CACHE_DIR": str(cache)}
    tasks = [dataclasses.replace(adder_task, id=f"t{k}", testbench=adder_task.testbench.replace(
        "i < 256", f"i < {250 - k}")) for k in range(4)]
    code = ("import json, sys\nfrom rewards.hierarchy import score_completion\nfrom rewards.task import Task\n"
            "print(score_completion(Task.from_dict(json.loads(sys.argv[1])), sys.argv[2]).failure)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, json.dumps(t.to_dict()), WRONG], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for t in tasks]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and out.strip() == "mismatch", err
    assert len(task_facts.store()) == 4
    for t in tasks:
        assert task_checks.expected_seconds(t, RewardConfig()) > 0


def _broken_by_content(adder_task: Task, ve_task: Task) -> dict[str, Task]:
    """Tasks whose testbench fails with the reference whatever the machine does: a wrong verdict, no verdict, the
    testbench's own TIMEOUT line (VerilogEval), a testbench that does not compile with the reference."""
    return {
        "mismatch": dataclasses.replace(adder_task, id="mismatch", testbench=adder_task.testbench.replace(
            "s === s_ref", "s === a - b")),
        "missing_result": dataclasses.replace(adder_task, id="missing", testbench=adder_task.testbench.replace(
            "`VERIRL_REPORT(pass, total)", "")),
        "tb_timeout": dataclasses.replace(ve_task, id="tb_timeout", testbench=ve_task.testbench.replace(
            "#400 $finish;", '#400 $display("TIMEOUT"); $finish;')),
        "compile": dataclasses.replace(adder_task, id="compile", testbench=adder_task.testbench.replace(
            ".s(s_ref)", ".s(s_ref), .carry()")),
    }


@pytest.mark.usefixtures("eda")
@pytest.mark.parametrize("kind", ["mismatch", "missing_result", "tb_timeout", "compile"])
def test_a_failure_the_task_decides_is_remembered_per_machine(cache, adder_task, ve_task, kind):
    task = _broken_by_content(adder_task, ve_task)[kind]
    first = score_completion(task, GOOD)
    assert first.failure == "task_error" and any(k.startswith("reference") for k in first.detail["tools"])
    assert len(task_facts.store()) == 1
    task_checks.forget()  # a new process: it learns the failure from the facts file and runs no tool at all
    again = score_completion(task, GOOD)
    assert again.failure == "task_error" and not again.detail.get("tools"), again.detail
    assert again.detail["reason"] == first.detail["reason"]
    assert task_checks.expected_seconds(task, RewardConfig()) == 0.0


@pytest.mark.usefixtures("eda")
def test_a_reference_stopped_by_our_cpu_budget_is_not_written_down(cache, adder_task):
    slow = dataclasses.replace(adder_task, reference=adder_task.reference.replace(
        "endmodule", "integer k;\nalways @(a) begin k = 0; while (1) k = k + 1; end\nendmodule"))
    config = RewardConfig(sim=SimLimits(max_timeout=0.3))
    assert score_completion(slow, WRONG, config).failure == "task_error"
    assert len(task_facts.store()) == 0  # a limit of ours stopped it: the next process checks again
    task_checks.forget()
    assert "reference" in score_completion(slow, WRONG, config).detail["tools"]


@pytest.mark.usefixtures("eda")
def test_facts_of_the_older_engine_are_not_read(cache, adder_task, monkeypatch):
    """A failure entry would read as a passing reference to an engine of version 1: the key changed with it."""
    broken = _broken_by_content(adder_task, adder_task)["mismatch"]
    score_completion(broken, GOOD)
    monkeypatch.setattr(task_facts, "ENGINE_VERSION", 1)
    task_checks.forget()
    state = task_checks.task_state(broken, RewardConfig())
    assert not task_checks.known_simulation(state, broken, RewardConfig())


# ------------------------------------------------------------------------------------------ one-off validation


@pytest.mark.usefixtures("eda")
def test_validate_reference_accepts_a_good_task_and_remembers_nothing(cache, adder_task, ve_task):
    before = task_checks.cache_size()
    for task in (adder_task, ve_task, dataclasses.replace(adder_task, testbench=None, id="equiv")):
        validate_reference(task, RewardConfig())
    assert task_checks.cache_size() == before and len(task_facts.store()) == 0


@pytest.mark.usefixtures("eda")
def test_validate_reference_names_what_fails(cache, adder_task):
    fails = dataclasses.replace(adder_task, testbench=adder_task.testbench.replace("s === s_ref", "s === a - b"))
    with pytest.raises(TaskError, match="fails its own testbench"):
        validate_reference(fails)
    forbidden = dataclasses.replace(adder_task, reference=adder_task.reference.replace(
        "endmodule", "initial $finish;\nendmodule"))
    with pytest.raises(TaskError, match=r"\$finish"):
        validate_reference(forbidden)
    reaching = dataclasses.replace(adder_task, testbench=None, reference=adder_task.reference.replace(
        "a + b", "a + b + elsewhere.x"), id="reach")
    with pytest.raises(ReferenceRejected) as found:
        validate_reference(reaching)
    assert found.value.failure == "elaboration" and found.value.detail["failure_stage"] == "standalone"
    slow = dataclasses.replace(adder_task, reference=adder_task.reference.replace(
        "endmodule", "integer k;\nalways @(a) begin k = 0; while (1) k = k + 1; end\nendmodule"))
    with pytest.raises(TaskError, match="timeout"):
        validate_reference(slow, RewardConfig(sim=SimLimits(max_timeout=0.3)))


# ------------------------------------------------------------------------------------------ scheduling


def test_jobs_of_long_tasks_start_first(monkeypatch, adder_task):
    long_task = dataclasses.replace(adder_task, testbench=adder_task.testbench + "\n// long")
    cost = {adder_task.fingerprint: 0.01, long_task.fingerprint: 3.0}
    monkeypatch.setattr(task_checks, "expected_seconds", lambda t, c: cost[t.fingerprint])
    todo = {"a1": (adder_task, "x"), "a2": (adder_task, "y"), "l1": (long_task, "z"), "a3": (adder_task, "w")}
    assert list(pool_module._longest_first(todo, RewardConfig())) == ["l1", "a1", "a2", "a3"]
    monkeypatch.setattr(task_checks, "expected_seconds", lambda t, c: 0.0)  # nothing known: input order
    assert list(pool_module._longest_first(todo, RewardConfig())) == ["a1", "a2", "l1", "a3"]
