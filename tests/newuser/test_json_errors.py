"""A malformed JSONL line is reported with the file, the line and the column in plain words, whatever json's own
reason says (its reasons "Invalid control character at" and "Unterminated string starting at" already end in "at",
and were printed as "... at at column N")."""

from __future__ import annotations

import json

import pytest

from rewards.errors import TaskError
from rewards.task import iter_jsonl, json_error_text, load_tasks

BAD_LINES = [
    '{"id": "a\x01b"}',            # control character inside a string
    '{"id": "a\tb"}',             # raw tab inside a string
    '{"id": "abc',                 # unterminated string
    '{"id": "a" "top": "t"}',      # missing comma
    '{"id": }',                    # missing value
    '{"id": "a"} trailing',        # extra data
    '{"id": "\\x41"}',             # invalid escape
    '{"id": "\\ud800\\u12"}',      # invalid \\u escape
    "{'id': 'a'}",                 # single quotes
]


@pytest.mark.parametrize("line", BAD_LINES)
def test_json_error_names_file_line_and_column_once(tmp_path, line):
    path = tmp_path / "tasks.jsonl"
    path.write_text('{"id": "ok", "top": "t"}\n' + line + "\n")
    with pytest.raises(TaskError) as info:
        list(iter_jsonl(str(path)))
    message = str(info.value)
    assert message.startswith(f"{path}:2: not valid JSON (")
    assert " at at " not in message and "at at column" not in message
    assert message.count("column") == 1 and "fix or delete that line" in message


@pytest.mark.parametrize("line", BAD_LINES)
def test_json_error_text_reads_as_one_phrase(line):
    with pytest.raises(json.JSONDecodeError) as info:
        json.loads(line)
    text = json_error_text(info.value)
    assert not any(a == b == "at" for a, b in zip(text.split(), text.split()[1:])), text
    assert text.endswith(f"column {info.value.colno}")


def test_load_tasks_reports_the_bad_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "a\x02", "top": "t"}\n')
    with pytest.raises(TaskError, match=r"t\.jsonl:1: not valid JSON \(Invalid control character at column 10\)"):
        load_tasks(str(path))
