"""Read raw Verilog corpora and turn every module into a self-contained candidate task.

Sources (see :class:`data_pipeline.config.SourceConfig`):

* ``folder`` — ``.v``/``.sv`` files under a directory (:mod:`data_pipeline.folders`: real paths,
  each folder visited once, so a symlink loop cannot hang the run);
* ``jsonl`` — one JSON object per line with the Verilog text in ``code_field``;
* ``hf`` — a ``datasets`` dataset: a folder written by ``save_to_disk``, a local data folder/file
  that ``load_dataset`` understands, or a Hub id (streamed).

Every text is decoded to UTF-8 (:mod:`data_pipeline.text`) and split by the ``pyslang`` front end
with the source's include directories, defines and language (:mod:`data_pipeline.verilog`). A
module's record holds its ``code``: the packages and modules it needs, dependencies first, each
preceded by the macro definitions it uses, then the module itself. A dependency is resolved the
way the source's own build would find it: the module's own file, then the nearest definition in
the folder tree (same folder first; two equally near definitions are ambiguous, never guessed),
then the source's vendor stub library. Names instantiated only inside a generate ``if``/``case``
that nothing defines (vendor primitives of another target) are ``optional_missing``: the compile
step decides whether the branch is used.

Everything is a generator: a corpus is never held in memory; a folder source keeps an index of
module names to files (names and paths only).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import re
from collections.abc import Callable, Iterator

from .config import SourceConfig
from .folders import Ambiguous, NearestIndex, walk_files
from .licenses import LicenseFinder, spdx_tag
from .text import decode_source, significant_lines
from .verilog import DesignUnit, ParseSettings, parse_file

logger = logging.getLogger(__name__)

_REDEFINES = re.compile(r"^[ \t]*`(?:define|undef)[ \t]+([A-Za-z_][A-Za-z0-9_$]*)", re.MULTILINE)


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
    """Lines with code (not comments or blank) of the top module alone (without dependencies)."""
    parse_error: str | None = None
    optional_missing: list[str] = dataclasses.field(default_factory=list)
    """Undefined names instantiated only inside generate if/case branches (e.g. vendor primitives)."""
    conflicts: list[str] = dataclasses.field(default_factory=list)
    """Names that two dependencies resolve to different definitions of."""
    dependency_paths: list[str] = dataclasses.field(default_factory=list)
    """Where each of ``dependencies`` was found (same order; ``stub:<file>`` for the stub library)."""
    formal: bool = False
    testbench: bool = False
    string_parameters: dict = dataclasses.field(default_factory=dict)
    language: str = "sv"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModuleRecord:
        try:
            fields = {f.name for f in dataclasses.fields(cls)}
            values = {k: v for k, v in data.items() if k in fields}
            for name in ("key", "top", "code"):
                values[name] = str(data[name])
            for name in ("dependencies", "missing", "optional_missing", "conflicts", "dependency_paths"):
                values[name] = list(data.get(name) or [])
            values["source"] = dict(data.get("source") or {})
            values["string_parameters"] = dict(data.get("string_parameters") or {})
            values["ports"] = int(data.get("ports") or 0)
            values["own_lines"] = int(data.get("own_lines") or 0)
            return cls(**values)
        except KeyError as exc:
            raise ValueError(f"module record lacks field {exc}; expected key, top, code") from exc

    @property
    def content_hash(self) -> str:
        """Digest of everything that determines this record's task (resume detects edited sources)."""
        import hashlib

        payload = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(payload.encode("utf-8", errors="surrogatepass")).hexdigest()


def parse_settings(cfg: SourceConfig) -> ParseSettings:
    return ParseSettings(include_dirs=tuple(cfg.resolve_path(d) for d in cfg.include_dirs),
                         root=os.path.realpath(cfg.path) if cfg.kind == "folder" else "",
                         defines=tuple(cfg.defines.items()), language=cfg.language,
                         expand_macros=cfg.expand_macros)


# --------------------------------------------------------------------------------------- resolution


#: ``find(name, namespace, from_file) -> (where, unit) | None``; namespace "unit" or "package"
Finder = Callable[[str, str, str], "tuple[str, DesignUnit] | None"]


