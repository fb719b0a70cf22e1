"""Sources (folder, JSONL, datasets) and module splitting with pyslang; structural and tool filters."""

from __future__ import annotations

import json

import pytest
from data_fixtures import CORPUS

from data_pipeline.config import FilterConfig, SourceConfig
from data_pipeline.filters import check_module, structural_check, tool_check
from data_pipeline.sources import ModuleRecord, SourceStats, iter_modules, split_text
from data_pipeline.verilog import ParseSettings, parse_file

TWO_FILE = """`define W 4
module leaf(input [`W-1:0] a, output [`W-1:0] y);
  assign y = ~a;
endmodule

module top(input [3:0] a, output [3:0] y, output z);
  generate if (1) begin : g
    leaf u(.a(a), .y(y));
  end endgenerate
  ghost gh(.z(z));
endmodule
"""


def test_split_keeps_dependencies_macros_and_reports_missing():
    recs = {r.top: r for r in split_text(TWO_FILE, source={"name": "t"}, key_prefix="t/f.v")}
    assert set(recs) == {"leaf", "top"}
    top = recs["top"]
    assert top.dependencies == ["leaf"] and top.missing == ["ghost"]  # found inside a generate block too
    assert top.code.index("module leaf") < top.code.index("module top")
    assert "input [4-1:0] a" in recs["leaf"].code  # the macro the module uses, as the compiler saw it
    kept = {r.top: r for r in split_text(TWO_FILE, source={"name": "t"}, key_prefix="t/f.v",
                                         settings=ParseSettings(expand_macros=False))}
    assert "`define W 4" in kept["leaf"].code  # or its definition travels with the module
    assert recs["leaf"].ports == 2 and top.ports == 3 and top.key == "t/f.v:top"
    rec = ModuleRecord.from_dict(json.loads(json.dumps(top.to_dict())))
    assert rec == top


def test_single_module_text_and_port_counting():
    spans = parse_file("module b(x, y, z); input x, y; output z; assign z = x & y; endmodule", "b.v", ParseSettings())
    assert [(s.name, s.ports, s.parse_error) for s in spans] == [("b", 3, None)]
    bad = parse_file("module ok(input a, output y); assign y = a; endmodule\nmodule bad(input a output y); endmodule",
                     "f.v", ParseSettings())
    assert bad[0].parse_error is None
    # the message says where and what, like a compiler: file:line:column: error: message
    assert bad[1].parse_error == "f.v:2:19: error: expected identifier"


def test_folder_source_resolves_modules_across_files():
    stats = SourceStats()
    recs = {r.top: r for r in iter_modules(SourceConfig(kind="folder", path=CORPUS), stats)}
    parity = recs["parity_top"]
    assert parity.dependencies == ["parity_core", "popcount8"] and not parity.missing
    assert parity.source["path"] == "sub/parity.v" and parity.dependency_paths == ["sub/parity_core.v", "sub/parity_core.v"]
    assert stats.items == 14 and recs["orphan"].missing == ["missing_block"]
    # without cross-file resolution the dependency is missing
    recs = {r.top: r for r in iter_modules(SourceConfig(kind="folder", path=CORPUS, resolve_across_files=False))}
    assert recs["parity_top"].missing == ["parity_core", "popcount8"]


def test_jsonl_source_counts_bad_rows(tmp_path):
    path = tmp_path / "c.jsonl"
    rows = [json.dumps({"text": "module a(input x, output y);\n assign y = x;\nendmodule", "repo": "r/a.v",
                        "license": "mit"}), "{not json", json.dumps({"text": ""}), json.dumps({"text": "no modules"})]
    path.write_text("\n".join(rows) + "\n")
    stats = SourceStats()
    cfg = SourceConfig(kind="jsonl", path=str(path), code_field="text", path_field="repo", license_field="license")
    recs = list(iter_modules(cfg, stats))
    assert [r.top for r in recs] == ["a"] and recs[0].source["license"] == "mit"
    assert recs[0].source["path"] == "r/a.v"
    assert stats.items == 4 and stats.skipped == {"bad_json": 1, "empty_code": 1, "no_module": 1}
    with pytest.raises(ValueError, match="no column 'code'"):
        list(iter_modules(SourceConfig(kind="jsonl", path=str(path))))


