"""The compiler could not run a stage of its own (a fork refused by the process limit, a broken installation):
an infrastructure fault, never a compile verdict on the candidate, and never remembered as a broken task."""

from __future__ import annotations

import pytest

from rewards import task_checks, task_facts
from rewards.errors import InfrastructureError
from rewards.hierarchy import RewardConfig, score_completion
from rewards.sandbox import Limits, SandboxConfig, ToolResult, capabilities
from rewards.syntax import check_syntax, classify_compile_failure

GOOD = "```verilog\nmodule adder(input [3:0] a, b, output [4:0] s);\n  assign s = a + b;\nendmodule\n```"


def _compile(output: str, returncode: int = 2) -> ToolResult:
    return ToolResult(argv=["/usr/bin/iverilog"], returncode=returncode, stdout="", stderr=output, elapsed=0.1)


@pytest.mark.parametrize("output", [
    "sh: 0: Cannot fork\n",
    "sh: 1: /usr/lib/x86_64-linux-gnu/ivl/ivlpp: not found\n",
    "sh: 1: /usr/lib/x86_64-linux-gnu/ivl/ivl: Permission denied\n",
    "Failed to execute: /usr/lib/x86_64-linux-gnu/ivl/ivlpp -L -F/tmp/x\n",
    "Cannot locate IVL modules : No such file or directory\n",
    "/usr/bin/iverilog: Error opening temporary file /tmp/ivrlg1234\n",
    "candidate.v:3: warning: implicit definition of wire 'x'.\nsh: 0: Cannot fork\n",
])
def test_the_drivers_own_failures_are_infrastructure(output):
    with pytest.raises(InfrastructureError, match="could not run one of its own stages"):
        classify_compile_failure(_compile(output))


def test_a_driver_that_exits_127_without_a_word_could_not_start_a_stage():
    """glibc's system() returns 127 when it cannot spawn the shell (a fork refused): iverilog exits 127, silent."""
    with pytest.raises(InfrastructureError, match="status 127 and no message"):
        classify_compile_failure(_compile("", returncode=127))
    # a message or another status is the compiler speaking about the source
    assert classify_compile_failure(_compile("cand.v:1: syntax error\n", returncode=127)) == "syntax"
    assert classify_compile_failure(_compile("", returncode=1)) == "compile"


@pytest.mark.parametrize(("output", "verdict"), [
    ("candidate.v:3: syntax error\nI give up.\n", "syntax"),
    # the candidate's names and strings show up in the compiler's messages, never at a line's start
    ("candidate.v:2: error: Unable to bind wire/reg/memory `\\sh:' in `top'\n", "elaboration"),
    ("candidate.v:4: error: Unknown module type: Cannot\n", "elaboration"),
    ("candidate.v:5: error: Failed to execute: foo is not a constant\n", "compile"),
])
def test_messages_about_the_source_keep_their_verdict(output, verdict):
    assert classify_compile_failure(_compile(output)) == verdict


needs_nobody = pytest.mark.skipif(not capabilities()["drop_privileges"],
                                  reason="needs root to run tools as nobody (the process limit counts that user)")


@pytest.mark.usefixtures("eda")
@needs_nobody
def test_a_compile_whose_fork_is_refused_is_not_a_compile_error():
    """Two processes of the tools' user: the driver starts, the shell it runs its stages with cannot fork (or, with
    another tool of that user running, the driver's own exec is refused): either way not a verdict."""
    tight = SandboxConfig(limits=Limits(processes=2))
    with pytest.raises(InfrastructureError):
        check_syntax("module adder(input a, output y); assign y = a; endmodule", "adder", config=tight)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(task_facts.ENV, str(tmp_path / "verirl-cache"))
    task_checks.forget()
    yield
    task_checks.forget()


@pytest.mark.usefixtures("eda", "cache")
@needs_nobody
def test_a_reference_check_refused_a_fork_is_unscorable_and_not_remembered(adder_task):
    tight = RewardConfig(sandbox=SandboxConfig(limits=Limits(processes=2)))
    score = score_completion(adder_task, GOOD, tight)
    assert score.failure == "infrastructure", score.detail
    assert len(task_facts.store()) == 0  # the task is not written down as broken
    task_checks.forget()  # a new process with room to fork: the same task scores
    assert score_completion(adder_task, GOOD).passed