def assemble(top: DesignUnit, where: str, find: Finder) -> dict:
    """The code of ``top`` preceded by its transitive dependencies (packages and modules first).

    Returns ``code``, ``dependencies`` (names, in code order), ``dependency_paths``, ``missing``,
    ``optional_missing`` and ``conflicts``.
    """
    chosen: dict[tuple[str, str], str] = {("unit", top.name): where}
    order: list[tuple[str, DesignUnit, str]] = []
    missing: list[str] = []
    optional: list[str] = []
    conflicts: list[str] = []

    def walk(unit: DesignUnit, at: str, depth: int) -> None:
        if depth > 64:
            conflicts.append(f"{unit.name}: dependency chain deeper than 64")
            return
        deps = [(p, False, "package") for p in unit.packages] + [(n, c, "unit") for n, c in unit.instances]
        for name, conditional, namespace in deps:
            key = (namespace, name)
            try:
                found = find(name, namespace, at)
            except Ambiguous as exc:
                if key not in chosen:
                    missing.append(f"{name} ({exc})")
                    chosen[key] = ""
                continue
            if key in chosen:  # one definition per name in a closure: another one here is a conflict
                if found is not None and chosen[key] and found[0] != chosen[key]:
                    conflicts.append(f"{name}: {chosen[key]} and {found[0]}")
                continue
            if found is None:
                (optional if conditional else missing).append(name)
                chosen[key] = ""
                continue
            dep_where, dep = found
            chosen[key] = dep_where
            walk(dep, dep_where, depth + 1)
            order.append((name, dep, dep_where))

    walk(top, where, 0)
    units = [dep for _, dep, _ in order] + [top]
    return {"code": _join(units), "dependencies": [n for n, _, _ in order],
            "dependency_paths": [w for _, _, w in order], "missing": missing, "optional_missing": optional,
            "conflicts": conflicts}


def _join(units: list[DesignUnit]) -> str:
    """Units in order, each preceded by the macro definitions it needs that are not yet in effect."""
    emitted: dict[str, str] = {}
    parts = []
    for unit in units:
        prelude = []
        for name, text in unit.macros:
            if emitted.get(name) != text:
                if name in emitted:
                    prelude.append(f"`undef {name}\n")
                prelude.append(text)
                emitted[name] = text
        parts.append("".join(prelude) + unit.text.strip("\n") + "\n")
        for name in _REDEFINES.findall(unit.text):  # the unit changed a macro itself: state unknown
            emitted[name] = "\0changed"
    return "\n".join(parts)


def _units_by_name(units: list[DesignUnit]) -> tuple[dict[str, DesignUnit], dict[str, DesignUnit], int]:
    """Design units (modules, interfaces, primitives) and packages by name; the first definition wins."""
    design: dict[str, DesignUnit] = {}
    packages: dict[str, DesignUnit] = {}
    duplicates = 0
    for unit in units:
        table = packages if unit.kind == "package" else design
        if unit.name in table:
            duplicates += 1
            continue
        table[unit.name] = unit
    return design, packages, duplicates


#: separates a parameter variant's label from its module's key: ``src/f.v:fifo@param:DEPTH=32``
VARIANT_MARK = "@param:"


def variant_family(key: str) -> str:
    """The key of the module a (possibly variant) record was made from."""
    return key.split(VARIANT_MARK, 1)[0]


