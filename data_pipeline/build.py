"""`verirl data build`: sources → filters → dedupe → decontamination → round trip → tasks.

The corpus is streamed in shards of ``shard_size`` modules (see :mod:`data_pipeline.shards`):

1. split (``sources``), structural limits (``filters.structural_check``);
2. exact dedupe (normalized text; first occurrence in corpus order wins) and code decontamination
   (n-gram overlap with benchmarks);
3. interface (the reward engine's front end: outputs, drivable ports);
4. the tools, in parallel sandboxed runs: compile (Icarus), scorability (the reward engine scores
   the reference as a candidate), synthesis (Yosys, bounded budget);
5. near dedupe (MinHash LSH) among modules that passed the tools;
6. the NL round trip when enabled;
7. task rows in the schema of ``rewards.task.Task`` written to the shard.

Stateful stages (dedupe) run in corpus order outside the parallel ones, so the result does not
depend on ``workers``; each shard stores its dedupe contribution and a digest of its modules'
content, and a resumed run reloads the contribution of every shard whose content is unchanged
and rebuilds the first changed shard and everything after it. When every shard is done, the
committed shards are assembled into ``<dataset_name>.jsonl`` / ``.parquet`` (streamed, row group by
row group), ``drops.jsonl`` and ``manifest.json`` (counts after every stage, drop reasons, seconds
per stage, tool versions, seed, config). Process control (lock, scratch folder, signals, no
orphaned tools) is :mod:`data_pipeline.runctl`.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import importlib.metadata
import itertools
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any

from .config import BuildConfig, to_dict
from .dedupe import Deduplicator, exact_hash
from .filters import TOOL_STAGES, interface_check, require_tools, structural_check, tool_check
from .runctl import RunControl, ensure_not_running
from .shards import ShardStore, atomic_open, read_jsonl, write_json, write_jsonl
from .sources import ModuleRecord, SourceStats, iter_all_modules
from .task_rows import TaskIds, normalize_interface, roundtrip_metadata, task_features, task_row

logger = logging.getLogger(__name__)

#: pipeline stages in order; `counts[stage]` is the number of modules left after it
STAGES = ("split", "structure", "exact_dedupe", "decontaminate", "interface", "compile", "scorable", "synth",
          "near_dedupe", "roundtrip", "tasks")
#: config keys that may change between a run and its resume (they do not change the rows)
_RESUME_FREE = ("workers", "max_modules", "formats", "output_dir")
class ResumeMismatch(ValueError):
    """The output directory holds a run made with a different configuration."""


@dataclasses.dataclass
class _Item:
    rec: ModuleRecord
    digest: str = ""
    figures: dict | None = None
    lines: int = 0
    interface: dict | None = None


#: a stage's verdict on one item: None (kept) or (drop reason, detail)
Verdict = tuple[str, str] | None


class _ShardLedger:
    """What happened to the modules of one shard: how many are left after each stage, the drops, the seconds."""

    def __init__(self, modules: int, split_s: float):
        self.counts: Counter = Counter({"split": modules})
        self.timings: Counter = Counter({"split": split_s})
        self.drops: list[dict] = []

    def drop(self, rec: ModuleRecord, stage: str, reason: str, detail: str = "") -> None:
        self.drops.append({"key": rec.key, "top": rec.top, "source": rec.source.get("name"), "stage": stage,
                           "reason": reason, "detail": detail[:1000]})

    def filter(self, stage: str, entries: list, verdict: Callable[[Any], Verdict],
               record: Callable[[Any], ModuleRecord] = lambda item: item.rec) -> list:
        """The entries ``verdict`` keeps, in order; the others are dropped at ``stage`` (timed, counted)."""
        start = time.monotonic()
        kept = []
        for entry in entries:
            dropped = verdict(entry)
            if dropped is None:
                kept.append(entry)
            else:
                self.drop(record(entry), stage, *dropped)
        self.counts[stage] = len(kept)
        self.timings[stage] += time.monotonic() - start
        return kept


def chunk_digest(chunk: list[ModuleRecord]) -> str:
    """Digest of a shard's modules (keys, code, dependencies, provenance): resume rebuilds a changed shard."""
    h = hashlib.sha256()
    for rec in chunk:
        h.update(rec.content_hash.encode())
    return h.hexdigest()