# -- synthesis: Yosys could not start ABC

ABC_FAILED = 'ERROR: ABC: execution of command ""berkeley-abc" -s -f /tmp/yosys-abc-Xy12Ab/abc.script 2>&1" failed: return code {}.'
ABC_LOG = "2.22.1.1. Executing ABC.\nRunning ABC command: \"berkeley-abc\" -s -f /tmp/yosys-abc-Xy12Ab/abc.script 2>&1\n{}"


@pytest.mark.parametrize(("output", "log", "reason"), [
    (ABC_FAILED.format(-1), "", "return code -1"),        # popen itself failed: no fork
    (ABC_FAILED.format(127), "", "return code 127"),      # the shell did not find berkeley-abc
    (ABC_FAILED.format(126), "", "return code 126"),
    (ABC_FAILED.format(2), ABC_LOG.format("ABC: sh: 1: Cannot fork\n"), "sh: 1: Cannot fork"),
    (ABC_FAILED.format(2), ABC_LOG.format("ABC: sh: 1: berkeley-abc: not found\n"), "sh: 1: berkeley-abc: not found"),
])
def test_abc_that_could_not_start_is_the_machines_fault(output, log, reason):
    from rewards.synth import abc_did_not_run

    assert abc_did_not_run(output, log) == reason


@pytest.mark.parametrize(("output", "log"), [
    ("ERROR: Module `\\top' not found!", ""),                                  # the design's own failure
    (ABC_FAILED.format(2), ABC_LOG.format("ABC: Error: the network is combinational\n")),  # ABC ran and failed
    (ABC_FAILED.format(1), ""),
    # a string of the design cannot stand first: Yosys' own text starts the first error line
    ("ERROR: Can not open file `x\n" + ABC_FAILED.format(-1) + "` for reading.", ""),
    # a shell failure quoted before ABC's section (say, in a string the front end echoed) is not ABC's
    (ABC_FAILED.format(2), "ABC: sh: 1: Cannot fork\n" + ABC_LOG.format("ABC: Error: parsing failed\n")),
    ("", ABC_LOG.format("ABC: sh: 1: Cannot fork\n")),                        # no error at all
])
def test_a_failure_that_may_be_the_designs_keeps_its_verdict(output, log):
    from rewards.synth import abc_did_not_run

    assert abc_did_not_run(output, log) is None


@pytest.mark.usefixtures("eda")
@needs_nobody
@pytest.mark.parametrize("processes", [1, 2])
def test_a_synthesis_whose_abc_cannot_fork_is_not_a_synthesis_failure(processes):
    """One or two processes of the tools' user: Yosys starts (exec creates no process), but its popen of ABC cannot
    fork (1), or the shell it started cannot fork ABC (2); with other tools of that user running, Yosys' own exec is
    refused. Each is an infrastructure fault. With the default limit the same design synthesizes."""
    from rewards.synth import synthesize

    design = "module adder(input [3:0] a, b, output [4:0] s); assign s = a + b; endmodule"
    with pytest.raises(InfrastructureError):
        synthesize(design, "adder", config=SandboxConfig(limits=Limits(processes=processes)))
    assert synthesize(design, "adder").ok


@pytest.mark.usefixtures("eda", "cache")
@needs_nobody
def test_a_reference_synthesis_that_cannot_start_abc_is_not_remembered(adder_task):
    """The reference's PPA figures under a process limit too tight for ABC: an infrastructure fault, nothing written
    down, and the same task state synthesizes once the machine has room."""
    state = task_checks.task_state(adder_task, RewardConfig())
    tight = RewardConfig(sandbox=SandboxConfig(limits=Limits(processes=1)))
    with pytest.raises(InfrastructureError):
        task_checks.synthesis_facts(state, adder_task, tight)
    assert state.error is None and len(task_facts.store()) == 0
    reference = task_checks.synthesis_facts(state, adder_task, RewardConfig())
    assert reference is not None and reference.ok and reference.cells
