"""A kept task is a scorable task: the reward engine's own scoring path on every reference, honest
tool reasons (timeouts are `timeout`), useless modules dropped, portable modules kept."""

from __future__ import annotations

import pytest
import yaml
from data_fixtures import jsonl, make_repo

from data_pipeline.build import Builder
from data_pipeline.config import FilterConfig, load_build_config
from data_pipeline.filters import check_module, scorable_check, synthesize, tool_check
from data_pipeline.sources import split_text
from data_pipeline.task_rows import normalize_interface
from data_pipeline.templates import interface_text
from rewards.hierarchy import RewardConfig, score_completion
from rewards.syntax import check_syntax
from rewards.task import Task

pytestmark = pytest.mark.eda


def rec_of(code: str, top: str | None = None, **settings):
    from data_pipeline.verilog import ParseSettings

    recs = list(split_text(code, source={"path": "t.v"}, key_prefix="t", settings=ParseSettings(**settings)))
    return next(r for r in recs if top is None or r.top == top)


COUNTER = ("module counter #(parameter W = 4)(input clk, input rst, input en, output reg [W-1:0] q);\n"
           "  always @(posedge clk) if (rst) q <= 0; else if (en) q <= q + 1'b1;\nendmodule\n")


@pytest.mark.parametrize("snippet, needle", [
    ("  initial if (W < 1) begin $display(\"W must be positive\"); $finish; end\n", "$finish"),
    ("  initial if (W > 64) $fatal(1, \"too wide\");\n", "$fatal"),
    ("  reg [3:0] rom [0:3];\n  initial $readmemh(\"rom.hex\", rom);\n", "$readmemh"),
    ("  integer seed;\n  initial if (!$value$plusargs(\"seed=%d\", seed)) seed = 1;\n", "$value$plusargs"),
    ("  initial $dumpvars;\n", "$dumpvars"),
])
def test_references_the_engine_refuses_are_dropped_before_any_llm_call(eda, snippet, needle):
    code = COUNTER.replace("  always", snippet + "  always")
    rec = rec_of(code)
    res = check_module(rec, FilterConfig())
    assert not res.ok and res.stage == "scorable" and res.reason == "golden_refused", res
    assert needle in res.detail
    # the same verdict as the engine itself gives a model that writes this reference
    task = Task(id="t", prompt="", top="counter", reference=rec.code)
    assert score_completion(task, f"```verilog\n{rec.code}\n```", RewardConfig()).passed is not True


def test_inactive_formal_block_is_kept_active_one_is_refused(eda):
    code = COUNTER.replace("endmodule", "`ifdef FORMAL\n  always @(posedge clk) if (!rst) assert(q == $past(q) + 1 "
                           "|| !$past(en));\n`endif\nendmodule")
    kept = check_module(rec_of(code), FilterConfig())
    assert kept.ok, kept
    refused = check_module(rec_of(code, defines=(("FORMAL", ""),)), FilterConfig())
    assert not refused.ok and refused.reason in ("golden_refused", "interface_error", "compile")


