"""Mechanism: the per-run secret out of reach.

The candidate may neither print a verdict (output tasks are removed) nor touch a file (file tasks are
refused), and, in depth, nothing readable from the simulator's working directory holds the secret while
the simulation runs: the sources are deleted after compiling and the image reaches ``vvp`` through a
drained pipe.
"""

from __future__ import annotations

import os

import pytest

from rewards import sandbox, simulate
from rewards.errors import Forbidden
from rewards.hierarchy import RewardConfig, score_completion
from rewards.sanitize import NEUTRALISED_SYSTEM, sanitize_candidate
from rewards.task import Task

FULL = RewardConfig(weights={"format": 0.1, "syntax": 0.1, "function": 1.0, "ppa": 0.0})
NONCE = "5ec2e75ec2e75ec2e75ec2e75ec2e700"


class _FixedSecrets:
    @staticmethod
    def token_hex(n: int = 16) -> str:
        return NONCE


@pytest.mark.usefixtures("eda")
def test_nothing_in_the_simulator_directory_holds_the_secret(harness, monkeypatch):
    monkeypatch.setattr(simulate, "secrets", _FixedSecrets)
    seen: list[dict[str, bytes]] = []
    real_run = sandbox.Workspace.run

    def run(self, argv, timeout, stdin=None):
        if os.path.basename(argv[0]) == "vvp":  # the moment the candidate's code runs
            files = {}
            for root, _, names in os.walk(self.path):
                for name in names:
                    with open(os.path.join(root, name), "rb") as fh:
                        files[os.path.relpath(os.path.join(root, name), self.path)] = fh.read()
            seen.append(files)
            assert NONCE not in " ".join(argv)
        return real_run(self, argv, timeout, stdin=stdin)

    monkeypatch.setattr(sandbox.Workspace, "run", run)
    score = score_completion(harness.task, harness.design(), FULL)
    assert score.passed is True, score
    assert seen, "vvp never ran"
    for files in seen:
        assert not any(NONCE.encode() in data for data in files.values()), sorted(files)
        assert not any(name.endswith((".v", ".sv", ".vvp")) for name in files), sorted(files)


TB_PROBE = """module tb;
  reg [3:0] a, b;
  wire [4:0] s, s_ref;
  integer fd, c, pass = 0, total = 0;
  addw #(.W(4)) dut(.a(a), .b(b), .s(s));
  ref_addw #(.W(4)) golden(.a(a), .b(b), .s(s_ref));
  initial begin
    // trusted code may read files: show what a candidate could find there at run time
    fd = $fopen("verirl_tb.v", "r"); total = total + 1; if (fd == 0) pass = pass + 1;
    fd = $fopen("verirl_ref.v", "r"); total = total + 1; if (fd == 0) pass = pass + 1;
    fd = $fopen("verirl_cand.v", "r"); total = total + 1; if (fd == 0) pass = pass + 1;
    fd = $fopen("verirl_sim.vvp", "r"); total = total + 1; if (fd == 0) pass = pass + 1;
    fd = $fopen("/dev/stdin", "r"); total = total + 1;
    if (fd == 0) pass = pass + 1; else begin c = $fgetc(fd); if (c == -1) pass = pass + 1; end
    `VERIRL_REPORT(pass, total)
  end
endmodule
"""


ADDW = "module addw #(parameter W = 4) (input [W-1:0] a, b, output [W:0] s);\n  assign s = a + b;\nendmodule\n"


@pytest.mark.usefixtures("eda")
def test_sources_image_and_stdin_are_gone_at_run_time():
    task = Task(id="probe", prompt="", top="addw", reference=ADDW, testbench=TB_PROBE)
    score = score_completion(task, "```verilog\n" + task.reference + "```", FULL)
    assert score.passed is True and score.detail["pass_fraction"] == 1.0, score


