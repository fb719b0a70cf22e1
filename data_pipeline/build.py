"""`verirl data build`: sources → filters → dedupe → decontamination → round trip → tasks.

The corpus is streamed in shards of ``shard_size`` modules (see :mod:`data_pipeline.shards`):

1. split (``sources``), structural limits (``filters.structural_check``);
2. exact dedupe (normalized text; first occurrence in corpus order wins);
3. compile and synthesize (parallel sandboxed tool runs);
4. near dedupe (MinHash LSH) and code decontamination (n-gram overlap with benchmarks);
5. interface extraction (``rewards.interface``), then the NL round trip when enabled;
6. task rows in the schema of ``rewards.task.Task`` written to the shard.

Stateful stages (dedupe) run in corpus order after the parallel ones, so the result does not
depend on ``workers``; each shard stores its dedupe contribution, and a resumed run reloads it
before continuing. When every shard is done, the committed shards are assembled into
``<dataset_name>.jsonl`` / ``.parquet`` (streamed, row group by row group), ``drops.jsonl``
and ``manifest.json`` (counts after every stage, drop reasons, tool versions, seed, config).
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import itertools
import json
import logging
import os
import shutil
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from .config import BuildConfig, to_dict
from .dedupe import Deduplicator, exact_hash
from .filters import require_tools, structural_check, tool_check
from .shards import ShardStore, atomic_open, read_jsonl, write_json, write_jsonl
from .sources import ModuleRecord, SourceStats, iter_all_modules

logger = logging.getLogger(__name__)

#: pipeline stages in order; `counts[stage]` is the number of modules left after it
STAGES = ("split", "structure", "exact_dedupe", "tools", "near_dedupe", "decontaminate", "interface",
          "roundtrip", "tasks")
#: config keys that may change between a run and its resume (they do not change the rows)
_RESUME_FREE = ("workers", "max_modules", "formats", "output_dir")


class ResumeMismatch(ValueError):
    """The output directory holds a run made with a different configuration."""


def task_features():
    """`datasets.Features` of the task rows (the schema of rewards.task.Task plus typed metadata)."""
    from datasets import Features, List, Value

    port = {"name": Value("string"), "direction": Value("string"), "width": Value("int64"),
            "signed": Value("bool"), "packed": Value("bool")}
    interface = {
        "name": Value("string"), "kind": Value("string"), "ports": List(port),
        "parameters": List({"name": Value("string"), "value": Value("string"), "local": Value("bool")}),
        "clocks": List({"name": Value("string"), "edge": Value("string")}),
        "resets": List({"name": Value("string"), "polarity": Value("string"), "kind": Value("string")}),
        "internal_clocks": List(Value("string")),
    }
    metadata = {
        "provenance": {"source": Value("string"), "kind": Value("string"), "path": Value("string"),
                       "row": Value("int64"), "license": Value("string"), "key": Value("string"),
                       "dependencies": List(Value("string"))},
        "interface": interface,
        "description": Value("string"),
        "roundtrip": {"model": Value("string"), "method": Value("string"), "attempts": Value("int64"),
                      "equivalent_attempt": Value("int64")},
        "difficulty": {"pass_rate": Value("float64"), "samples": Value("int64"), "model": Value("string")},
        "stats": {"lines": Value("int64"), "ports": Value("int64"), "cells": Value("int64"),
                  "area": Value("float64"), "depth": Value("int64")},
    }
    return Features({"id": Value("string"), "prompt": Value("string"), "top": Value("string"),
                     "reference": Value("string"), "testbench": Value("string"), "harness": Value("string"),
                     "metadata": metadata})


def normalize_interface(iface: dict) -> dict:
    """Keep the interface fields of the declared schema (robust to extra keys)."""
    return {
        "name": str(iface.get("name", "")),
        "kind": str(iface.get("kind", "")),
        "ports": [{"name": str(p["name"]), "direction": str(p["direction"]), "width": int(p.get("width", 1)),
                   "signed": bool(p.get("signed", False)), "packed": bool(p.get("packed", True))}
                  for p in iface.get("ports", [])],
        "parameters": [{"name": str(p["name"]), "value": str(p.get("value", "")), "local": bool(p.get("local"))}
                       for p in iface.get("parameters", [])],
        "clocks": [{"name": str(c["name"]), "edge": str(c.get("edge", ""))} for c in iface.get("clocks", [])],
        "resets": [{"name": str(r["name"]), "polarity": str(r.get("polarity", "")), "kind": str(r.get("kind", ""))}
                   for r in iface.get("resets", [])],
        "internal_clocks": [str(x) for x in iface.get("internal_clocks", [])],
    }


@dataclasses.dataclass
class _Item:
    rec: ModuleRecord
    digest: str = ""
    figures: dict | None = None
    lines: int = 0
    interface: dict | None = None


class Builder:
    """One build run over an output directory (resumable)."""

    def __init__(self, cfg: BuildConfig, *, backend=None, restart: bool = False, progress: bool | None = None):
        cfg.validate_for_run()
        self.cfg = cfg
        self.progress = progress
        self.out = cfg.output_dir
        if restart and os.path.isdir(self.out) and os.listdir(self.out):
            if not os.path.isfile(os.path.join(self.out, "run.json")):
                raise ValueError(f"--restart would delete {self.out}, which does not hold a data build "
                                 f"(no run.json); choose an empty or new output_dir")
            shutil.rmtree(self.out)
        os.makedirs(self.out, exist_ok=True)
        self._check_resume()
        self.store = ShardStore(self.out)
        self.tools = require_tools(cfg.filters)
        if cfg.roundtrip.enabled:  # the equivalence checker simulates and proves: fail now, not on every row
            from rewards.toolchain import find_tool

            for tool in ("iverilog", "vvp", "yosys"):
                self.tools[tool] = find_tool(tool)
        self.dedupe = Deduplicator(cfg.dedupe, seed=cfg.seed + 1)
        self.decon = None
        if cfg.decontaminate.enabled:
            from .decontaminate import Decontaminator

            self.decon = Decontaminator(cfg.decontaminate)
        self._backend = backend
        self.roundtrip = None
        self.source_stats: dict[str, SourceStats] = {}

    # -- setup --------------------------------------------------------------------------------

    def _comparable_config(self) -> dict:
        data = to_dict(self.cfg)
        return {k: v for k, v in data.items() if k not in _RESUME_FREE}

    def _check_resume(self) -> None:
        path = os.path.join(self.out, "run.json")
        current = json.loads(json.dumps(self._comparable_config(), default=str))
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                previous = json.load(fh).get("config")
            if previous != current:
                changed = sorted(k for k in set(previous or {}) | set(current)
                                 if (previous or {}).get(k) != current.get(k))
                raise ResumeMismatch(
                    f"{self.out} holds a run made with a different configuration (changed: {changed}); "
                    f"use another output_dir, or --restart to discard it"
                )
        else:
            write_json(path, {"config": current, "started": _now()})

    def _ensure_roundtrip(self):
        if self.roundtrip is None and self.cfg.roundtrip.enabled:
            from .llm import make_backend
            from .roundtrip import RoundTrip

            backend = self._backend or make_backend(self.cfg.roundtrip.llm)
            self._backend = backend
            self.roundtrip = RoundTrip(self.cfg.roundtrip, backend, decontaminator=self.decon,
                                       seed=self.cfg.seed, workers=self.cfg.workers)
        return self.roundtrip

    # -- run ----------------------------------------------------------------------------------

    def run(self) -> dict:
        """Process every shard not yet committed, then assemble the dataset; returns the manifest."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        start = time.monotonic()
        stream = iter_all_modules(cfg.sources, self.source_stats)
        if cfg.max_modules:
            stream = itertools.islice(stream, cfg.max_modules)
        bar = tqdm(desc="modules", unit="mod", disable=None if self.progress is None else not self.progress)
        index = done = 0
        redo = False  # once a committed shard is redone, later ones saw another dedupe state: redo them too
        try:
            while True:
                chunk = list(itertools.islice(stream, cfg.shard_size))
                if not chunk:
                    break
                if not redo and self.store.is_done(index):
                    record = self.store.record(index)
                    if record.get("modules") == len(chunk) and record.get("last_key") == chunk[-1].key:
                        self.dedupe.load_delta(self.store.read_state(index))
                        done += 1
                        bar.update(len(chunk))
                        index += 1
                        continue
                    # a shorter final shard of an earlier run (max_modules raised) or a changed corpus
                    logger.warning("shard %d was committed with other modules (%s modules, last %s); redoing it",
                                   index, record.get("modules"), record.get("last_key"))
                    redo = True
                self._process_shard(index, chunk)
                bar.update(len(chunk))
                index += 1
        finally:
            bar.close()
            if self.roundtrip is not None:
                self.roundtrip.close()
        logger.info("%d shards (%d resumed from a previous run)", index, done)
        return self.finalize(index, time.monotonic() - start)

    def _process_shard(self, index: int, chunk: list[ModuleRecord]) -> None:
        cfg = self.cfg
        if self.store.is_done(index):  # redone: withdraw the old commit before its files are replaced
            os.unlink(self.store.path(index, "json"))
        t0 = time.monotonic()
        counts = Counter({"split": len(chunk)})
        drops: list[dict] = []
        timings: Counter = Counter()

        def drop(item: _Item, stage: str, reason: str, detail: str = "") -> None:
            drops.append({"key": item.rec.key, "top": item.rec.top, "source": item.rec.source.get("name"),
                          "stage": stage, "reason": reason, "detail": detail[:1000]})

        items: list[_Item] = []
        for rec in chunk:
            item = _Item(rec)
            res = structural_check(rec, cfg.filters)
            item.lines = res.lines
            if res.ok:
                items.append(item)
            else:
                drop(item, "structure", res.reason or "structure", res.detail)
        counts["structure"] = len(items)

        kept = []
        for item in items:
            item.digest = exact_hash(item.rec.code)
            first = self.dedupe.exact_duplicate(item.rec.key, item.rec.code)
            if first is None:
                kept.append(item)
            else:
                drop(item, "exact_dedupe", "exact_duplicate", f"same normalized text as {first}")
        items = kept
        counts["exact_dedupe"] = len(items)

        t = time.monotonic()
        with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
            results = list(pool.map(lambda it: tool_check(it.rec, cfg.filters), items))
        timings["tools"] = time.monotonic() - t
        kept = []
        for item, res in zip(items, results):
            if res.ok:
                item.figures = res.figures
                kept.append(item)
            else:
                drop(item, "tools", res.reason or "tools", res.detail)
        items = kept
        counts["tools"] = len(items)

        kept = []
        for item in items:
            near = self.dedupe.near_duplicate(item.rec.key, item.rec.code)
            if near is None:
                kept.append(item)
            else:
                drop(item, "near_dedupe", "near_duplicate", f"similar to {near[0]} (Jaccard ≈ {near[1]:.2f})")
        items = kept
        counts["near_dedupe"] = len(items)

        if self.decon is not None:
            kept = []
            for item in items:
                match = self.decon.check_code(item.rec.code)
                if match is None:
                    kept.append(item)
                else:
                    drop(item, "decontaminate", "contaminated", match.describe())
            items = kept
        counts["decontaminate"] = len(items)

        from rewards.interface import extract_interface

        kept = []
        for item in items:
            try:
                item.interface = normalize_interface(extract_interface(item.rec.code, item.rec.top).to_dict())
                kept.append(item)
            except Exception as exc:  # InterfaceError, or a front-end failure on odd code
                drop(item, "interface", "interface_error", f"{type(exc).__name__}: {exc}")
        items = kept
        counts["interface"] = len(items)

        outcomes = None
        rt = self._ensure_roundtrip()
        if rt is not None and items:
            from .roundtrip import RoundTripItem

            t = time.monotonic()
            try:
                outcomes = rt.run([RoundTripItem(it.rec.key, it.rec.top, it.rec.code, it.interface) for it in items],
                                  seed_offset=index * 7919)
            except BaseException:
                self.dedupe.discard_delta()  # this shard is redone on resume
                raise
            timings["roundtrip"] = time.monotonic() - t
            kept_pairs = []
            for item, out in zip(items, outcomes):
                if out.ok:
                    kept_pairs.append((item, out))
                else:
                    drop(item, "roundtrip", out.reason or "roundtrip", out.detail)
        else:
            kept_pairs = [(item, None) for item in items]
        counts["roundtrip"] = len(kept_pairs)

        rows = [self._task_row(item, out) for item, out in kept_pairs]
        counts["tasks"] = len(rows)

        write_jsonl(self.store.path(index, "tasks.jsonl"), rows)
        write_jsonl(self.store.path(index, "drops.jsonl"), drops)
        self.store.write_state(index, self.dedupe.take_delta())
        timings["total"] = time.monotonic() - t0
        self.store.commit(index, {
            "index": index, "modules": len(chunk), "first_key": chunk[0].key, "last_key": chunk[-1].key,
            "counts": {s: counts.get(s, 0) for s in STAGES},
            "drops": dict(Counter(d["reason"] for d in drops)),
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "finished": _now(),
        })
        logger.info("shard %d: %d modules -> %d tasks (%.1fs)", index, len(chunk), len(rows), timings["total"])

    def _task_row(self, item: _Item, out) -> dict:
        rec, cfg = item.rec, self.cfg
        prefix = cfg.id_prefix or f"{rec.source.get('name', 'src')}/"
        description = out.description if out is not None else None
        if out is not None:
            prompt = self.roundtrip.task_prompt(_rt_item(item), description)
        else:  # without a round trip the prompt is the interface only; meant for SFT warm-up or later description
            from .roundtrip import interface_text

            prompt = (f"Implement a synthesizable Verilog module named `{rec.top}` with these ports:\n"
                      f"{interface_text(item.interface)}\n")
        figures = item.figures or {}
        llm = self._backend.describe() if (out is not None and self._backend is not None) else {}
        return {
            "id": f"{prefix}{rec.top}-{item.digest[:12]}",
            "prompt": prompt,
            "top": rec.top,
            "reference": rec.code,
            "testbench": None,
            "harness": "verirl",
            "metadata": {
                "provenance": {"source": rec.source.get("name"), "kind": rec.source.get("kind"),
                               "path": rec.source.get("path"), "row": rec.source.get("row"),
                               "license": rec.source.get("license"), "key": rec.key,
                               "dependencies": list(rec.dependencies)},
                "interface": item.interface,
                "description": description,
                "roundtrip": ({"model": llm.get("model"), "method": out.method, "attempts": out.attempts,
                               "equivalent_attempt": out.equivalent_attempt} if out is not None else None),
                "difficulty": None,
                "stats": {"lines": item.lines, "ports": rec.ports, "cells": figures.get("cells"),
                          "area": figures.get("area"), "depth": figures.get("depth")},
            },
        }

    # -- assembly -----------------------------------------------------------------------------

    def finalize(self, n_shards: int, elapsed: float) -> dict:
        """Assemble committed shards into the dataset files, drops.jsonl and manifest.json."""
        cfg = self.cfg
        indices = [i for i in range(n_shards) if self.store.is_done(i)]
        totals = Counter()
        drop_reasons: Counter = Counter()
        drops_by_stage: dict[str, Counter] = {}
        timings: Counter = Counter()
        for i in indices:
            rec = self.store.record(i)
            totals.update(rec["counts"])
            drop_reasons.update(rec["drops"])
            timings.update(rec.get("timings", {}))
        with atomic_open(os.path.join(self.out, "drops.jsonl")) as fh:
            for i in indices:
                for row in read_jsonl(self.store.path(i, "drops.jsonl")):
                    drops_by_stage.setdefault(row["stage"], Counter())[row["reason"]] += 1
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        files = write_dataset(self.out, cfg.dataset_name, [self.store.path(i, "tasks.jsonl") for i in indices],
                              cfg.formats)
        manifest = {
            "dataset": {"rows": totals.get("tasks", 0), "files": files, "schema": "rewards.task.Task"},
            "counts": {s: totals.get(s, 0) for s in STAGES},
            "drops": dict(drop_reasons.most_common()),
            "drops_by_stage": {k: dict(v.most_common()) for k, v in drops_by_stage.items()},
            "sources": {name: {"items": st.items, "skipped": st.skipped} for name, st in self.source_stats.items()},
            "shards": {"count": n_shards, "committed": len(indices), "size": cfg.shard_size},
            "seed": cfg.seed,
            "tool_versions": _tool_versions(),
            "packages": _package_versions(),
            "llm": self._backend.describe() if self._backend is not None else None,
            "timings_s": {k: round(v, 2) for k, v in timings.items()} | {"this_run": round(elapsed, 2)},
            "config": to_dict(cfg),
            "created": _now(),
        }
        write_json(os.path.join(self.out, "manifest.json"), manifest)
        return manifest