def test_every_kept_reference_is_scored_as_passing_by_the_training_config(tmp_path, eda):
    """The acceptance property on a fixture repository with good and hostile modules: what the build
    keeps, the reward engine (default training RewardConfig) scores as a pass, and it compiles alone."""
    repo = make_repo(tmp_path / "repo", {
        "LICENSE": "Permission is hereby granted, free of charge, to any person",
        "rtl/counter.v": COUNTER,
        "rtl/fin.v": COUNTER.replace("counter", "fin").replace("  always", "  initial if (W < 1) $finish;\n  always"),
        "rtl/mem.v": "module mem(input clk, input [1:0] a, output [7:0] q);\n  reg [7:0] m [0:3];\n"
                     "  initial $readmemh(\"m.hex\", m);\n  assign q = m[a];\nendmodule\n",
        "rtl/utf8.v": "// Réglage — José ✓\nmodule utf8_inv(input [3:0] a, output [3:0] y); // ñ\n  assign y = ~a;\n"
                      "  // 日本語のコメント\nendmodule\n",
        "rtl/ifdef.v": "`define PLUS\nmodule pm(input [3:0] a, output [3:0] y);\n`ifdef PLUS\n  assign y = a + 1;\n"
                       "`else\n  assign y = a - 1;\n`endif\n`ifdef FORMAL\n  always @* assert(y == $past(y));\n`endif\n"
                       "endmodule\n",
        "rtl/kw.v": "module kwmod(input [3:0] logic, output [3:0] bit);\n  assign bit = logic ^ 4'h5;\nendmodule\n",
        "rtl/wire.v": "module passthru(input [3:0] a, output [3:0] y);\n  // only wires\n  assign y = a;\n"
                      "  wire unused;\nendmodule\n",
    })
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "out"), "sources": [{"kind": "folder",
                                      "path": repo}], "decontaminate": {"enabled": False}, "shard_size": 3}))
    manifest = Builder(load_build_config(str(recipe)), progress=False).run()
    rows = jsonl(manifest["dataset"]["files"]["jsonl"])
    assert {r["top"] for r in rows} == {"counter", "utf8_inv", "pm", "kwmod"}
    drops = {d["top"]: d["reason"] for d in jsonl(tmp_path / "out" / "drops.jsonl")}
    assert drops == {"fin": "golden_refused", "mem": "golden_refused", "passthru": "zero_cells"}
    config = RewardConfig()
    for row in rows:
        task = Task.from_dict(row)
        score = score_completion(task, f"```verilog\n{task.reference}\n```", config)
        assert score.passed is True and score.reward == pytest.approx(1.2), (task.id, score)
        assert check_syntax(task.reference, task.top).ok
        assert row["metadata"]["provenance"]["license"] == "MIT"
    pm = next(r for r in rows if r["top"] == "pm")
    assert "a + 1" in pm["reference"] and "$past" not in pm["reference"]
    assert "// 日本語のコメント" in next(r for r in rows if r["top"] == "utf8_inv")["reference"]


def test_vendor_primitive_only_in_the_unused_branch_keeps_the_module(eda):
    code = ("module sreg #(parameter VENDOR = 0)(input clk, input d, output q);\n"
            "  generate if (VENDOR) begin : g_v\n    SRL16E s(.CLK(clk), .D(d), .Q(q));\n"
            "  end else begin : g_p\n    reg [3:0] r;\n    always @(posedge clk) r <= {r[2:0], d};\n"
            "    assign q = r[3];\n  end endgenerate\nendmodule\n")
    assert check_module(rec_of(code), FilterConfig()).ok
    used = check_module(rec_of(code.replace("VENDOR = 0", "VENDOR = 1")), FilterConfig())
    assert not used.ok and used.reason in ("unresolved_dependency", "interface_error")
    assert "SRL16E" in used.detail


def test_synthesis_timeout_is_timeout_not_synth(eda):
    rec = rec_of(COUNTER)
    for figures in (True, False):
        res = synthesize(rec.code, rec.top, timeout=0.01, figures=figures)
        assert not res.ok and res.reason == "timeout" and "synth_timeout_s" in res.detail
    res = tool_check(rec, FilterConfig(synth_timeout_s=0.01))
    assert res.stage == "synth" and res.reason == "timeout"


def test_modules_with_nothing_to_check_are_dropped(eda):
    noout = rec_of("module sink(input [3:0] a, input clk);\n  reg [3:0] r;\n  always @(posedge clk) r <= a;\n"
                   "endmodule\n")
    assert check_module(noout, FilterConfig()).reason == "no_outputs"
    const = rec_of("module tie(input [3:0] a, output [3:0] y, output z);\n  assign y = 4'd3;\n  assign z = 1'b0;\n"
                   "  wire w = a[0];\nendmodule\n")
    res = check_module(const, FilterConfig())
    assert res.reason == "zero_cells" and res.stage == "synth"
    inout = rec_of("module pad(inout io, input oe, input d, output q);\n  assign io = oe ? d : 1'bz;\n"
                   "  assign q = io;\nendmodule\n")
    assert check_module(inout, FilterConfig()).reason == "unsupported_ports"