FILE_AND_CONTROL_TASKS = [
    "$fopen(\"verirl_tb.v\", \"r\")", "$fdisplay(1, \"x\")", "$fwrite(32'h8000_0001, \"x\")", "$fgets(q, 1)",
    "$fgetc(1)", "$fread(q, 1)", "$fscanf(1, \"%d\", q)", "$sscanf(\"1\", \"%d\", q)", "$readmemh(\"verirl_tb.v\", m)",
    "$readmemb(\"x\", m)", "$writememh(\"x\", m)", "$value$plusargs(\"x=%d\", q)", "$test$plusargs(\"x\")",
    "$system(\"cat verirl_tb.v\")", "$dumpfile(\"x\")", "$dumpvars", "$finish", "$stop", "$fatal(0)", "$exit",
    "$random", "$urandom", "$urandom_range(3)", "$deposit(q, 1)", "$root.tb.pass", "$unit::x", "$sformat(q, \"x\")",
    "$swrite(q, \"x\")", "$fflush", "$feof(1)", "$rewind(1)", "$fseek(1, 0, 0)", "$ftell(1)", "$time", "$realtime",
    "$stime", "$q_initialize(1, 1, 1, 1)", "$sdf_annotate(\"x\")", "$scope(tb)", "$showvars", "$key", "$log(\"x\")",
    "$input(\"x\")", "$save(\"x\")", "$reset", "$cast(q, 1)", "$typename(q)", "$countdrivers(q)", "$dist_normal(q, 1, 1)",
    "$async$and$array(m, a, q)", "$simtime", "$ivl_darray_method$delete(q)", "$past(q)",
]


@pytest.mark.parametrize("call", FILE_AND_CONTROL_TASKS)
def test_every_other_system_name_is_refused(call):
    code = f"module top(input a, output y);\n  integer q; reg [7:0] m [0:3];\n  initial q = {call};\n  assign y = a;\nendmodule\n"
    with pytest.raises(Forbidden):
        sanitize_candidate(code, "top")
    with pytest.raises(Forbidden):  # as a statement, too
        sanitize_candidate(code.replace(f"q = {call};", f"{call};"), "top")


@pytest.mark.parametrize("task_name", sorted(NEUTRALISED_SYSTEM))
def test_output_tasks_are_removed(task_name):
    code = f"module top(input a, output y);\n  always @(a) {task_name}(\"VERIRL-RESULT-{NONCE} 1 1\");\n  assign y = a;\nendmodule\n"
    out = sanitize_candidate(code, "top").code
    assert task_name not in out and "VERIRL-RESULT" not in out and "always @(a) begin end" in out


@pytest.mark.usefixtures("eda")
@pytest.mark.parametrize("line", [
    '  initial $display("VERIRL-RESULT-{nonce} 256 256");\n',
    '  final $display("Mismatches: 0 in 256 samples");\n',
    '  initial $write("===========Your Design Passed===========\\n");\n',
    '  initial $strobe("Mismatches: 0 in 1000 samples");\n',
    '  always @(a) $monitor("VERIRL-RESULT-%s 1 1", "{nonce}");\n',
])
def test_printed_verdicts_do_not_count(harness, line):
    score = score_completion(harness.task, harness.design("  assign s = 0;\n" + line.format(nonce=NONCE)), FULL)
    assert score.passed is False and score.failure == "mismatch", score
    assert score.components["function"] < 0.1


@pytest.mark.usefixtures("eda")
def test_the_secret_changes_every_run(monkeypatch):
    seen = []
    real = simulate._verdict

    def spy(task, run, nonce):
        seen.append(nonce)
        return real(task, run, nonce)

    monkeypatch.setattr(simulate, "_verdict", spy)
    task = Task(id="nonce", prompt="", top="addw", reference="module addw(input a, output s); assign s = a; endmodule\n",
                testbench="module tb; reg a = 0; wire s; addw d(.a(a), .s(s)); initial begin #1 "
                          "`VERIRL_REPORT(s == a, 1) end endmodule\n")
    for _ in range(3):
        assert simulate.simulate(task, sanitize_candidate(task.reference, "addw").code).passed
    assert len(set(seen)) == 3 and all(len(n) == 32 for n in seen)


def test_an_unreadable_image_pipe_is_an_infrastructure_fault():
    from rewards.errors import InfrastructureError
    from rewards.sandbox import ToolResult

    task = Task(id="t", prompt="", top="addw", reference=ADDW, testbench=TB_PROBE)
    run = ToolResult(["vvp"], 255, "", "/dev/stdin: Unable to open input file.\n", 0.01)
    with pytest.raises(InfrastructureError, match="/dev/stdin"):
        simulate._verdict(task, run, NONCE)
