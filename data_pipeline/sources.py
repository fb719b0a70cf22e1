"""Read raw Verilog corpora and split them into modules, each with the modules it instantiates.

Sources (see :class:`data_pipeline.config.SourceConfig`):

* ``folder`` — ``.v``/``.sv`` files under a directory, read in sorted order;
* ``jsonl`` — one JSON object per line with the Verilog text in ``code_field``;
* ``hf`` — a ``datasets`` dataset: a folder written by ``save_to_disk``, a local data folder/file
  that ``load_dataset`` understands, or a Hub id (streamed).

Splitting uses the SystemVerilog front end of ``pyslang`` (a real parser, not regular
expressions): every ``module`` declaration becomes one :class:`ModuleRecord` whose ``code`` holds
its own text preceded by the transitive closure of the modules it instantiates (found in the same
file, or — for folder sources — anywhere in the folder). Modules that instantiate something that
cannot be found keep a ``missing`` list, so the filters can drop them with a clear reason.

Everything is a generator: a corpus is never held in memory.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import re
from collections.abc import Iterator

from .config import SourceConfig

logger = logging.getLogger(__name__)

_DEFINE_RE = re.compile(r"^[ \t]*`define[ \t]+([A-Za-z_][A-Za-z0-9_$]*)")


@dataclasses.dataclass
class ModuleSpan:
    """One module declaration found in one text."""

    name: str
    text: str
    instantiates: tuple[str, ...]
    ports: int = 0
    parse_error: str | None = None


@dataclasses.dataclass
class ModuleRecord:
    """A candidate task: a top module with the code of everything it needs."""

    key: str
    """Stable provenance key ``source/item:module`` (unique within a run)."""
    top: str
    code: str
    dependencies: list[str]
    missing: list[str]
    source: dict
    ports: int = 0
    own_lines: int = 0
    """Non-blank lines of the top module alone (without dependencies)."""
    parse_error: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModuleRecord:
        try:
            return cls(
                key=str(data["key"]),
                top=str(data["top"]),
                code=str(data["code"]),
                dependencies=list(data.get("dependencies") or []),
                missing=list(data.get("missing") or []),
                source=dict(data.get("source") or {}),
                ports=int(data.get("ports") or 0),
                own_lines=int(data.get("own_lines") or 0),
                parse_error=data.get("parse_error"),
            )
        except KeyError as exc:
            raise ValueError(f"module record lacks field {exc}; expected key, top, code") from exc


# --------------------------------------------------------------------------------------- parsing


def parse_modules(text: str) -> list[ModuleSpan]:
    """Every module declaration of ``text``, with the module types it instantiates (pyslang parser)."""
    import pyslang
    from pyslang import syntax

    # a private source manager per text: the default one keeps every buffer it ever saw (a leak of
    # about 2 KiB per module over a streamed corpus)
    source_manager = pyslang.SourceManager()  # kept referenced while the tree is used
    tree = syntax.SyntaxTree.fromText(text, source_manager)
    errors = [d for d in tree.diagnostics if d.isError()]
    defines = _defines(text)
    spans: list[ModuleSpan] = []
    root = tree.root
    # a text holding a single declaration parses to that declaration, not to a compilation unit
    members = list(root.members) if root.kind == syntax.SyntaxKind.CompilationUnit else [root]
    for member in members:
        if member.kind != syntax.SyntaxKind.ModuleDeclaration:
            continue
        rng = member.sourceRange
        start, end = rng.start.offset, rng.end.offset
        if rng.start.buffer != rng.end.buffer or not 0 <= start < end <= len(text):
            logger.debug("module %s spans macro buffers; skipped", member.header.name.valueText)
            continue
        name = member.header.name.valueText
        if not name:
            continue
        body = text[start:end]
        found: list[str] = []

        def visit(node, _found=found):
            if node.kind == syntax.SyntaxKind.HierarchyInstantiation:
                type_name = node.type.valueText
                if type_name and type_name not in _found:
                    _found.append(type_name)
            return True

        member.visit(visit)
        error = None
        for diag in errors:
            loc = diag.location
            if loc.buffer == rng.start.buffer and start <= loc.offset <= end:
                error = f"{diag.code} at offset {loc.offset - start}"
                break
        used = [m for m in defines if f"`{m}" in body]
        if used:  # keep the file's macro definitions the module relies on
            body = "".join(defines[m] for m in used) + body
        ports = member.header.ports
        n_ports = 0
        if ports is not None and hasattr(ports, "ports"):  # separated list: skip the comma tokens
            n_ports = sum(1 for p in ports.ports if isinstance(getattr(p, "kind", None), syntax.SyntaxKind))
        spans.append(ModuleSpan(name=name, text=body, instantiates=tuple(found), ports=n_ports, parse_error=error))
    return spans


def _defines(text: str) -> dict[str, str]:
    """`` `define `` directives of a file (with backslash continuations), by macro name."""
    out: dict[str, str] = {}
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        match = _DEFINE_RE.match(lines[i])
        if match:
            block = [lines[i]]
            while block[-1].rstrip("\r\n").endswith("\\") and i + 1 < len(lines):
                i += 1
                block.append(lines[i])
            chunk = "".join(block)
            out[match.group(1)] = chunk if chunk.endswith("\n") else chunk + "\n"
        i += 1
    return out


def assemble(top: str, local: dict[str, ModuleSpan], lookup=None) -> tuple[str, list[str], list[str]]:
    """Code of ``top`` preceded by its transitive dependencies (dependencies first).

    ``local`` maps module names of the same text; ``lookup(name)`` finds a module elsewhere (or ``None``).
    Returns ``(code, dependency_names, missing_names)``.
    """
    order: list[str] = []
    missing: list[str] = []
    resolved: dict[str, ModuleSpan] = {}
    visiting: set[str] = set()

    def find(name: str) -> ModuleSpan | None:
        if name in resolved:
            return resolved[name]
        span = local.get(name) or (lookup(name) if lookup else None)
        if span is not None:
            resolved[name] = span
        return span

    def walk(name: str) -> None:
        if name in order or name in visiting:
            return
        span = find(name)
        if span is None:
            if name not in missing:
                missing.append(name)
            return
        visiting.add(name)
        for dep in span.instantiates:
            walk(dep)
        visiting.discard(name)
        order.append(name)

    walk(top)
    code = "\n\n".join(resolved[name].text for name in order)
    deps = [name for name in order if name != top]
    return code + "\n", deps, missing


def split_text(text: str, *, source: dict, key_prefix: str, lookup=None) -> Iterator[ModuleRecord]:
    """Split one text into module records (one per module declaration)."""
    spans = parse_modules(text)
    local: dict[str, ModuleSpan] = {}
    for span in spans:
        local.setdefault(span.name, span)
    for span in spans:
        code, deps, missing = assemble(span.name, local, lookup)
        errors = [s.parse_error for s in [span, *(local.get(d) for d in deps)] if s is not None and s.parse_error]
        yield ModuleRecord(
            key=f"{key_prefix}:{span.name}",
            top=span.name,
            code=code,
            dependencies=deps,
            missing=missing,
            source=dict(source, module=span.name),
            ports=span.ports,
            own_lines=sum(1 for line in span.text.splitlines() if line.strip()),
            parse_error=errors[0] if errors else None,
        )


# --------------------------------------------------------------------------------------- sources


@dataclasses.dataclass
class SourceStats:
    """Counts of what a source skipped (bad rows never stop a run)."""

    items: int = 0
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def iter_modules(cfg: SourceConfig, stats: SourceStats | None = None) -> Iterator[ModuleRecord]:
    """All module records of one source, in a deterministic order."""
    stats = stats if stats is not None else SourceStats()
    if cfg.kind == "folder":
        yield from _iter_folder(cfg, stats)
    elif cfg.kind == "jsonl":
        yield from _iter_rows(cfg, _jsonl_rows(cfg, stats), stats)
    else:
        yield from _iter_rows(cfg, _hf_rows(cfg), stats)


def iter_all_modules(sources: list[SourceConfig], stats: dict[str, SourceStats] | None = None):
    """Module records of every source in order; ``stats`` (name → SourceStats) is filled in."""
    for cfg in sources:
        st = SourceStats()
        if stats is not None:
            stats[cfg.name] = st
        yield from iter_modules(cfg, st)


def _folder_files(cfg: SourceConfig) -> list[str]:
    import glob as globmod

    root = cfg.path
    if not os.path.isdir(root):
        raise FileNotFoundError(f"source {cfg.name!r}: folder {root!r} does not exist")
    patterns = [cfg.glob] + (["**/*.sv", "**/*.SV"] if cfg.include_sv else [])
    files: set[str] = set()
    for pattern in patterns:
        files.update(p for p in globmod.glob(os.path.join(root, pattern), recursive=True) if os.path.isfile(p))
    return sorted(files)


def _read_text(path: str, max_bytes: int) -> str | None:
    if os.path.getsize(path) > max_bytes:
        return None
    with open(path, "rb") as fh:
        return fh.read().decode("utf-8", errors="replace")


def _iter_folder(cfg: SourceConfig, stats: SourceStats) -> Iterator[ModuleRecord]:
    files = _folder_files(cfg)
    if not files:
        logger.warning("source %s: no Verilog files under %s", cfg.name, cfg.path)

    @functools.lru_cache(maxsize=64)
    def spans_of(path: str) -> dict[str, ModuleSpan]:
        text = _read_text(path, cfg.max_file_bytes)
        out: dict[str, ModuleSpan] = {}
        for span in parse_modules(text) if text else []:
            out.setdefault(span.name, span)
        return out

    index: dict[str, str] = {}
    if cfg.resolve_across_files:
        for path in files:  # first pass: module name → defining file (names only: small)
            try:
                for name in spans_of(path):
                    index.setdefault(name, path)
            except (OSError, UnicodeError) as exc:
                logger.debug("index pass: %s: %s", path, exc)

    def lookup(name: str) -> ModuleSpan | None:
        path = index.get(name)
        return spans_of(path).get(name) if path else None

    for path in files:
        stats.items += 1
        rel = os.path.relpath(path, cfg.path)
        try:
            text = _read_text(path, cfg.max_file_bytes)
        except OSError as exc:
            logger.warning("source %s: cannot read %s: %s", cfg.name, path, exc)
            stats.skip("unreadable_file")
            continue
        if text is None:
            stats.skip("file_too_large")
            continue
        source = {"name": cfg.name, "kind": "folder", "path": rel}
        try:
            records = list(split_text(text, source=source, key_prefix=f"{cfg.name}/{rel}",
                                      lookup=lookup if cfg.resolve_across_files else None))
        except Exception as exc:  # a front-end crash on one file must not stop the run
            logger.warning("source %s: cannot split %s: %s", cfg.name, rel, exc)
            stats.skip("split_error")
            continue
        if not records:
            stats.skip("no_module")
        yield from records


def _jsonl_rows(cfg: SourceConfig, stats: SourceStats) -> Iterator[tuple[int, dict | None]]:
    if not os.path.isfile(cfg.path):
        raise FileNotFoundError(f"source {cfg.name!r}: JSONL file {cfg.path!r} does not exist")
    with open(cfg.path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            yield lineno, row if isinstance(row, dict) else None


def _hf_rows(cfg: SourceConfig) -> Iterator[tuple[int, dict | None]]:
    import datasets

    path = cfg.path
    if os.path.isdir(path) and (
        os.path.isfile(os.path.join(path, "dataset_dict.json")) or os.path.isfile(os.path.join(path, "state.json"))
    ):
        ds = datasets.load_from_disk(path)
        if isinstance(ds, datasets.DatasetDict):
            if cfg.split not in ds:
                raise ValueError(f"source {cfg.name!r}: split {cfg.split!r} not in {list(ds)}")
            ds = ds[cfg.split]
    elif os.path.isfile(path):  # a single data file: pick the builder from its extension
        ext = path.rsplit(".", 1)[-1].lower()
        builder = {"parquet": "parquet", "json": "json", "jsonl": "json", "csv": "csv", "arrow": "arrow"}.get(ext)
        if builder is None:
            raise ValueError(f"source {cfg.name!r}: cannot read {path!r} as a dataset (use .parquet, .jsonl, "
                             f".json, .csv or .arrow, or kind: jsonl)")
        ds = datasets.load_dataset(builder, data_files=path, split="train", streaming=True)
    else:  # a local dataset folder (memory-mapped), or a Hub id (streamed unless `streaming: false`)
        ds = datasets.load_dataset(path, split=cfg.split, streaming=cfg.streaming and not os.path.exists(path))
    for i, row in enumerate(ds):
        yield i, row


def _iter_rows(cfg: SourceConfig, rows, stats: SourceStats) -> Iterator[ModuleRecord]:
    checked = False
    for index, row in rows:
        stats.items += 1
        if row is None:
            stats.skip("bad_json")
            continue
        if not checked and cfg.code_field not in row:
            raise ValueError(
                f"source {cfg.name!r}: rows have no column {cfg.code_field!r} (columns: {sorted(row)}); "
                f"set `code_field` in the source config"
            )
        checked = True
        text = row.get(cfg.code_field)
        if not isinstance(text, str) or not text.strip():
            stats.skip("empty_code")
            continue
        if len(text.encode("utf-8", errors="replace")) > cfg.max_file_bytes:
            stats.skip("file_too_large")
            continue
        item = str(row.get(cfg.path_field) or f"row{index}") if cfg.path_field else f"row{index}"
        source = {"name": cfg.name, "kind": cfg.kind, "path": item, "row": index}
        if cfg.license_field and row.get(cfg.license_field):
            source["license"] = str(row[cfg.license_field])
        try:
            records = list(split_text(text, source=source, key_prefix=f"{cfg.name}/{item}#{index}"))
        except Exception as exc:
            logger.warning("source %s: cannot split row %s: %s", cfg.name, index, exc)
            stats.skip("split_error")
            continue
        if not records:
            stats.skip("no_module")
        yield from records