def test_memories_too_large_to_synthesize_are_dropped_before_yosys(eda):
    ram = ("module ram #(parameter AW = 10)(input clk, input we, input [AW-1:0] a, input [31:0] d, output [31:0] q);\n"
           "  reg [31:0] mem [0:(1<<AW)-1];\n  always @(posedge clk) if (we) mem[a] <= d;\n  assign q = mem[a];\n"
           "endmodule\n")
    res = check_module(rec_of(ram), FilterConfig())
    assert res.stage == "interface" and res.reason == "too_much_memory" and "32768 bits" in res.detail
    assert not res.timings  # no tool ran
    small = rec_of(ram.replace("AW = 10", "AW = 4"))
    assert check_module(small, FilterConfig()).ok
    assert check_module(rec_of(ram), FilterConfig(max_memory_bits=0, synth_timeout_s=0.01)).reason == "timeout"


def test_scorable_check_does_not_grow_the_engines_task_cache(eda):
    """The engine remembers every task it prepares (per process, and its facts per machine); the filter checks
    one-off tasks through rewards.hierarchy.validate_reference, which remembers nothing."""
    from rewards import task_checks, task_facts

    before = task_checks.cache_size(), len(task_facts.store() or [])
    for k in range(3):
        assert scorable_check(rec_of(COUNTER.replace("counter", f"counter{k}")), FilterConfig()).ok
    assert (task_checks.cache_size(), len(task_facts.store() or [])) == before


def test_prompt_says_string_parameters_as_strings_and_strobes_are_not_resets(eda):
    from rewards.interface import extract_interface

    code = ("module uart #(parameter NAME = \"UART0\", parameter W = 8)(input i_clk, input i_reset, input i_wr,\n"
            "    input i_ce, input [W-1:0] i_data, output reg o_busy, output reg [W-1:0] o_data);\n"
            "  always @(posedge i_clk) if (i_reset) o_data <= 0; else if (i_ce) o_data <= i_data;\n"
            "  always @(posedge i_clk) if (i_wr) o_busy <= 1'b1; else o_busy <= 1'b0;\nendmodule\n")
    rec = rec_of(code)
    assert rec.string_parameters == {"NAME": '"UART0"'}
    iface = normalize_interface(extract_interface(rec.code, rec.top).to_dict(), rec.string_parameters)
    text = interface_text(iface)
    assert 'parameter NAME = "UART0"' in text and "parameter W = 8" in text
    assert [r["name"] for r in iface["resets"]] == ["i_reset"]
    assert "i_wr" not in text.split("Reset:")[1]


def test_parameter_variants_where_the_parameter_shapes_the_ports(tmp_path, eda):
    code = ("module acc #(parameter W = 8, parameter DEPTH = 4)(input clk, input rst, input [W-1:0] d,\n"
            "    output reg [W-1:0] sum);\n  reg [1:0] n;\n"
            "  always @(posedge clk) if (rst) begin sum <= 0; n <= 0; end\n"
            "  else begin sum <= sum + d; n <= (n == DEPTH - 1) ? 0 : n + 1; end\nendmodule\n")
    repo = make_repo(tmp_path / "repo", {"acc.v": code})
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "out"), "decontaminate": {"enabled": False},
                                      "sources": [{"kind": "folder", "path": repo, "parameter_variants": 3}]}))
    manifest = Builder(load_build_config(str(recipe)), progress=False).run()
    rows = jsonl(manifest["dataset"]["files"]["jsonl"])
    # W changes the ports (16 and 4 bits); DEPTH does not, so it makes no variant; near dedupe keeps all
    assert [r["metadata"]["provenance"]["variant"] for r in rows] == [None, "W=16", "W=4"]
    widths = [{p["name"]: p["width"] for p in r["metadata"]["interface"]["ports"]}["d"] for r in rows]
    assert widths == [8, 16, 4] and len({r["id"] for r in rows}) == 3
    assert "parameter W = 16" in rows[1]["reference"] and "parameter W = 16" in rows[1]["prompt"]
    for row in rows:
        task = Task.from_dict(row)
        assert score_completion(task, f"```verilog\n{task.reference}\n```", RewardConfig()).passed is True
