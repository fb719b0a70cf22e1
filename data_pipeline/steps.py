"""The build's stages as standalone streaming steps over JSONL files of module records.

``split`` turns sources into module records (one JSON object per module: key, top, code,
dependencies, missing, source, ports, own_lines, parse_error); ``filter``, ``dedupe`` and
``decontaminate`` read records and write the kept ones, with dropped ones (and why) in a
``--drops`` file; ``roundtrip`` writes task rows. Every step streams its input, so memory does
not depend on the corpus size (the dedupe index aside), and writes its outputs atomically.
Use ``verirl data build`` for sharded, resumable runs; these steps are for inspecting and
re-running one stage.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from .config import BuildConfig, DecontaminationConfig, DedupeConfig, FilterConfig, SourceConfig
from .shards import atomic_open
from .sources import ModuleRecord, SourceStats, iter_all_modules

logger = logging.getLogger(__name__)


def read_records(path: str, counts: Counter) -> Iterator[ModuleRecord]:
    """Module records of a JSONL file; bad lines are counted (``bad_record``) and skipped."""
    for rec, _ in _read_lines(path, counts):
        yield rec


def _read_lines(path: str, counts: Counter) -> Iterator[tuple[ModuleRecord, dict]]:
    """(record, the line's whole object: fields a step added, such as ``figures``, included) of a JSONL file of
    module records; bad lines are counted (``bad_record``) and skipped."""
    from tqdm.auto import tqdm

    with open(path, encoding="utf-8", errors="replace") as fh:
        # progress on a terminal only (tqdm disables itself when stderr is not a TTY)
        for lineno, line in enumerate(tqdm(fh, desc=os.path.basename(path), unit="rec", disable=None), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                yield ModuleRecord.from_dict(data), data
            except (ValueError, TypeError, AttributeError) as exc:
                logger.warning("%s:%d: skipped: %s", path, lineno, exc)
                counts["bad_record"] += 1


class _Writers:
    def __init__(self, out: str, drops: str | None):
        self._stack = contextlib.ExitStack()
        self.out = self._stack.enter_context(atomic_open(out))
        self.drops = self._stack.enter_context(atomic_open(drops)) if drops else None

    def keep(self, row: dict) -> None:
        self.out.write(json.dumps(row, ensure_ascii=False) + "\n")

    def drop(self, rec: ModuleRecord, reason: str, detail: str) -> None:
        if self.drops is not None:
            self.drops.write(json.dumps({"key": rec.key, "top": rec.top, "reason": reason,
                                         "detail": detail[:1000]}, ensure_ascii=False) + "\n")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)


def split(sources: list[SourceConfig], out: str, max_modules: int = 0) -> dict:
    stats: dict[str, SourceStats] = {}
    counts: Counter = Counter()
    stream = iter_all_modules(sources, stats)
    if max_modules:
        stream = itertools.islice(stream, max_modules)
    from tqdm.auto import tqdm

    with _Writers(out, None) as w:
        for rec in tqdm(stream, desc="split", unit="mod", disable=None):
            w.keep(rec.to_dict())
            counts["modules"] += 1
    return {**counts, "sources": {k: {"items": v.items, "skipped": v.skipped} for k, v in stats.items()}}


def filter_records(inp: str, out: str, drops: str | None, cfg: FilterConfig, workers: int = 2) -> dict:
    from .filters import check_module, require_tools

    require_tools(cfg)
    counts: Counter = Counter()
    records = read_records(inp, counts)
    with _Writers(out, drops) as w, ThreadPoolExecutor(max_workers=workers) as pool:
        while True:
            chunk = list(itertools.islice(records, 8 * workers))
            if not chunk:
                break
            for rec, res in zip(chunk, pool.map(lambda r: check_module(r, cfg), chunk)):
                counts["in"] += 1
                if res.ok:
                    w.keep(dict(rec.to_dict(), figures=res.figures))
                    counts["kept"] += 1
                else:
                    w.drop(rec, res.reason or "filter", res.detail)
                    counts[f"drop:{res.reason}"] += 1
    return dict(counts)


def _filter_stream(inp: str, out: str, drops: str | None, verdict, counts: Counter | None = None) -> dict:
    """Stream the records of ``inp``; keep those ``verdict`` returns None for, drop the others with its
    ``(reason, detail)``."""
    counts = Counter() if counts is None else counts
    with _Writers(out, drops) as w:
        for rec, data in _read_lines(inp, counts):
            counts["in"] += 1
            dropped = verdict(rec)
            if dropped is None:
                w.keep(data)  # as read: what earlier steps added (the filter's figures) travels on
                counts["kept"] += 1
            else:
                w.drop(rec, *dropped)
                counts[f"drop:{dropped[0]}"] += 1
    return dict(counts)


def dedupe_records(inp: str, out: str, drops: str | None, cfg: DedupeConfig, seed: int = 0) -> dict:
    from .dedupe import Deduplicator

    dd = Deduplicator(cfg, seed=seed + 1)
    return _filter_stream(inp, out, drops, lambda rec: dd.exact_drop(rec.key, rec.code)
                          or dd.near_drop(rec.key, rec.code))


def decontaminate_records(inp: str, out: str, drops: str | None, cfg: DecontaminationConfig) -> dict:
    from .decontaminate import Decontaminator

    decon = Decontaminator(cfg)
    counts: Counter = Counter({"benchmark_problems": len(decon.problems)})
    return _filter_stream(inp, out, drops, lambda rec: decon.code_drop(rec.code), counts)


def read_filtered(path: str, counts: Counter) -> Iterator[tuple[ModuleRecord, dict | None]]:
    """Module records of a ``filter`` step's output with the synthesis figures it stored (None without)."""
    for rec, data in _read_lines(path, counts):
        figures = data.get("figures")
        yield rec, figures if isinstance(figures, dict) else None


def roundtrip_records(inp: str, out: str, drops: str | None, cfg: BuildConfig, *, backend=None,
                      batch_size: int = 32) -> dict:
    """Round-trip module records (already filtered) into task rows (:func:`data_pipeline.task_rows.task_row`, as
    ``verirl data build`` writes them)."""
    from rewards.interface import extract_interface

    from .config import require_decontamination
    from .dedupe import exact_hash
    from .filters import code_lines
    from .llm import make_backend
    from .roundtrip import RoundTrip, RoundTripItem
    from .task_rows import TaskIds, normalize_interface, roundtrip_metadata, task_row

    if not cfg.roundtrip.enabled or cfg.roundtrip.llm is None:
        raise ValueError("roundtrip step: the recipe needs `roundtrip: {enabled: true, llm: {...}}`")
    require_decontamination(cfg)
    backend = backend or make_backend(cfg.roundtrip.llm)
    decon = None
    if cfg.decontaminate.enabled:
        from .decontaminate import Decontaminator

        decon = Decontaminator(cfg.decontaminate)
    rt = RoundTrip(cfg.roundtrip, backend, decontaminator=decon, seed=cfg.seed, workers=cfg.workers)
    model = backend.describe().get("model")
    ids = TaskIds(cfg.id_prefix)
    counts: Counter = Counter()
    records = read_filtered(inp, counts)
    with _Writers(out, drops) as w:
        for batch_index in itertools.count():
            chunk = list(itertools.islice(records, batch_size))
            if not chunk:
                break
            items, kept = [], []
            for rec, figures in chunk:
                counts["in"] += 1
                try:
                    iface = normalize_interface(extract_interface(rec.code, rec.top).to_dict(), rec.string_parameters)
                except Exception as exc:
                    w.drop(rec, "interface_error", f"{type(exc).__name__}: {exc}")
                    counts["drop:interface_error"] += 1
                    continue
                items.append(RoundTripItem(rec.key, rec.top, rec.code, iface))
                kept.append((rec, figures))
            for (rec, figures), item, res in zip(kept, items, rt.run(items, seed_offset=batch_index * 7919)):
                if not res.ok:
                    w.drop(rec, res.reason or "roundtrip", res.detail)
                    counts[f"drop:{res.reason}"] += 1
                    continue
                w.keep(task_row(rec, ident=ids.assign(rec, exact_hash(rec.code)), interface=item.interface,
                                lines=code_lines(rec.code), figures=figures,
                                prompt=rt.task_prompt(item, res.description), description=res.description,
                                roundtrip=roundtrip_metadata(model, res)))
                counts["kept"] += 1
    return dict(counts)
