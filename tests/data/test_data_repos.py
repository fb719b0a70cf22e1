"""Real-repository defects, reproduced with small fixture repositories (no EDA tool needed):
symlink loops, text encodings, where a dependency comes from, macros and `ifdef as the build saw
them, includes, packages, keyword versions, licenses, source names, line counting."""

from __future__ import annotations

import codecs
import os
import threading

import pytest
from data_fixtures import make_repo

from data_pipeline.config import BuildConfig, FilterConfig, SourceConfig, load_build_config
from data_pipeline.filters import structural_check
from data_pipeline.folders import walk_files
from data_pipeline.sources import SourceStats, iter_modules, split_text
from data_pipeline.text import decode_source, significant_lines
from data_pipeline.verilog import ParseSettings

INV = "module inv(input [3:0] a, output [3:0] y);\n  assign y = ~a;\nendmodule\n"


def records(path, **kw):
    stats = SourceStats()
    recs = list(iter_modules(SourceConfig(kind="folder", path=str(path), **kw), stats))
    return {r.top: r for r in recs}, recs, stats


def run_bounded(fn, seconds=60):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it does not return in time."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001
            out["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "did not finish: a loop?"
    if "error" in out:
        raise out["error"]
    return out["value"]


# ----------------------------------------------------------------------------------------- 1. symlinks


def test_symlink_loops_terminate_and_each_file_is_read_once(tmp_path):
    repo = make_repo(tmp_path / "repo", {"rtl/inv.v": INV, "rtl/deep/and2.v":
                                         "module and2(input a, b, output y);\n assign y = a & b;\nendmodule\n"},
                     links={"example/fpga/lib/eth": "../../..",          # verilog-ethernet's lib/eth -> ../../../
                            "rtl/deep/back": "..", "rtl/self": ".",       # loops at several depths
                            "rtl/alias.v": "inv.v"})                      # one file reached twice
    by_top, recs, stats = run_bounded(lambda: records(repo))
    assert sorted(r.top for r in recs) == ["and2", "inv"]                 # each module once
    assert by_top["inv"].source["path"] == "rtl/inv.v"                    # real path, whatever link came first
    assert by_top["and2"].source["path"] == os.path.join("rtl", "deep", "and2.v")
    assert stats.skipped.get("folder_seen_through_link", 0) >= 3


def test_links_out_of_the_source_are_not_followed(tmp_path):
    outside = make_repo(tmp_path / "outside", {"secret.v": "module secret(input a, output y);\n"
                                               "assign y = a;\nendmodule\n"})
    repo = make_repo(tmp_path / "repo", {"inv.v": INV}, links={"ext": outside, "ext.v": f"{outside}/secret.v",
                                                               "dangling.v": "nowhere.v"})
    by_top, _, stats = records(repo)
    assert set(by_top) == {"inv"}
    assert stats.skipped["link_outside_source"] == 2 and stats.skipped["broken_link"] == 1


def test_walk_files_orders_by_relative_path_and_matches_globs(tmp_path):
    make_repo(tmp_path, {"b.v": "", "a/z.sv": "", "a/y.V": "", "c.txt": "", "a/x.vh": ""})
    rel = [r for r, _ in walk_files(str(tmp_path), ["**/*.[vV]", "**/*.sv"])]
    assert rel == ["a/y.V", "a/z.sv", "b.v"]


# ----------------------------------------------------------------------------------------- 2. text


def test_multibyte_comments_do_not_shift_module_boundaries(tmp_path):
    text = ("// José, Zoë, 日本語, 🚀: multi-byte comments before, inside and between modules\n"
            "module first(input a, output y); // ü\n  assign y = ~a; /* ñ 😀 */\nendmodule\n"
            "// Ångström\n"
            "module inv2(input [1:0] a, output [1:0] y);\n  assign y = ~a;\nendmodule\n"
            "/* ☃ */ module \\m+x (input a, output y); // escaped name\n  assign y = a;\nendmodule\n")
    by_top, recs, _ = records(make_repo(tmp_path, {"u.v": text}))
    assert [r.top for r in recs] == ["first", "inv2", "\\m+x"]
    assert by_top["inv2"].code.startswith("module inv2(") and by_top["inv2"].code.rstrip().endswith("endmodule")
    assert "/* ñ 😀 */" in by_top["first"].code and "odule" not in by_top["first"].code.replace("module", "")
    assert by_top["\\m+x"].parse_error is None and "// escaped name" in by_top["\\m+x"].code
    # the escaped name is not a plain identifier: dropped with a reason, never mangled
    assert structural_check(by_top["\\m+x"], FilterConfig()).reason == "bad_module_name"


def test_non_ascii_identifier_is_a_located_parse_error_not_a_mangled_module(tmp_path):
    by_top, recs, _ = records(make_repo(tmp_path, {"x.v": INV + "module café(input a, output y);\n"
                                                   "  assign y = a;\nendmodule\n" + INV.replace("inv", "inv3")}))
    assert by_top["inv"].parse_error is None and by_top["inv3"].parse_error is None
    assert by_top["inv3"].code.startswith("module inv3(")
    bad = [r for r in recs if r.parse_error]
    assert len(bad) == 1 and bad[0].parse_error.startswith("x.v:4:") and "ASCII" in bad[0].parse_error


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-8-sig", "utf-16", "utf-32"])
def test_any_encoding_in_utf8_out(tmp_path, encoding):
    text = "// Auteur : José Müller — ½\nmodule enc(input a, output y);\n  assign y = ~a;\nendmodule\n"
    if encoding == "latin-1":
        text = text.replace("—", "-")
    by_top, _, _ = records(make_repo(tmp_path, {"e.v": text.encode(encoding)}))
    rec = by_top["enc"]
    assert rec.parse_error is None and rec.code.startswith("module enc(")
    data, _ = decode_source(text.encode(encoding))
    assert "José Müller" in data and "\ufeff" not in data and "\x00" not in data


def test_line_endings_and_control_characters_are_normalized():
    text, enc = decode_source(b"module m(input a,\r\n output y);\r  assign y = a; // x\rendmodule\f\r\n\x1a")
    assert enc == "utf-8" and text == "module m(input a,\n output y);\n  assign y = a; // x\nendmodule \n"
    assert decode_source(codecs.BOM_UTF8 + b"x")[0] == "x"
    assert decode_source(b"Jos\xe9")[0] == "José"


def test_comment_lines_do_not_count_as_code():
    code = "// license\n// banner\n/* a\n   b */\nmodule m(input a, output y); // port\n\n  assign y = a;\nendmodule\n"
    assert significant_lines(code) == 3
    long_comment = "module m(input a, output y);\n" + "// note\n" * 700 + "  assign y = a;\nendmodule\n"
    rec = next(split_text(long_comment, source={}, key_prefix="x"))
    assert rec.own_lines == 3 and structural_check(rec, FilterConfig(max_lines=600)).ok


# ----------------------------------------------------------------------------------------- 4. dependencies


STAGE_PLUS = "module stage(input [3:0] a, output [3:0] y);\n  assign y = a + 4'd1;\nendmodule\n"
STAGE_MINUS = "module stage(input [3:0] a, output [3:0] y);\n  assign y = a - 4'd1;\nendmodule\n"


def top_using(name, dep="stage"):
    return f"module {name}(input [3:0] a, output [3:0] y);\n  {dep} u(.a(a), .y(y));\nendmodule\n"


def test_dependency_comes_from_the_modules_own_folder(tmp_path):
    # two projects in one corpus with a module named `stage`: each top gets its own
    repo = make_repo(tmp_path, {"a/rtl/stage.v": STAGE_PLUS, "a/rtl/top_a.v": top_using("top_a"),
                                "b/rtl/stage.v": STAGE_MINUS, "b/rtl/top_b.v": top_using("top_b"),
                                "b/rtl/core/deep.v": top_using("deep")})
    by_top, _, _ = records(repo)
    assert "a + 4'd1" in by_top["top_a"].code and "a - 4'd1" not in by_top["top_a"].code
    assert "a - 4'd1" in by_top["top_b"].code and "a + 4'd1" not in by_top["top_b"].code
    assert by_top["top_a"].dependency_paths == ["a/rtl/stage.v"]
    assert by_top["deep"].dependency_paths == ["b/rtl/stage.v"]  # one folder up beats three folders away


def test_equally_near_definitions_are_ambiguous_unless_include_dirs_decide(tmp_path):
    repo = make_repo(tmp_path, {"x/stage.v": STAGE_PLUS, "y/stage.v": STAGE_MINUS, "top.v": top_using("top")})
    by_top, _, _ = records(repo)
    top = by_top["top"]
    assert top.missing and "ambiguous" not in top.missing[0] or "equally near" in top.missing[0]
    assert "x/stage.v" in top.missing[0] and "y/stage.v" in top.missing[0]
    assert structural_check(top, FilterConfig()).reason == "unresolved_dependency"
    by_top, _, _ = records(repo, include_dirs=["y"])
    assert by_top["top"].dependency_paths == ["y/stage.v"] and not by_top["top"].missing


def test_a_dependencys_dependencies_resolve_from_its_own_folder(tmp_path):
    # top (in a/) uses mid (in b/), which uses stage: mid's stage is b/stage.v, top's own stage a/stage.v
    repo = make_repo(tmp_path, {"b/stage.v": STAGE_MINUS, "b/mid.v": top_using("mid"),
                                "c/stage.v": STAGE_PLUS, "c/user.v": top_using("user", "mid")})
    by_top, _, _ = records(repo)
    assert by_top["user"].dependency_paths == ["b/stage.v", "b/mid.v"]
    two = make_repo(tmp_path / "two", {"b/stage.v": STAGE_MINUS, "b/mid.v": top_using("mid"),
                                       "c/stage.v": STAGE_PLUS,
                                       "c/both.v": "module both(input [3:0] a, output [3:0] y, z);\n"
                                                   "  mid m(.a(a), .y(y));\n  stage s(.a(a), .y(z));\nendmodule\n"})
    both = records(two)[0]["both"]  # needs two different `stage` modules at once: refused, not merged
    assert both.conflicts and structural_check(both, FilterConfig()).reason == "conflicting_dependencies"


def test_vendor_primitive_in_a_generate_branch_is_optional(tmp_path):
    code = ("module buf_sel #(parameter XILINX = 0)(input clk, input [3:0] d, output [3:0] q);\n"
            "  generate if (XILINX) begin : g_x\n    SRL16E s(.CLK(clk), .D(d[0]), .Q(q[0]));\n"
            "  end else begin : g_gen\n    reg [3:0] r;\n    always @(posedge clk) r <= d;\n    assign q = r;\n"
            "  end endgenerate\nendmodule\n"
            "module uses_vendor(input clk, input d, output q);\n  BUFG b(.I(clk), .O(q));\nendmodule\n")
    by_top, _, _ = records(make_repo(tmp_path, {"v.v": code}))
    assert by_top["buf_sel"].missing == [] and by_top["buf_sel"].optional_missing == ["SRL16E"]
    assert structural_check(by_top["buf_sel"], FilterConfig()).ok
    assert by_top["uses_vendor"].missing == ["BUFG"]
    # with a stub library the primitive is found
    stubs = make_repo(tmp_path / "stubs", {"unisim.v": "module BUFG(input I, output O);\n assign O = I;\nendmodule\n"})
    by_top, _, _ = records(make_repo(tmp_path / "r2", {"v.v": code}), stubs=[stubs])
    assert by_top["uses_vendor"].missing == [] and by_top["uses_vendor"].dependency_paths == ["stub:unisim.v"]
    assert "module BUFG" in by_top["uses_vendor"].code


# ----------------------------------------------------------------------------------------- 5. macros


IFDEF = ("`define PLUS\n`define W 4\n"
         "module inc(input [`W-1:0] a, output [`W-1:0] y);\n"
         "`ifdef PLUS\n  assign y = a + 1;\n`else\n  assign y = a - 1;\n`endif\n"
         "`ifdef FORMAL\n  always @* assert(y == $past(y));\n`endif\nendmodule\n")


def test_ifdef_flags_are_applied_as_the_build_saw_them(tmp_path):
    repo = make_repo(tmp_path, {"inc.v": IFDEF})
    for expand in (True, False):
        rec = records(repo, expand_macros=expand)[0]["inc"]
        assert "a + 1" in rec.code and "a - 1" not in rec.code       # the branch `define PLUS selects
        assert "$past" not in rec.code and "FORMAL" not in rec.code  # the inactive formal block is gone
        assert "`define PLUS" not in rec.code                        # not needed once resolved
        if expand:  # what the compiler saw
            assert "[4-1:0] a" in rec.code and "`" not in rec.code
        else:       # macro uses stay readable, their definitions travel with the module
            assert "`define W 4" in rec.code and "`W-1" in rec.code


def test_source_defines_and_undef_select_branches(tmp_path):
    text = IFDEF.replace("`define PLUS\n", "")
    rec = records(make_repo(tmp_path, {"inc.v": text}))[0]["inc"]
    assert "a - 1" in rec.code and "a + 1" not in rec.code
    rec = records(make_repo(tmp_path / "d", {"inc.v": text}), defines={"PLUS": ""})[0]["inc"]
    assert "a + 1" in rec.code and "a - 1" not in rec.code
    rec = records(make_repo(tmp_path / "u", {"inc.v": "`undef PLUS\n" + text}), defines=["PLUS"])[0]["inc"]
    assert "a - 1" in rec.code
    rec = records(make_repo(tmp_path / "w", {"inc.v": text.replace("`define W 4\n", "")}),
                  defines={"W": 6}, expand_macros=False)[0]["inc"]
    assert rec.code.startswith("`define W 6\n")  # a define from the recipe travels like one from the file
    with pytest.raises(ValueError, match="macro names"):
        SourceConfig(kind="folder", path="x", defines={"1BAD": 1})


def test_macros_travel_transitively_and_per_unit(tmp_path):
    text = ("`define A 2\n`define B (`A + 1)\n`define UNUSED 9\n"
            "module m1(input [`B:0] a, output [`B:0] y);\n  assign y = a;\nendmodule\n"
            "`undef A\n`define A 5\n"
            "module m2(input [`A:0] a, output y);\n  m1 u(.a(a[3:0]), .y());\n  assign y = a[0];\nendmodule\n")
    by_top, _, _ = records(make_repo(tmp_path, {"m.v": text}), expand_macros=False)
    m1, m2 = by_top["m1"], by_top["m2"]
    assert m1.code.startswith("`define A 2\n`define B (`A + 1)\n") and "UNUSED" not in m1.code
    # m2 needs m1 (with A=2) and itself (with A=5): each unit is preceded by its own definitions
    assert m2.code.index("`define A 2") < m2.code.index("module m1") < m2.code.index("`define A 5") \
        < m2.code.index("module m2")
    assert "`undef A\n`define A 5" in m2.code
    by_top, _, _ = records(make_repo(tmp_path / "x", {"m.v": text}))  # expanded: each with its own values
    assert "input [(2 + 1):0] a" in by_top["m2"].code and "input [5:0] a" in by_top["m2"].code


def test_expansion_handles_what_the_simulator_preprocessor_lacks(tmp_path):
    # default macro arguments, stringification, directives inside a macro body, token pasting
    text = ("`define CLK clk_i\n"
            "`define FF(q, d, clk = `CLK) \\\n  `ifndef NO_FF \\\n  always @(posedge clk) q <= d; \\\n  `endif\n"
            "`define NAME(x) x``_q\n"
            "module reg4(input clk_i, input [3:0] d, output reg [3:0] `NAME(out));\n"
            "  `FF(`NAME(out), d)\n  // a string: `\"FF`\"\nendmodule\n")
    rec = records(make_repo(tmp_path, {"r.v": text}))[0]["reg4"]
    assert rec.parse_error is None
    assert "output reg [3:0] out_q" in rec.code and "always @(posedge clk_i) out_q <= d;" in rec.code
    assert "`" not in rec.code.replace('`\"FF`\"', "")  # only the comment keeps its backquotes
    lines = rec.code.splitlines()
    assert all(line == line.rstrip() for line in lines)  # no trailing blanks from continuation lines
    keep = records(make_repo(tmp_path / "f", {"f.v": "module f(input a, output y);\n  initial $display(`__FILE__);"
                                                      "\n  assign y = a;\nendmodule\n"}))[0]["f"]
    assert '$display("f.v")' in keep.code and str(tmp_path) not in keep.code  # no host path in a task


def test_includes_are_inlined_and_include_dirs_searched(tmp_path):
    repo = make_repo(tmp_path, {"inc/params.vh": "`define WIDTH 6\n", "rtl/local.vh": "localparam K = 3;\n",
                                "rtl/m.v": "`include \"params.vh\"\nmodule m(input [`WIDTH-1:0] a, output [5:0] y);\n"
                                           "`include \"local.vh\"\n  assign y = a + K;\nendmodule\n"})
    rec = records(repo)[0]["m"]
    assert rec.parse_error and "params.vh" in rec.parse_error and rec.parse_error.startswith("rtl/m.v:1:")
    rec = records(repo, include_dirs=["inc"], expand_macros=False)[0]["m"]
    assert rec.parse_error is None and "`include" not in rec.code
    assert "`define WIDTH 6" in rec.code and "localparam K = 3;" in rec.code
    rec = records(repo, include_dirs=["inc"])[0]["m"]
    assert "input [6-1:0] a" in rec.code and "localparam K = 3;" in rec.code


def test_includes_cannot_read_outside_the_source(tmp_path):
    make_repo(tmp_path / "host", {"secret.vh": "`define SECRET 42\n"})
    repo = make_repo(tmp_path / "repo", {"m.v": f"`include \"{tmp_path}/host/secret.vh\"\n" + INV,
                                         "n.v": "`include \"../host/secret.vh\"\n" + INV.replace("inv", "inv2")})
    by_top, _, _ = records(repo)
    for top in ("inv", "inv2"):
        assert "outside the source" in by_top[top].parse_error
    # rows of a JSONL/HF source have no folder: no relative include at all
    rec = next(split_text('`include "secret.vh"\n' + INV, source={"path": "row0"}, key_prefix="r",
                          settings=ParseSettings(include_dirs=())))
    assert rec.parse_error and "secret.vh" in rec.parse_error


# ----------------------------------------------------------------------------------------- 9. languages, packages


def test_verilog2005_file_with_systemverilog_keywords_as_names(tmp_path):
    text = ("module kw(input [3:0] logic, input bit, output [3:0] do);\n"
            "  assign do = bit ? ~logic : logic;\nendmodule\n")
    rec = records(make_repo(tmp_path, {"kw.v": text}))[0]["kw"]
    assert rec.parse_error is None and rec.language == "verilog2005"
    assert "input [3:0] logic_kw" in rec.code and "assign do_kw = bit_kw ? ~logic_kw : logic_kw;" in rec.code
    sv = records(make_repo(tmp_path / "sv", {"kw.sv": text}))[0]["kw"]  # a .sv file is SystemVerilog
    assert sv.parse_error
    forced = records(make_repo(tmp_path / "f", {"kw.sv": text}), language="verilog2005")[0]["kw"]
    assert forced.parse_error is None
    begin = records(make_repo(tmp_path / "b", {"kw.sv": '`begin_keywords "1364-2005"\n' + text +
                                               "`end_keywords\n"}))[0]["kw"]
    assert begin.parse_error is None and "logic_kw" in begin.code and "begin_keywords" not in begin.code


def test_systemverilog_packages_travel_with_the_module(tmp_path):
    repo = make_repo(tmp_path, {
        "pkg/alu_pkg.sv": "package alu_pkg;\n  typedef enum logic [1:0] {ADD, SUB, AND_, OR_} op_t;\n"
                          "  localparam int W = 8;\nendpackage\n",
        "rtl/alu.sv": "module alu import alu_pkg::*; (input op_t op, input [W-1:0] a, b, output logic [W-1:0] y);\n"
                      "  always_comb case (op)\n    ADD: y = a + b;\n    SUB: y = a - b;\n    AND_: y = a & b;\n"
                      "    default: y = a | b;\n  endcase\nendmodule\n",
        "rtl/scoped.sv": "module scoped(input [alu_pkg::W-1:0] a, output [alu_pkg::W-1:0] y);\n  assign y = ~a;\n"
                         "endmodule\n",
        "rtl/nopkg.sv": "module nopkg(input a, output y);\n  import missing_pkg::*;\n  assign y = a;\nendmodule\n"})
    by_top, _, _ = records(repo)
    alu = by_top["alu"]
    assert alu.dependencies == ["alu_pkg"] and alu.dependency_paths == ["pkg/alu_pkg.sv"]
    assert alu.code.index("package alu_pkg") < alu.code.index("module alu")
    assert by_top["scoped"].dependencies == ["alu_pkg"]
    assert by_top["nopkg"].missing == ["missing_pkg"]
    assert "alu_pkg" not in by_top  # packages are dependencies, not tasks


# ----------------------------------------------------------------------------------------- 8/9. provenance


def test_license_per_task(tmp_path):
    mit = "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy..."
    apache = "                                 Apache License\n                           Version 2.0, January 2004"
    repo = make_repo(tmp_path, {"LICENSE": mit, "rtl/inv.v": INV, "vendor/LICENSE.txt": apache,
                                "vendor/v.v": INV.replace("inv", "vinv"),
                                "rtl/tagged.v": "// SPDX-License-Identifier: BSD-2-Clause\n" + INV.replace("inv", "t")})
    by_top, _, _ = records(repo)
    assert by_top["inv"].source["license"] == "MIT"
    assert by_top["vinv"].source["license"] == "Apache-2.0"
    assert by_top["t"].source["license"] == "BSD-2-Clause"
    by_top, _, _ = records(repo, license="CERN-OHL-P-2.0")  # the source setting beats a LICENSE file
    assert by_top["inv"].source["license"] == "CERN-OHL-P-2.0" and by_top["t"].source["license"] == "BSD-2-Clause"
    bare = records(make_repo(tmp_path / "bare", {"inv.v": INV}))[0]["inv"]
    assert bare.source["license"] is None


def test_two_sources_with_the_same_folder_name_get_distinct_names(tmp_path):
    cfg = BuildConfig(sources=[SourceConfig(kind="folder", path=str(tmp_path / "a" / "rtl")),
                               SourceConfig(kind="folder", path=str(tmp_path / "b" / "rtl")),
                               SourceConfig(kind="folder", path=str(tmp_path / "c"))])
    assert [s.name for s in cfg.sources] == ["a/rtl", "b/rtl", "c"]
    with pytest.raises(ValueError, match="both named 'x'"):
        BuildConfig(sources=[SourceConfig(kind="folder", path="p", name="x"),
                             SourceConfig(kind="folder", path="q", name="x")])


def test_missing_decontamination_section_is_an_error_not_silently_off(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(f"output_dir: {tmp_path}/o\nsources: [{{kind: folder, path: {tmp_path}}}]\n")
    cfg = load_build_config(str(path))
    with pytest.raises(ValueError, match="decontaminate"):
        cfg.validate_for_run()
    path.write_text(path.read_text() + "decontaminate: {enabled: false}\n")
    load_build_config(str(path)).validate_for_run()
    path.write_text(path.read_text().replace("{enabled: false}", "{}"))  # the section without benchmarks
    with pytest.raises(ValueError, match="benchmarks"):
        load_build_config(str(path))


def test_formal_harnesses_and_testbenches_are_recognised(tmp_path):
    repo = make_repo(tmp_path, {
        "f.sv": "module harness(input clk, output y);\n  (* anyseq *) wire [3:0] x;\n  assign y = x[0];\n"
                "  always @(posedge clk) assume(x != 0);\nendmodule\n",
        "tb.v": "module tb;\n  reg a; wire y;\n  inv u(.a({4{a}}), .y());\n  initial begin a = 0; #5 a = 1; "
                "#5 $finish; end\nendmodule\n" + INV})
    by_top, _, _ = records(repo)
    assert by_top["harness"].formal and structural_check(by_top["harness"], FilterConfig()).reason == "formal_harness"
    assert by_top["tb"].testbench and structural_check(by_top["tb"], FilterConfig()).reason == "testbench"
    assert not by_top["inv"].testbench and not by_top["inv"].formal
