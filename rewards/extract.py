"""Completion text → Verilog source, plus a format score.

Accepted shapes, in order of preference:

1. an ``<answer>...</answer>`` section (reasoning format), searched with the rules below;
2. fenced code blocks (```` ```verilog ````, ```` ```systemverilog ````, ```` ```sv ````,
   ```` ```v ```` or unlabeled) that contain a module;
3. VerilogEval's ``[BEGIN] ... [DONE]`` markers;
4. bare ``module ... endmodule`` text, from the first line that starts with a module header (the
   keyword ``module`` or ``macromodule`` after optional attributes, a name, then ``#``, ``(`` or
   ``;``); failing that, from the first such header in the middle of a line. Prose such as "Here is
   the module:" or "module has no state" is never taken for the start of the code.

Text inside ``<think>...</think>`` is never searched for code. When several blocks define
modules, they are merged by module name, later definitions replacing earlier ones (a model
that revises a module keeps its last version; submodules in separate blocks are kept).

The format score is 1.0 for code in an expected wrapper (fence, [BEGIN]/[DONE] or <answer>),
0.5 for bare module text, 0.0 when no module is found; with ``reasoning="required"`` a
missing or unclosed ``<think>`` block halves it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from . import lexer

MAX_COMPLETION_CHARS = 200_000

_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_VERILOG_LANGS = {"", "verilog", "systemverilog", "sv", "v", "vlog"}
_BEGIN_DONE_RE = re.compile(r"\[BEGIN\](.*?)(?:\[DONE\]|\Z)", re.DOTALL)
_THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_ANSWER_RE = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.DOTALL)
_MODULE_RE = re.compile(r"\b(?:module|macromodule)\b")
#: where bare code starts: a module header (``module``/``macromodule``, a name, then ``#``, ``(`` or ``;``) at the
#: start of a line (after optional attributes); failing that, such a header in the middle of a line
_NAME = r"(?:[A-Za-z_][A-Za-z0-9_$]*|\\\S+)"
_DEFINITION_RE = re.compile(rf"^[ \t]*(?:\(\*[^\n]*?\*\)[ \t]*)*(?:module|macromodule)\s+{_NAME}\s*[#(;]", re.MULTILINE)
_HEADER_RE = re.compile(rf"\b(?:module|macromodule)\s+{_NAME}\s*[#(;]")

REASONING_MODES = ("none", "optional", "required")


@dataclasses.dataclass(frozen=True)
class Extraction:
    code: str | None
    """Extracted Verilog, or ``None`` when the completion holds no module."""
    format_score: float
    style: str
    """How the code was found: ``answer+fence``, ``fence``, ``begin_done``, ``bare`` or ``none``."""
    reason: str | None = None
    """Why nothing was extracted (``None`` on success)."""


def completion_text(completion: Any) -> str:
    """The assistant text of a completion given as a string, bytes, or chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, (bytes, bytearray)):
        return bytes(completion).decode("utf-8", errors="replace")
    if isinstance(completion, Mapping):
        content = completion.get("content")
        return completion_text(content) if content is not None else ""
    if isinstance(completion, Sequence):
        parts = []
        for message in completion:
            if isinstance(message, Mapping):
                if message.get("role", "assistant") == "assistant":
                    parts.append(completion_text(message.get("content") or ""))
            elif isinstance(message, str):
                parts.append(message)
        return "\n".join(parts)
    raise TypeError(f"a completion must be a string or a list of chat messages, got {type(completion).__name__}")


def extract_verilog(completion: Any, *, reasoning: str = "optional") -> Extraction:
    """Find the Verilog source in a model completion (see module docstring)."""
    if reasoning not in REASONING_MODES:
        raise ValueError(f"reasoning must be one of {REASONING_MODES}, got {reasoning!r}")
    try:
        text = completion_text(completion)
    except TypeError as exc:
        return Extraction(None, 0.0, "none", str(exc))
    if not text.strip():
        return Extraction(None, 0.0, "none", "empty completion")
    if len(text) > MAX_COMPLETION_CHARS:
        return Extraction(None, 0.0, "none", f"completion longer than {MAX_COMPLETION_CHARS} characters")
    if "\x00" in text:
        return Extraction(None, 0.0, "none", "completion contains NUL bytes (binary data)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates: text no tokenizer can have produced as UTF-8
        return Extraction(None, 0.0, "none", f"completion is not valid Unicode text ({exc.reason} at "
                                             f"character {exc.start})")

    think_ok = True
    if reasoning != "none":
        has_open = "<think>" in text
        closed = _THINK_RE.search(text) is not None
        think_ok = closed if has_open else reasoning == "optional"
        text = _THINK_RE.sub("", text)
        if has_open and not closed:
            # unclosed reasoning: everything after <think> is reasoning, not an answer
            text = text.split("<think>", 1)[0]

    code, style = None, "none"
    answer = _ANSWER_RE.search(text)
    if answer:
        code, inner = _search(answer.group(1))
        style = f"answer+{inner}" if code else "none"
        if code and inner == "bare":
            style = "answer"
    if code is None:
        code, style = _search(text)
    if code is None:
        return Extraction(None, 0.0, "none", "no Verilog module found in the completion")
    score = 0.5 if style == "bare" else 1.0
    if reasoning == "required" and not think_ok:
        score *= 0.5
    return Extraction(code, score, style)


def _search(text: str) -> tuple[str | None, str]:
    blocks = [body for lang, body in _FENCE_RE.findall(text) if lang.lower() in _VERILOG_LANGS]
    blocks = [b for b in blocks if _MODULE_RE.search(b)]
    if blocks:
        return _merge(blocks), "fence"
    begin = [b for b in _BEGIN_DONE_RE.findall(text) if _MODULE_RE.search(b)]
    if begin:
        return _merge(begin), "begin_done"
    definition = _DEFINITION_RE.search(text) or _HEADER_RE.search(text)
    if definition and "endmodule" in text[definition.start():]:
        line_start = definition.start()
        # keep directives (`timescale, `define) that precede the first module on their own lines
        prelude = "".join(line + "\n" for line in text[:line_start].splitlines() if line.lstrip().startswith("`"))
        body = text[line_start:]
        end = body.rfind("endmodule") + len("endmodule")
        return _merge([prelude + body[:end]]), "bare"
    return None, "none"


def _merge(blocks: list[str]) -> str:
    """Merge module definitions from several blocks; later definitions of a name win."""
    if len(blocks) == 1:
        return blocks[0].strip() + "\n"
    merged: dict[str, str] = {}
    for block in blocks:
        parts = lexer.split_modules(block)
        if not parts:
            continue
        for name, text in parts:
            merged.pop(name, None)
            merged[name] = text
    if not merged:
        return blocks[-1].strip() + "\n"
    return "\n".join(text.strip() for text in merged.values()) + "\n"
