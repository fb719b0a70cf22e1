"""Sharded, resumable output: atomic files and a per-shard commit record.

A run's output directory holds ``shards/shard-NNNNN.*`` files. A shard's data files (rows,
drops, dedupe state) are each written to a temporary name and renamed into place; the shard's
``.json`` record is written last, the same way, and is the commit: a shard without it is
redone from scratch on resume, and only committed shards are read when the final dataset is
assembled. So a run killed at any instant restarts where it stopped, without duplicated or
lost rows. Files are created with the permissions the user's umask gives new files (0644 with the
usual 022), not the 0600 of a private temporary file.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator

import numpy as np


def current_umask() -> int:
    """The process umask, read without changing it (other threads may be creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def file_mode() -> int:
    """Mode of a new regular file under the current umask (0644 under the usual 022)."""
    return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w"):
    """Write ``path`` through a temporary file in the same directory, renamed into place on success."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    try:
        os.fchmod(fd, file_mode())  # mkstemp creates 0600: give the file the mode open() would have
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_jsonl(path: str, rows: Iterable[dict]) -> int:
    n = 0
    with atomic_open(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl(path: str) -> Iterator[dict]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def write_json(path: str, obj) -> None:
    with atomic_open(path) as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")


class ShardStore:
    """Paths and commit records of the shards of one run."""

    def __init__(self, output_dir: str):
        self.root = os.path.join(output_dir, "shards")
        os.makedirs(self.root, exist_ok=True)

    def path(self, index: int, suffix: str) -> str:
        return os.path.join(self.root, f"shard-{index:05d}.{suffix}")

    def is_done(self, index: int) -> bool:
        return os.path.isfile(self.path(index, "json"))

    def record(self, index: int) -> dict:
        with open(self.path(index, "json"), encoding="utf-8") as fh:
            return json.load(fh)

    def done_indices(self) -> list[int]:
        out = []
        for p in glob.glob(os.path.join(self.root, "shard-*.json")):
            name = os.path.basename(p)[len("shard-") : -len(".json")]
            if name.isdigit():
                out.append(int(name))
        return sorted(out)

    def write_state(self, index: int, delta: dict) -> None:
        """Dedupe contribution of a shard, as a compressed ``.npz`` (written atomically)."""
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            exact=np.array(json.dumps(delta.get("exact", []))),
            near_keys=np.array(json.dumps(delta.get("near_keys", []))),
            near_signatures=delta.get("near_signatures", np.zeros((0, 0), dtype=np.uint64)),
        )
        with atomic_open(self.path(index, "state.npz"), "wb") as fh:
            fh.write(buf.getvalue())

    def read_state(self, index: int) -> dict:
        with np.load(self.path(index, "state.npz")) as data:
            return {"exact": json.loads(str(data["exact"])), "near_keys": json.loads(str(data["near_keys"])),
                    "near_signatures": data["near_signatures"]}

    def commit(self, index: int, record: dict) -> None:
        write_json(self.path(index, "json"), record)


def sharded_map(rows: Iterator[dict], shard_size: int, work_dir: str, process, *, fingerprint: str = "",
                key=lambda row: str(row.get("id"))) -> tuple[list[str], dict]:
    """Resumable map over a row stream, ``shard_size`` rows per shard.

    ``process(index, rows) -> (out_rows, counts)``. Each shard's output is committed under ``work_dir``;
    a rerun skips shards committed with the same rows (first/last key, count) and ``fingerprint`` (the
    settings), and redoes the others. Returns the shard output files in order and the summed counts.
    """
    import itertools
    from collections import Counter

    store = ShardStore(work_dir)
    files: list[str] = []
    totals: Counter = Counter()
    for index in itertools.count():
        chunk = list(itertools.islice(rows, shard_size))
        if not chunk:
            break
        ident = {"rows": len(chunk), "first": key(chunk[0]), "last": key(chunk[-1]), "fingerprint": fingerprint}
        out_path = store.path(index, "rows.jsonl")
        if store.is_done(index) and store.record(index).get("ident") == ident:
            totals.update(store.record(index)["counts"])
        else:
            if store.is_done(index):
                os.unlink(store.path(index, "json"))
            out_rows, counts = process(index, chunk)
            write_jsonl(out_path, out_rows)
            store.commit(index, {"ident": ident, "counts": dict(counts)})
            totals.update(counts)
        files.append(out_path)
    return files, dict(totals)


def concatenate(files: list[str], output: str) -> None:
    """Write the concatenation of ``files`` to ``output`` atomically."""
    import shutil

    with atomic_open(output, "wb") as dst:
        for path in files:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, dst)
