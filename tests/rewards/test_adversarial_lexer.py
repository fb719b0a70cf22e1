"""Mechanism 1: the sanitizer and the compiler read different texts.

Closed by construction: the candidate is preprocessed in Python the way Icarus' ``ivlpp`` does it
(rewards/preprocess.py), control characters are refused, and the result is checked to be split the
same way by the compiler's token rules (rewards/lexer.py) before any allowlist runs. The property
tests compare the preprocessor with ``iverilog -E`` on random inputs and check that Icarus' own
preprocessor has nothing left to do on a canonical text.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import random
import subprocess
import tempfile

import pytest

from rewards import lexer
from rewards.errors import Forbidden
from rewards.hierarchy import RewardConfig, score_completion
from rewards.preprocess import FILE_NAME, preprocess
from rewards.sanitize import preprocessed_tokens, sanitize_candidate

FULL = RewardConfig(weights={"format": 0.1, "syntax": 0.1, "function": 1.0, "ppa": 0.1})


def kinds(text: str) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in lexer.tokenize(text) if t.kind != lexer.SPACE]


# ----------------------------------------------------------------------------------------------- the lexer's rules


@pytest.mark.parametrize("text,expected", [
    ("a // c\rb", [("ident", "a"), ("comment", "// c"), ("ident", "b")]),  # ivlpp ends // at a bare CR
    ("\\esc\bx", [("escaped", "\\esc"), ("ident", "x")]),  # a backspace ends an escaped identifier
    ("\\esc\fx", [("escaped", "\\esc"), ("ident", "x")]),
    ("\\esc\vx", [("escaped", "\\esc\vx")]),  # a vertical tab does not (not whitespace to Icarus)
    ("8'h ff", [("number", "8"), ("number", "'h ff")]),  # blanks between base and digits
    ("#1ns x", [("op", "#"), ("number", "1ns"), ("ident", "x")]),  # a time literal is one token
    ('"abc\nd"', [("op", '"'), ("ident", "abc"), ("ident", "d"), ("op", '"')]),  # a string never spans lines
    ('"a\\"b"', [("string", '"a\\"b"')]),
    ("$fin$ish(x)", [("system", "$fin$ish"), ("op", "("), ("ident", "x"), ("op", ")")]),
    ("a$b", [("ident", "a$b")]),
    ("@(*)", [("op", "@"), ("op", "(*)")]),
    ("(* keep *)", [("op", "(*"), ("ident", "keep"), ("op", "*)")]),
    ("`define X", [("directive", "`define"), ("ident", "X")]),
    ("`` `\"", [("directive", "``"), ("directive", '`"')]),
])
def test_lexer_splits_like_icarus(text, expected):
    assert kinds(text) == expected
    assert "".join(t.text for t in lexer.tokenize(text)) == text


# ----------------------------------------------------------------------------------------------- refused inputs

PORTS = "module top(input [3:0] a, output [3:0] y);\n"

HIDDEN = [
    # the cases: text after a bare CR or a backspace was invisible to the old sanitizer
    PORTS + "  assign y = a; // note\r initial $finish;\nendmodule\n",
    PORTS + "  assign y = a; // note\r initial $display(\"VERIRL-RESULT-0 1 1\");\nendmodule\n",
    PORTS + "  wire \\w\b = 1; initial $fopen(\"verirl_tb.v\");\n  assign y = a;\nendmodule\n",
    PORTS + "  wire \\w\f$finish = 1;\n  assign y = a;\nendmodule\n",
    PORTS + "  assign y = a; /* c */\r\r$finish;\nendmodule\n",
    PORTS + "  assign y = a;\x00 initial $finish;\nendmodule\n",
    PORTS + "  assign y = a;\x0b\nendmodule\n",
    PORTS + "  assign y = a;\x7f\nendmodule\n",
    PORTS + "  assign y = a;\x1b[2J\nendmodule\n",
]


@pytest.mark.parametrize("code", HIDDEN, ids=range(len(HIDDEN)))
def test_control_characters_are_refused(code):
    with pytest.raises(Forbidden, match="U\\+00"):
        sanitize_candidate(code, "top")


def test_crlf_is_normalised_not_refused():
    code = (PORTS + "  assign y = a; // c\nendmodule\n").replace("\n", "\r\n")
    out = sanitize_candidate(code, "top").code
    assert "\r" not in out and "assign y = a;" in out


AMBIGUOUS = [
    # escaped identifiers holding characters the preprocessor reads as a comment, string or macro start
    PORTS + "  wire \\x//y ;\n  assign y = a;\nendmodule\n",
    PORTS + "  wire \\x\"y ;\n  assign y = a; // \"\nendmodule\n",
    PORTS + "  `define F $finish\n  wire \\x`F ;\n  assign y = a;\nendmodule\n",
    PORTS + "  wire \\x(*y ;\n  assign y = a;\nendmodule\n",
    # attributes: macros inside, and a string that holds the closing *)
    PORTS + "  `define K keep\n  (* `K *) wire q;\n  assign y = a;\nendmodule\n",
    PORTS + "  (* a = \"*)\" *) wire q; initial $finish;\n  assign y = a;\nendmodule\n",
    # strings: unterminated, and spanning lines (ivlpp and the compiler disagree)
    PORTS + "  wire [7:0] q = \"abc\n  $finish\";\n  assign y = a;\nendmodule\n",
    # macro expansions that make a comment, or glue into a system name or a directive
    PORTS + "  `define S /\n  assign y = a `S`S $finish;\nendmodule\n",
    PORTS + "  `define D $fin\n  `define E ish\n  initial `D`E;\n  assign y = a;\nendmodule\n",
    PORTS + "  `define T `\n  `T include \"x\"\n  assign y = a;\nendmodule\n",
    PORTS + "  `define P(x) $fin``x\n  initial `P(ish);\n  assign y = a;\nendmodule\n",
    PORTS + "  `define Q(x) `\"x`\"\n  wire [15:0] q = `Q(ab);\n  assign y = a;\nendmodule\n",
    # a define whose body's string is cut by ivlpp's naive comment removal
    PORTS + "  `define U \"http://x\"\n  wire [7:0] q = `U;\n  assign y = a;\nendmodule\n",
]


@pytest.mark.parametrize("code", AMBIGUOUS, ids=range(len(AMBIGUOUS)))
def test_texts_read_differently_are_refused(code):
    with pytest.raises(Forbidden):
        sanitize_candidate(code, "top")


@pytest.mark.parametrize("decl", ["wire \\a$finish = 1;", "wire a$finish = 1;", 'wire [63:0] q = "$finish";',
                                  'wire [7:0] q = "$";'])
def test_context_free_check_catches_names_built_from_pieces(decl):
    # every `$` of the final text must start an allowed name, whatever the token rules said
    with pytest.raises(Forbidden, match="not allowed"):
        sanitize_candidate(PORTS + f"  {decl}\n  assign y = a;\nendmodule\n", "top")


@pytest.mark.usefixtures("eda")
@pytest.mark.parametrize("code", [HIDDEN[0], HIDDEN[2], AMBIGUOUS[7], AMBIGUOUS[8]], ids=range(4))
def test_refused_texts_earn_format_credit_only(harness, code):
    body = code.split("\n", 1)[1].rsplit("endmodule", 1)[0].replace("y = a", "s = a + b")
    score = score_completion(harness.task, harness.design(body), FULL)
    assert score.failure == "forbidden", score
    assert score.components["syntax"] == score.components["function"] == score.components["ppa"] == 0.0
    assert score.reward == pytest.approx(0.1)


# ----------------------------------------------------------------------------------------------- property tests

_FRAGMENTS = [
    "a", "b", "foo", "x1", " ", " ", "\n", "\n", "\t", ";", "(", ")", ",", "/", "*", "+", ".", "=", "[", "]", "{", "}",
    "$signed(a)", "$finish", '$display("x");', "\\a+b ", "\\foo ", "\\x//y ", '\\q"r ', "\\m`W ", "\\p(*q ",
    "8'hff", "4'b10x1", "1.5e3", "1ns", "8'h ff", "'1", '"abc"', '"a\\"b"', '"a\\\\"', '"x\\`y"', '"//"', '"/*"',
    '"(*"', '"`W"', "// c\n", "/* c */", "/* /* nested */ */", "/* multi\nline */", "// c `W\n", "/* `W */",
    "(* keep *)", '(* a = "x" *)', '(* a = "*)" *)', "(*)", "@(*)", "(* `W *)", "(* \n *)", "( * )",
    "`W", "`F(3)", "`G(1)", "`G(1,{2,3})", "`F((1,2))", "`E", "`C(y)", "`__LINE__", "`__FILE__", "`F ( 3 )",
    "`F(\n3)", "`W`W", "`N", "`K(q)", "`S", "`T(a,b)", "`T(a[1,2])", "`F('(')", '`F("a,b")', "`P(/)`P(/)",
    "`F(/* c */a)", "`F(// c\na)", "`__ICARUS__", "`elsewhere", "`ifdef W ", "`endif", "module m;", "endmodule",
    "\n`timescale 1ns/1ps\n", "\n`timescale 10 ps / 1 fs // c\n", "\n`default_nettype none\n", "\n`resetall\n",
    "\n`celldefine\n", "\n`undef W\n", "\n`undef F extra\n",
]
_HOSTILE = ["\r", "\b", "\f", "\v", "\x00", "\x1b", "\r\n", "é", "\u2028", "//\r x\n", "`UNDEF", "``", "`", '`"',
            '\n`include "x.v"\n', '\n`line 3 "f" 0\n', "\n`pragma x\n", '"unterminated', '\n`define Q "\n']
_DEFINES = ["\n`define W 4\n", "\n`define F(x) (x+1)\n", "\n`define G(a,b=2) a*b\n", "\n`define E\n",
            "\n`define C(x) x \\\n +1\n", '\n`define S "str"\n', "\n`define D `define Z 1\n", '\n`define K(x) "x" x//c\n',
            "\n`define N `W+1\n", "\n`define P(a) a/\n", "\n`define T(x, y) {x, y}\n"]
_NAMES = ["W", "NOPE", "F", "__FILE__", "timescale", "E", "X"]


def _body(rng: random.Random, depth: int, pool: list[str]) -> str:
    out = []
    for _ in range(rng.randint(1, 8)):
        r = rng.random()
        if r < 0.15 and depth < 3:
            out.append(f"\n`{rng.choice(['ifdef', 'ifndef'])} {rng.choice(_NAMES)}\n" + _body(rng, depth + 1, pool))
            for _ in range(rng.randint(0, 2)):
                out.append(rng.choice([f"\n`elsif {rng.choice(_NAMES)}\n", "\n`else\n", "`else "]))
                out.append(_body(rng, depth + 1, pool))
            out.append(rng.choice(["\n`endif\n", "`endif ", "\n`endif // c\n", "`endif"]))
        elif r < 0.2:
            out.append(rng.choice(["\n`undef W\n", "\n`undef F extra\n", "\n`define X 5\n"]))
        else:
            out.append(rng.choice(pool))
    return "".join(out)


def random_source(rng: random.Random) -> str:
    pool = _FRAGMENTS + _HOSTILE if rng.random() < 0.2 else _FRAGMENTS
    return "".join(rng.sample(_DEFINES, rng.randint(len(_DEFINES) - 3, len(_DEFINES)))) + _body(rng, 0, pool)


def _ivlpp(text: str) -> tuple[int, str, str]:
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, FILE_NAME), "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(text)
        p = subprocess.run(["iverilog", "-E", "-o", "-", FILE_NAME], cwd=d, capture_output=True, timeout=20, check=False)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def _drop_attributes(text: str) -> str:
    """Attributes as ivlpp delimits them (from ``(*`` to the first ``*)``), replaced like the preprocessor does."""
    out, pos = [], 0
    for tok in lexer.tokenize(text):
        if tok.start < pos:
            continue
        if tok.kind == lexer.OP and tok.text == "(*":
            end = text.find("*)", tok.start + 2) + 2
            out.append("\n" * text.count("\n", tok.start, end) or " ")
            pos = end
            continue
        out.append(tok.text)
        pos = tok.end
    return "".join(out)


def _compiler_view(text: str) -> list[tuple[int, str, str]]:
    """(line, kind, text) of the significant tokens; kept directives as one normalised item per line."""
    toks, line = [], 1
    for t in lexer.tokenize(text):
        if t.kind not in (lexer.SPACE, lexer.COMMENT):
            toks.append((line, t.kind, t.text))
        line += t.text.count("\n")
    out, i = [], 0
    while i < len(toks):
        ln, kind, txt = toks[i]
        if kind == lexer.DIRECTIVE and txt in ("`timescale", "`default_nettype"):
            j = i + 1
            while j < len(toks) and toks[j][0] == ln:
                j += 1
            out.append((ln, "directive", txt + " " + "".join(t[2] for t in toks[i + 1:j])))
            i = j
            continue
        if not (kind == lexer.DIRECTIVE and txt in ("`celldefine", "`endcelldefine")):
            out.append(toks[i])
        i += 1
    return out


def _differential(text: str) -> str:
    """'refused', or 'agree' when the preprocessor's text splits into the tokens Icarus' would."""
    try:
        ours = "".join(t.text for t in preprocessed_tokens(text))
    except Forbidden:
        return "refused"
    rc, out, err = _ivlpp(text.replace("\r\n", "\n"))
    assert rc == 0 and "error" not in err.lower(), f"accepted, but iverilog -E fails on {text!r}: {err}"
    theirs = _compiler_view(_drop_attributes(out))
    mine = _compiler_view(ours)
    assert mine == theirs, f"preprocessor and iverilog -E disagree on {text!r}:\nours:   {mine}\nivlpp:  {theirs}"
    return "agree"


@pytest.mark.usefixtures("eda")
def test_preprocessor_agrees_with_iverilog_E_on_random_sources():
    rng = random.Random(20240917)
    sources = [random_source(rng) for _ in range(160)]
    with cf.ThreadPoolExecutor(4) as ex:
        verdicts = list(ex.map(_differential, sources))
    # the generator must reach both outcomes often enough for the comparison to mean something
    assert verdicts.count("agree") >= 50 and verdicts.count("refused") >= 50, verdicts


@pytest.mark.usefixtures("eda")
def test_iverilog_preprocessor_has_nothing_left_to_do_on_canonical_text():
    sources = [
        ("`define W 4\n`timescale 1 ns / 1 ps\nmodule top #(parameter N = `W) (input [N-1:0] a, output y);\n"
        "  `ifdef NOPE\n  assign y = tb.x;\n  `else\n  assign y = ^a; // parity\n  `endif\n"
        "  (* keep *) wire k = `__LINE__;\n  wire [87:0] f = `__FILE__;\n  initial $display(\"%d\", a);\nendmodule\n"),
        ("module helper(input a, output b); assign b = ~a; endmodule\n/* c */ module top(input a, output y);\n"
        "  helper h(.a(a), .b(y)); always @(*) begin : helper end\nendmodule\n"),
        "`default_nettype none\nmodule top(input wire \\a+b , output wire y);\n  assign y = \\a+b ;\nendmodule\n",
    ]
    for src in sources:
        code = sanitize_candidate(src, "top").code
        rc, out, err = _ivlpp(code)
        assert rc == 0, err
        assert _compiler_view(out) == _compiler_view(code)
        assert out.rstrip("\n") == code.rstrip("\n")


def test_preprocessor_keeps_line_numbers():
    pre = preprocess("`define W 4\n/* a\nb */\n`ifdef NOPE\nx\n`endif\nwire [`W:0] q = `__LINE__;\n")
    assert pre.text.split("\n")[6].strip() == "wire [4:0] q = 7;"
