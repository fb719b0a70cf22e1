"""``verirl equiv``: JSON on stdout, exit 0 equivalent / 1 not / 2 error."""

from __future__ import annotations

import json

import pytest

from verirl.cli import main

pytestmark = pytest.mark.usefixtures("eda")

GOLD = "module t(input [2:0] a, output y); assign y = a[0] ^ a[1] ^ a[2]; endmodule\n"
SAME = "module t(input [2:0] a, output y); assign y = ^a; endmodule\n"
WRONG = "module t(input [2:0] a, output y); assign y = a[0] | a[1] ^ a[2]; endmodule\n"
NARROW = "module t(input [1:0] a, output y); assign y = ^a; endmodule\n"
BROKEN = "module t(input [2:0] a, output y); assign y = ; endmodule\n"


@pytest.fixture
def files(tmp_path):
    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)
    return write


@pytest.mark.parametrize("candidate, code, verdict", [
    (SAME, 0, "equivalent"),
    (WRONG, 1, "not_equivalent"),
    (NARROW, 1, "interface_mismatch"),
    (BROKEN, 2, "error"),
])
def test_exit_codes_and_json(files, capsys, candidate, code, verdict):
    rc = main(["equiv", "--golden", files("g.v", GOLD), "--candidate", files("c.v", candidate)])
    out = json.loads(capsys.readouterr().out)
    assert rc == code and out["verdict"] == verdict
    assert "log" not in out
    if verdict == "not_equivalent":
        cex = out["counterexample"]
        assert out["method"] == "formal" and set(cex) >= {"time", "inputs", "expected", "got"}


def test_simulation_method_and_top(files, capsys):
    rc = main(["equiv", "--golden", files("g.v", GOLD), "--candidate", files("c.v", WRONG), "--top", "t",
               "--method", "simulation", "--seed", "5"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1 and out["method"] == "simulation" and out["counterexample"]["seed"] == 5


def test_missing_file_and_bad_top(files, capsys):
    assert main(["equiv", "--golden", "/nonexistent/a.v", "--candidate", files("c.v", SAME)]) == 2
    assert "cannot read --golden" in json.loads(capsys.readouterr().out)["reason"]
    assert main(["equiv", "--golden", files("g.v", GOLD), "--candidate", files("c.v", SAME), "--top", "x;y"]) == 2
    assert "identifier" in json.loads(capsys.readouterr().out)["reason"]


SEQ = """module s(input clk, input rst, input d, output reg q);
  always @(posedge clk) if (rst) q <= 1'b0; else q <= d;
endmodule
"""
SEQ_OTHER_NAMES = SEQ.replace("output reg q", "output q").replace(
    "always @(posedge clk) if (rst) q <= 1'b0; else q <= d;",
    "reg r; always @(posedge clk) if (rst) r <= 1'b0; else r <= d; assign q = r;")


def test_json_carries_the_strength_and_min_strength_sets_the_exit_code(files, capsys):
    golden = files("g.v", SEQ)
    rc = main(["equiv", "--golden", golden, "--candidate", files("c.v", SEQ), "--formal-timeout", "120"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["verdict"] == "equivalent" and out["strength"] == "proven"
    rc = main(["equiv", "--golden", golden, "--candidate", files("c.v", SEQ), "--method", "simulation"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["strength"] == "simulated"
    # a simulated equivalence is not enough when a proof is required: exit 2, verdict unchanged
    bounded = ["equiv", "--golden", golden, "--candidate", files("d.v", SEQ_OTHER_NAMES),
               "--formal-depth", "2", "--min-strength", "proven"]
    rc = main(bounded)
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "equivalent" and rc == (0 if out["strength"] == "proven" else 2)
    rc = main(["equiv", "--golden", golden, "--candidate", files("c.v", SEQ), "--method", "simulation",
               "--min-strength", "proven"])
    assert rc == 2 and "min_strength" in json.loads(capsys.readouterr().out)["reason"]
