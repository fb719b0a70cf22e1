"""The Verilog task schema shared by every stage of verirl (see docs/architecture.md, "The task schema")."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from .errors import TaskError
from .lexer import is_plain_identifier

HARNESSES = ("verirl", "verilog-eval", "rtllm")
_FIELDS = ("id", "prompt", "top", "reference", "testbench", "harness", "tb_top", "files", "metadata")


@dataclasses.dataclass(frozen=True)
class Task:
    """One Verilog task. Only ``id``, ``prompt`` and ``top`` are required by the schema; scoring
    needs a ``testbench`` (simulation) or a ``reference`` (equivalence)."""

    id: str
    prompt: Any
    top: str
    reference: str | None = None
    testbench: str | None = None
    harness: str = "verirl"
    tb_top: str | None = None
    files: Mapping[str, str] = dataclasses.field(default_factory=dict)
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"task {self.id!r}"
        if not isinstance(self.id, str) or not self.id:
            raise TaskError(f"task id must be a non-empty string, got {self.id!r}")
        if not is_plain_identifier(self.top):
            raise TaskError(f"{where}: `top` must be a plain Verilog identifier (letters, digits, _), "
                            f"got {self.top!r}")
        if self.tb_top is not None and not is_plain_identifier(self.tb_top):
            raise TaskError(f"{where}: `tb_top` must be a plain Verilog identifier, got {self.tb_top!r}")
        if self.harness not in HARNESSES:
            raise TaskError(f"{where}: unknown harness {self.harness!r}; use one of {', '.join(HARNESSES)}")
        for name in ("reference", "testbench"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TaskError(f"{where}: `{name}` must be Verilog source text, got {type(value).__name__}")
            if value is not None:
                _check_text(value, f"{where}: `{name}`")
        for name, content in self.files.items():
            if not isinstance(name, str) or name.startswith("/") or ".." in name.split("/") or not name:
                raise TaskError(f"{where}: data file name {name!r} must be a relative path without '..'")
            if isinstance(content, str):
                _check_text(content, f"{where}: data file {name!r}")
            elif not isinstance(content, (bytes, bytearray)):
                raise TaskError(f"{where}: data file {name!r} must be text or bytes, got {type(content).__name__}")

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Task:
        """Build a task from a JSON object / dataset row; unknown keys go to ``metadata``."""
        if not isinstance(row, Mapping):
            raise TaskError(f"a task must be a JSON object, got {type(row).__name__}")
        missing = [k for k in ("id", "top") if row.get(k) in (None, "")]
        if missing:
            raise TaskError(f"task {row.get('id', '?')!r} is missing required field(s): {', '.join(missing)}")
        known = {k: row[k] for k in _FIELDS if k in row and row[k] is not None}
        extra = {k: v for k, v in row.items() if k not in _FIELDS}
        metadata = dict(known.pop("metadata", {}) or {})
        metadata.update(extra)
        known.setdefault("prompt", "")
        known["id"] = str(known["id"])
        known["files"] = dict(known.get("files") or {})
        return cls(metadata=metadata, **known)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["files"] = dict(self.files)
        out["metadata"] = dict(self.metadata)
        return out

    @property
    def fingerprint(self) -> str:
        """Content hash of everything that affects scoring (not the prompt or metadata)."""
        payload = json.dumps(
            [self.top, self.reference, self.testbench, self.harness, self.tb_top, sorted(self.files.items())],
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode("utf-8", errors="surrogatepass")).hexdigest()


def _check_text(text: str, where: str) -> None:
    """Task text must be writable as UTF-8: a lone surrogate would fail at the first tool run."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TaskError(f"{where} is not valid Unicode text ({exc.reason} at character {exc.start}); "
                        "fix the task file") from None


def json_error_text(exc: json.JSONDecodeError) -> str:
    """``exc``'s reason and column as one phrase (some of json's reasons already end in "at", e.g. "Unterminated
    string starting at")."""
    joiner = " column" if exc.msg.endswith(" at") else " at column"
    return f"{exc.msg}{joiner} {exc.colno}"


def iter_jsonl(path: str, error: type[Exception] = TaskError) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` from a JSONL file, streaming.

    A malformed line raises ``error`` naming the file and the line; blank lines are skipped.
    """
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{path}:{lineno}: not valid JSON ({json_error_text(exc)}); fix or delete that line") from None
            if not isinstance(obj, dict):
                raise error(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def load_tasks(path: str) -> dict[str, Task]:
    """Read a tasks JSONL file into ``{id: Task}``; errors name the file and line."""
    tasks: dict[str, Task] = {}
    for lineno, row in iter_jsonl(path):
        try:
            task = Task.from_dict(row)
        except TaskError as exc:
            raise TaskError(f"{path}:{lineno}: {exc}") from None
        if task.id in tasks:
            raise TaskError(f"{path}:{lineno}: duplicate task id {task.id!r}")
        tasks[task.id] = task
    return tasks
