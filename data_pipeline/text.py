"""Source text in, UTF-8 text out: decoding, line endings, and line counting.

Real corpora hold files in UTF-8 (with or without a byte-order mark), UTF-16, Windows-1252 /
Latin-1 (comments with accented names), old Mac line endings and stray control characters.
:func:`decode_source` turns any of them into one Python string with ``\\n`` line endings:

* a UTF-8, UTF-16 or UTF-32 byte-order mark selects that encoding (and is dropped);
* otherwise strict UTF-8 is tried first; a file that is not valid UTF-8 is read as Windows-1252
  (a superset of the printable Latin-1 range), so ``Jos\\xe9`` becomes ``José``, never a
  replacement character that moves offsets;
* ``\\r\\n`` and a bare ``\\r`` both become ``\\n`` (Icarus ends a ``//`` comment at a bare ``\\r``:
  after this step every tool and every check reads the same lines);
* form feed and vertical tab (whitespace to a Verilog compiler) become spaces, and a DOS
  end-of-file mark (``\\x1a``) at the end is dropped.

All later offsets are character offsets into that string; the splitter converts the parser's byte
offsets (see :mod:`data_pipeline.verilog`).
"""

from __future__ import annotations

import codecs

from rewards import lexer

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_WHITESPACE_CONTROLS = str.maketrans({"\f": " ", "\v": " "})


def decode_source(data: bytes) -> tuple[str, str]:
    """``(text, encoding)``: ``data`` decoded and normalized as described in the module docstring."""
    encoding = None
    for bom, name in _BOMS:
        if data.startswith(bom):
            data, encoding = data[len(bom):], name
            break
    if encoding is not None:
        text = data.decode(encoding, errors="replace")
    else:
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            # cp1252 leaves five bytes undefined; those (never seen in real text) become U+FFFD
            text, encoding = data.decode("cp1252", errors="replace"), "cp1252"
    return normalize_text(text), encoding


def normalize_text(text: str) -> str:
    """``\\n`` line endings, no form feed / vertical tab, no trailing DOS end-of-file mark."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.rstrip("\x1a")
    return text.translate(_WHITESPACE_CONTROLS)


def significant_lines(code: str) -> int:
    """Lines holding at least one token that is not whitespace or a comment.

    Comment-only lines (license headers, commented-out code, banners) do not count against
    ``filters.max_lines`` / ``min_lines``; a line with code and a trailing comment does.
    """
    lines: set[int] = set()
    line = 0
    for tok in lexer.tokenize(code):
        if tok.significant:
            lines.add(line)
        line += tok.text.count("\n")
    return len(lines)