class Builder:
    """One build run over an output directory (resumable).

    ``report``: called with one line for the user at notable moments (``resuming: N shards already
    done``); the CLI prints it on stderr.
    """

    def __init__(self, cfg: BuildConfig, *, backend=None, restart: bool = False, progress: bool | None = None,
                 report: Callable[[str], None] | None = None):
        cfg.validate_for_run()
        for source in cfg.sources:  # a missing folder or include dir fails now, naming the source and key
            source.check_paths()
        self.cfg = cfg
        self.progress = progress
        self.report = report or (lambda line: logger.info("%s", line))
        self.out = cfg.output_dir
        if restart and os.path.isdir(self.out) and os.listdir(self.out):
            if not os.path.isfile(os.path.join(self.out, "run.json")):
                raise ValueError(f"--restart would delete {self.out}, which does not hold a data build "
                                 f"(no run.json); choose an empty or new output_dir")
            ensure_not_running(self.out)
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
        if cfg.decontaminate is not None and cfg.decontaminate.enabled:
            from .decontaminate import Decontaminator

            self.decon = Decontaminator(cfg.decontaminate)
        self._backend = backend
        self.ids = TaskIds(cfg.id_prefix)
        self.roundtrip = None
        self.source_stats: dict[str, SourceStats] = {}
        self.control: RunControl | None = None

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
                                       seed=self.cfg.seed, workers=self.cfg.workers,
                                       sandbox=self.control.sandbox() if self.control else None,
                                       stop=self.control.stop if self.control else None)
        return self.roundtrip

    def committed_shards(self) -> int:
        return len(self.store.done_indices())

    # -- run ----------------------------------------------------------------------------------

    def run(self) -> dict:
        """Process every shard not yet committed, then assemble the dataset; returns the manifest.

        Raises :class:`data_pipeline.runctl.BuildStopped` when stopped by SIGINT/SIGTERM (committed
        shards are kept; a rerun resumes).
        """
        from tqdm.auto import tqdm

        cfg = self.cfg
        start = time.monotonic()
        self.control = RunControl(self.out)
        self.control.start()
        try:
            self.control.install_signal_handlers()
            already = self.committed_shards()
            if already:
                self.report(f"resuming: {already} shards already done")
            stream = iter_all_modules(cfg.sources, self.source_stats)
            if cfg.max_modules:
                stream = itertools.islice(stream, cfg.max_modules)
            bar = tqdm(desc="modules", unit="mod", disable=None if self.progress is None else not self.progress)
            index = done = 0
            redo = False  # once a shard is rebuilt, later ones saw another dedupe state: rebuild them too
            try:
                while True:
                    t0 = time.monotonic()
                    chunk = list(itertools.islice(stream, cfg.shard_size))
                    split_s = time.monotonic() - t0
                    if not chunk:
                        break
                    digest = chunk_digest(chunk)
                    if not redo and self.store.is_done(index):
                        record = self.store.record(index)
                        if record.get("content") == digest:
                            self.dedupe.load_delta(self.store.read_state(index))
                            self.ids.reserve(row["id"] for row in read_jsonl(self.store.path(index, "tasks.jsonl")))
                            done += 1
                            bar.update(len(chunk))
                            index += 1
                            continue
                        self.report(f"rebuilding from shard {index} on: its modules changed since it was committed "
                                    f"(an edited source or a grown corpus)")
                        redo = True
                    self._process_shard(index, chunk, digest, split_s)
                    self.control.shard_committed()
                    bar.update(len(chunk))
                    index += 1
            finally:
                bar.close()
                if self.roundtrip is not None:
                    self.roundtrip.close()
            logger.info("%d shards (%d resumed from a previous run)", index, done)
            return self.finalize(index, time.monotonic() - start)
        finally:
            self.control.close()

    def _process_shard(self, index: int, chunk: list[ModuleRecord], digest: str, split_s: float = 0.0) -> None:
        if self.store.is_done(index):  # rebuilt: withdraw the old commit before its files are replaced
            os.unlink(self.store.path(index, "json"))
        try:
            self._build_shard(index, chunk, digest, split_s)
        except BaseException:
            self.dedupe.discard_delta()  # this shard is redone on resume
            raise

    def _build_shard(self, index: int, chunk: list[ModuleRecord], digest: str, split_s: float) -> None:
        start = time.monotonic()
        ledger = _ShardLedger(len(chunk), split_s)
        items = [_Item(rec) for rec in chunk]
        for stage, verdict in (("structure", self._structure), ("exact_dedupe", self._exact_dedupe),
                               ("decontaminate", self._decontaminate), ("interface", self._interface)):
            items = ledger.filter(stage, items, verdict)
        items = self._tool_stages(items, ledger)
        items = ledger.filter("near_dedupe", items, self._near_dedupe)
        kept = self._roundtrip_stage(index, items, ledger)
        self._commit_shard(index, chunk, digest, [self._task_row(item, out) for item, out in kept], ledger, start)

    # -- stages: each returns None (kept) or (drop reason, detail) ---------------------------------

    def _structure(self, item: _Item) -> Verdict:
        res = structural_check(item.rec, self.cfg.filters)
        item.lines = res.lines
        return None if res.ok else (res.reason or "structure", res.detail)

    def _exact_dedupe(self, item: _Item) -> Verdict:
        item.digest = exact_hash(item.rec.code)
        return self.dedupe.exact_drop(item.rec.key, item.rec.code)

    def _decontaminate(self, item: _Item) -> Verdict:
        return self.decon.code_drop(item.rec.code) if self.decon is not None else None

    def _interface(self, item: _Item) -> Verdict:
        res = interface_check(item.rec, self.cfg.filters)
        if not res.ok:
            return res.reason, res.detail
        item.interface = normalize_interface(res.interface, item.rec.string_parameters)
        return None

    def _near_dedupe(self, item: _Item) -> Verdict:
        return self.dedupe.near_drop(item.rec.key, item.rec.code)

    def _tool_stages(self, items: list[_Item], ledger: _ShardLedger) -> list[_Item]:
        """Compile, scorability and synthesis of every module, in parallel; drops in corpus order."""
        start = time.monotonic()
        results = self._run_tool_checks(items)
        ledger.timings["tools_wall"] += time.monotonic() - start
        survivors = list(zip(items, results))
        for stage in TOOL_STAGES:
            for _, res in survivors:
                ledger.timings[stage] += res.timings.get(stage, 0.0)
            survivors = ledger.filter(
                stage, survivors, lambda pair, stage=stage: None if pair[1].ok or pair[1].stage != stage
                else (pair[1].reason or stage, pair[1].detail), record=lambda pair: pair[0].rec)
        for item, res in survivors:
            item.figures = res.figures
        return [item for item, _ in survivors]

    def _run_tool_checks(self, items: list[_Item]) -> list:
        """``filters.tool_check`` of every item on ``workers`` threads, results in item order."""
        control = self.control
        sandbox = control.sandbox() if control else None
        stop = control.stop if control else None
        results: list = [None] * len(items)
        pool = ThreadPoolExecutor(max_workers=self.cfg.workers)
        try:
            futures = {pool.submit(tool_check, it.rec, self.cfg.filters, sandbox, stop): i
                       for i, it in enumerate(items)}
            pending = set(futures)
            while pending:  # wait in short slices so a signal handler runs promptly in this thread
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in finished:
                    results[futures[fut]] = fut.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return results

    def _roundtrip_stage(self, index: int, items: list[_Item], ledger: _ShardLedger) -> list[tuple[_Item, Any]]:
        """(item, round-trip outcome) of the items the round trip keeps; outcome None without a round trip."""
        rt = self._ensure_roundtrip()
        if rt is None or not items:
            ledger.counts["roundtrip"] = len(items)
            return [(item, None) for item in items]
        start = time.monotonic()
        outcomes = rt.run([_rt_item(item) for item in items], seed_offset=index * 7919)
        kept = ledger.filter("roundtrip", list(zip(items, outcomes)),
                             lambda pair: None if pair[1].ok else (pair[1].reason or "roundtrip", pair[1].detail),
                             record=lambda pair: pair[0].rec)
        ledger.timings["roundtrip"] = time.monotonic() - start
        return kept

    def _commit_shard(self, index: int, chunk: list[ModuleRecord], digest: str, rows: list[dict],
                      ledger: _ShardLedger, start: float) -> None:
        t = time.monotonic()
        ledger.counts["tasks"] = len(rows)
        write_jsonl(self.store.path(index, "tasks.jsonl"), rows)
        write_jsonl(self.store.path(index, "drops.jsonl"), ledger.drops)
        self.store.write_state(index, self.dedupe.take_delta())
        ledger.timings["write"] = time.monotonic() - t
        ledger.timings["total"] = time.monotonic() - start + ledger.timings["split"]
        self.store.commit(index, {
            "index": index, "modules": len(chunk), "first_key": chunk[0].key, "last_key": chunk[-1].key,
            "content": digest,
            "counts": {s: ledger.counts.get(s, 0) for s in STAGES},
            "drops": dict(Counter(d["reason"] for d in ledger.drops)),
            "timings": {k: round(v, 3) for k, v in ledger.timings.items()},
            "llm": self._backend.describe() if (self._backend is not None and self.roundtrip is not None) else None,
            "finished": _now(),
        })
        logger.info("shard %d: %d modules -> %d tasks (%.1fs)", index, len(chunk), len(rows),
                    ledger.timings["total"])

    def _task_row(self, item: _Item, outcome) -> dict:
        ident = self.ids.assign(item.rec, item.digest)
        if outcome is None:
            return task_row(item.rec, ident=ident, interface=item.interface, lines=item.lines, figures=item.figures)
        llm = self._backend.describe() if self._backend is not None else {}
        return task_row(item.rec, ident=ident, interface=item.interface, lines=item.lines, figures=item.figures,
                        prompt=self.roundtrip.task_prompt(_rt_item(item), outcome.description),
                        description=outcome.description, roundtrip=roundtrip_metadata(llm.get("model"), outcome))

    # -- assembly -----------------------------------------------------------------------------

    def finalize(self, n_shards: int, elapsed: float) -> dict:
        """Assemble committed shards into the dataset files, drops.jsonl and manifest.json."""
        cfg = self.cfg
        indices = [i for i in range(n_shards) if self.store.is_done(i)]
        totals = Counter()
        drop_reasons: Counter = Counter()
        drops_by_stage: dict[str, Counter] = {}
        timings: Counter = Counter()
        llm = self._backend.describe() if self._backend is not None and self.cfg.roundtrip.enabled else None
        for i in indices:
            rec = self.store.record(i)
            totals.update(rec["counts"])
            drop_reasons.update(rec["drops"])
            timings.update(rec.get("timings", {}))
            llm = llm or rec.get("llm")
        if llm is None and cfg.roundtrip.enabled and cfg.roundtrip.llm is not None:
            llm = {"kind": cfg.roundtrip.llm.kind, "model": cfg.roundtrip.llm.model}  # no shard needed the LLM
        with atomic_open(os.path.join(self.out, "drops.jsonl")) as fh:
            for i in indices:
                for row in read_jsonl(self.store.path(i, "drops.jsonl")):
                    drops_by_stage.setdefault(row["stage"], Counter())[row["reason"]] += 1
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        files = write_dataset(self.out, cfg.dataset_name, [self.store.path(i, "tasks.jsonl") for i in indices],
                              cfg.formats)
        busy = timings.get("total", 0.0)
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
            "llm": llm,
            "timings_s": {k: round(v, 2) for k, v in timings.items()} | {"this_run": round(elapsed, 2)},
            "throughput": {"modules": totals.get("split", 0), "seconds": round(busy, 2),
                           "modules_per_s": round(totals.get("split", 0) / busy, 2) if busy else None},
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