def test_hf_dataset_source_from_disk(tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict({"content": ["module m1(input a, output b);\n assign b = ~a;\nendmodule\n",
                                                 "module m2(input a, output b); assign b = a; endmodule"]})
    ds.save_to_disk(str(tmp_path / "ds"))
    recs = list(iter_modules(SourceConfig(kind="hf", path=str(tmp_path / "ds"), code_field="content")))
    assert [r.top for r in recs] == ["m1", "m2"] and recs[1].source["row"] == 1
    ds.to_parquet(str(tmp_path / "c.parquet"))  # a single data file, streamed
    recs = list(iter_modules(SourceConfig(kind="hf", path=str(tmp_path / "c.parquet"), code_field="content")))
    assert [r.top for r in recs] == ["m1", "m2"]


def test_source_config_errors_name_the_field(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        SourceConfig(kind="s3", path="x")
    with pytest.raises(ValueError, match="path"):
        SourceConfig(kind="folder")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(iter_modules(SourceConfig(kind="folder", path=str(tmp_path / "nope"))))


def _rec(code: str, top: str) -> ModuleRecord:
    return next(r for r in split_text(code, source={}, key_prefix="x") if r.top == top)


def test_structural_limits():
    cfg = FilterConfig(max_ports=3, max_lines=6)
    ok = _rec("module m(input a, input b, output y);\n  assign y =\n    a & b;\nendmodule\n", "m")
    assert structural_check(ok, cfg).ok
    many = _rec("module m(input a, b, c, output y);\n assign y = a;\n // x\n wire w;\nendmodule\n", "m")
    assert structural_check(many, cfg).reason == "too_many_ports"
    long = _rec("module m(input a, output y);\n" + "wire w;\n" * 8 + "assign y = a;\nendmodule\n", "m")
    assert structural_check(long, cfg).reason == "too_long"
    inc = _rec('module m(input a, output y);\n`include "x.vh"\n assign y = a;\nendmodule\n', "m")
    assert structural_check(inc, FilterConfig()).reason in ("include_directive", "parse_error")
    with pytest.raises(ValueError, match="max_ports"):
        FilterConfig(min_ports=5, max_ports=2)


@pytest.mark.eda
def test_tool_filters_compile_and_synthesize(eda):
    cfg = FilterConfig()
    good = _rec(open(f"{CORPUS}/counter.v").read(), "up_counter")
    res = check_module(good, cfg)
    assert res.ok and res.figures["cells"] > 0
    unsynth = _rec(open(f"{CORPUS}/unsynth.v").read(), "two_edges")
    res = check_module(unsynth, cfg)
    assert not res.ok and res.reason == "synth" and "edge" in res.detail
    # parses (so the structural check passes) but does not elaborate: width mismatch is fine, an
    # undeclared identifier is not
    bad = _rec("module m(input a, output y);\n  assign y = a & nothere;\nendmodule\n", "m")
    res = check_module(bad, cfg)  # the reward engine's front end refuses it before any tool runs
    assert not res.ok and res.stage == "interface" and res.reason == "interface_error" and "nothere" in res.detail
    res = tool_check(bad, cfg)
    assert not res.ok and res.stage == "compile" and res.reason == "compile"
    big = FilterConfig(max_cells=1)
    assert check_module(good, big).reason == "too_many_cells"
    quick = FilterConfig(synth_figures=False)
    res = check_module(good, quick)
    assert res.ok and res.figures["cells"] > 0 and "depth" not in res.figures
    assert check_module(unsynth, quick).reason == "synth"