def _records(unit: DesignUnit, where: str, find: Finder, *, key_prefix: str, source: dict,
             variants: int = 0) -> Iterator[ModuleRecord]:
    """The module's record, then up to ``variants`` parameter variants whose ports differ from it."""
    base = _record(unit, where, find, key_prefix=key_prefix, source=source)
    yield base
    if variants <= 0 or not unit.integer_parameters or base.parse_error or base.missing or base.conflicts:
        return
    from rewards.interface import extract_interface

    def ports(code: str):
        try:
            return [(p.name, p.direction, p.width) for p in extract_interface(code, unit.name).ports]
        except Exception:  # noqa: BLE001 - a variant the front end cannot elaborate is no task
            return None

    base_ports = ports(base.code)
    made = 0
    for name, value, _, _ in unit.integer_parameters:
        for new in (value * 2, value // 2):
            if made >= variants or base_ports is None:
                return
            if new < 1 or new == value or new > 4096:
                continue
            label = f"{name}={new}"
            rec = _record(unit.with_parameter(name, new), where, find, key_prefix=key_prefix, source=source,
                          variant=label)
            found = ports(rec.code)
            if found is None or found == base_ports:
                continue  # the parameter does not change the interface: not a different task
            made += 1
            yield rec


def _record(unit: DesignUnit, where: str, find: Finder, *, key_prefix: str, source: dict,
            variant: str = "") -> ModuleRecord:
    parts = assemble(unit, where, find)
    extra = {"variant": variant} if variant else {}
    return ModuleRecord(
        key=f"{key_prefix}:{unit.name}" + (VARIANT_MARK + variant if variant else ""),
        top=unit.name,
        code=parts["code"],
        dependencies=parts["dependencies"],
        missing=parts["missing"],
        source=dict(source, module=unit.name, line=unit.line, **extra),
        ports=unit.ports,
        own_lines=significant_lines(unit.text),
        parse_error=unit.parse_error,
        optional_missing=parts["optional_missing"],
        conflicts=parts["conflicts"],
        dependency_paths=parts["dependency_paths"],
        formal=unit.formal,
        testbench=unit.testbench,
        string_parameters=dict(unit.string_parameters),
        language=unit.language,
    )


def split_text(text: str, *, source: dict, key_prefix: str, settings: ParseSettings | None = None,
               path: str = "source.v", stubs: StubLibrary | None = None, variants: int = 0) -> Iterator[ModuleRecord]:
    """Split one text (a JSONL row, a dataset row) into module records; dependencies within the text."""
    units = parse_file(text, path, settings or ParseSettings(), display=source.get("path") or path,
                       local_includes=False)
    design, packages, _ = _units_by_name(units)

    def find(name: str, namespace: str, at: str):
        table = packages if namespace == "package" else design
        if name in table:
            return at, table[name]
        return stubs.find(name, namespace) if stubs is not None else None

    for unit in design.values():
        if unit.kind == "module":
            yield from _records(unit, path, find, key_prefix=key_prefix, source=source, variants=variants)


class StubLibrary:
    """The source's vendor primitive library: modules used only when the source lacks a name."""

    def __init__(self, cfg: SourceConfig, settings: ParseSettings):
        self._design: dict[str, tuple[str, DesignUnit]] = {}
        self._packages: dict[str, tuple[str, DesignUnit]] = {}
        for entry in cfg.stubs:
            path = cfg.resolve_path(entry)
            if os.path.isdir(path):
                files = [real for _, real in walk_files(path, ["**/*.[vV]", "**/*.sv", "**/*.SV"])]
            else:
                files = [path]
            for file in files:
                with open(file, "rb") as fh:
                    text, _ = decode_source(fh.read())
                label = f"stub:{os.path.basename(file)}"
                for unit in parse_file(text, file, settings):
                    table = self._packages if unit.kind == "package" else self._design
                    if unit.parse_error:
                        logger.warning("source %s: stub %s in %s does not parse: %s", cfg.name, unit.name, file,
                                       unit.parse_error)
                    table.setdefault(unit.name, (label, unit))

    def find(self, name: str, namespace: str) -> tuple[str, DesignUnit] | None:
        return (self._packages if namespace == "package" else self._design).get(name)

    def __len__(self) -> int:
        return len(self._design) + len(self._packages)


# --------------------------------------------------------------------------------------- sources


@dataclasses.dataclass
class SourceStats:
    """Counts of what a source skipped (bad rows never stop a run)."""

    items: int = 0
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n


def iter_modules(cfg: SourceConfig, stats: SourceStats | None = None) -> Iterator[ModuleRecord]:
    """All module records of one source, in a deterministic order."""
    stats = stats if stats is not None else SourceStats()
    cfg.check_paths()
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


def _read_text(path: str, max_bytes: int) -> tuple[str, str] | None:
    if os.path.getsize(path) > max_bytes:
        return None
    with open(path, "rb") as fh:
        return decode_source(fh.read())


def _iter_folder(cfg: SourceConfig, stats: SourceStats) -> Iterator[ModuleRecord]:
    patterns = [cfg.glob] + (["**/*.sv", "**/*.SV"] if cfg.include_sv else [])
    files = walk_files(cfg.path, patterns, on_skip=stats.skip, exclude=cfg.exclude)
    if not files:
        logger.warning("source %s: no Verilog files under %s", cfg.name, cfg.path)
    settings = parse_settings(cfg)
    stubs = StubLibrary(cfg, settings) if cfg.stubs else None
    licenses = LicenseFinder(cfg.path)
    real_of = dict(files)

    @functools.lru_cache(maxsize=64)
    def units_of(rel: str) -> tuple[dict[str, DesignUnit], dict[str, DesignUnit], int]:
        read = _read_text(real_of[rel], cfg.max_file_bytes)
        if read is None:
            return {}, {}, 0
        return _units_by_name(parse_file(read[0], real_of[rel], settings, display=rel))

    index = NearestIndex([os.path.relpath(os.path.realpath(d), settings.root) for d in settings.include_dirs])
    if cfg.resolve_across_files:
        for rel, real in files:  # first pass: unit name → defining files (names and paths only: small)
            try:
                read = _read_text(real, cfg.max_file_bytes)
                units = parse_file(read[0], real, settings, display=rel, names_only=True) if read else []
            except (OSError, UnicodeError) as exc:
                logger.debug("index pass: %s: %s", rel, exc)
                continue
            for unit in units:
                index.add("package" if unit.kind == "package" else "unit", unit.name, rel)

    def find(name: str, namespace: str, at: str):
        design, packages, _ = units_of(at) if at in real_of else ({}, {}, 0)
        table = packages if namespace == "package" else design
        if name in table:
            return at, table[name]
        if cfg.resolve_across_files:
            rel = index.nearest(namespace, name, at)  # raises Ambiguous
            if rel is not None:
                design, packages, _ = units_of(rel)
                unit = (packages if namespace == "package" else design).get(name)
                if unit is not None:
                    return rel, unit
        return stubs.find(name, namespace) if stubs is not None else None

    for rel, real in files:
        stats.items += 1
        try:
            read = _read_text(real, cfg.max_file_bytes)
        except OSError as exc:
            logger.warning("source %s: cannot read %s: %s", cfg.name, rel, exc)
            stats.skip("unreadable_file")
            continue
        if read is None:
            stats.skip("file_too_large")
            continue
        text, encoding = read
        license_ = spdx_tag(text) or cfg.license or licenses.for_file(real)
        source = {"name": cfg.name, "kind": "folder", "path": rel, "license": license_}
        if encoding != "utf-8":
            source["encoding"] = encoding
        try:
            design, _, duplicates = units_of(rel)
            records = [rec for unit in design.values() if unit.kind == "module"
                       for rec in _records(unit, rel, find, key_prefix=f"{cfg.name}/{rel}", source=source,
                                           variants=cfg.parameter_variants)]
        except Exception as exc:  # noqa: BLE001 - a front-end crash on one file must not stop the run
            logger.warning("source %s: cannot split %s: %s", cfg.name, rel, exc)
            stats.skip("split_error")
            continue
        if duplicates:
            stats.skip("duplicate_definition_in_file", duplicates)
        if not records:
            stats.skip("no_module")
        yield from records


def _jsonl_rows(cfg: SourceConfig, stats: SourceStats) -> Iterator[tuple[int, dict | None]]:
    with open(cfg.path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            line, _ = decode_source(raw)
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
    yield from enumerate(ds)


def _iter_rows(cfg: SourceConfig, rows, stats: SourceStats) -> Iterator[ModuleRecord]:
    checked = False
    settings = parse_settings(cfg)
    stubs = StubLibrary(cfg, settings) if cfg.stubs else None
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
        if isinstance(text, bytes):
            text = decode_source(text)[0]
        if not isinstance(text, str) or not text.strip():
            stats.skip("empty_code")
            continue
        if len(text.encode("utf-8", errors="replace")) > cfg.max_file_bytes:
            stats.skip("file_too_large")
            continue
        text = decode_source(text.encode("utf-8", errors="surrogatepass"))[0]
        item = str(row.get(cfg.path_field) or f"row{index}") if cfg.path_field else f"row{index}"
        license_ = spdx_tag(text) or (str(row[cfg.license_field]) if cfg.license_field and row.get(cfg.license_field)
                                      else None) or cfg.license or None
        source = {"name": cfg.name, "kind": cfg.kind, "path": item, "row": index, "license": license_}
        try:
            records = list(split_text(text, source=source, key_prefix=f"{cfg.name}/{item}#{index}",
                                      settings=settings, path=item if item.endswith((".sv", ".svh")) else
                                      (item if item.endswith(".v") else "row.v"), stubs=stubs,
                                      variants=cfg.parameter_variants))
        except Exception as exc:  # noqa: BLE001 - one bad row must not stop the run
            logger.warning("source %s: cannot split row %s: %s", cfg.name, index, exc)
            stats.skip("split_error")
            continue
        if not records:
            stats.skip("no_module")
        yield from records