def _rt_item(item: _Item):
    from .roundtrip import RoundTripItem

    return RoundTripItem(item.rec.key, item.rec.top, item.rec.code, item.interface)


def write_dataset(out_dir: str, name: str, shard_files: list[str], formats: list[str],
                  row_group: int = 1000) -> dict[str, str]:
    """Concatenate shard JSONL files into ``name.jsonl`` and/or ``name.parquet`` (streamed, atomic)."""
    files: dict[str, str] = {}
    if "jsonl" in formats:
        path = os.path.join(out_dir, f"{name}.jsonl")
        with atomic_open(path, "wb") as dst:
            for shard in shard_files:
                with open(shard, "rb") as src:
                    shutil.copyfileobj(src, dst)
        files["jsonl"] = path
    if "parquet" in formats:
        import pyarrow as pa
        import pyarrow.parquet as pq

        features = task_features()
        schema = features.arrow_schema
        path = os.path.join(out_dir, f"{name}.parquet")
        with atomic_open(path, "wb") as fh:
            writer = pq.ParquetWriter(fh, schema)
            batch: list[dict] = []
            for shard in shard_files:
                for row in read_jsonl(shard):
                    batch.append(row)
                    if len(batch) >= row_group:
                        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                        batch = []
            if batch:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            writer.close()
        files["parquet"] = path
    return files


def load_tasks_dataset(path: str):
    """Load a built dataset file (``.parquet`` or ``.jsonl``) as a ``datasets.Dataset``."""
    import datasets

    kind = "parquet" if path.endswith(".parquet") else "json"
    features = task_features() if kind == "json" else None
    return datasets.load_dataset(kind, data_files=path, split="train", features=features)


def _tool_versions() -> dict:
    from rewards.toolchain import tool_versions

    return tool_versions()


def _package_versions() -> dict:
    out = {}
    for pkg in ("verirl", "datasets", "datasketch", "pyslang", "transformers", "vllm"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")

