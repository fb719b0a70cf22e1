"""Content-addressed cache of scores, bounded in memory, optionally persisted to SQLite.

Keys hash what determines a score: the task's fingerprint, the completion text and the
reward configuration's fingerprint. Duplicate completions in a batch (common in GRPO
groups) are scored once. The in-memory part is an LRU with a fixed number of entries;
with ``path`` set, entries also go to a SQLite file, so a resumed training run does not
re-simulate what it already scored.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import sqlite3
import threading

from .score import Score

logger = logging.getLogger(__name__)


def cache_key(task_fingerprint: str, completion_text: str, config_fingerprint: str) -> str:
    digest = hashlib.sha256()
    for part in (task_fingerprint, config_fingerprint, completion_text):
        data = part.encode("utf-8", errors="surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


class ScoreCache:
    """Thread-safe LRU of :class:`Score` keyed by :func:`cache_key`; optional SQLite backing."""

    def __init__(self, max_entries: int = 16384, path: str | None = None):
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self.max_entries = max_entries
        self.path = path
        self._mem: collections.OrderedDict[str, Score] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self._db: sqlite3.Connection | None = None
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, score TEXT NOT NULL)")

    def __len__(self) -> int:
        return len(self._mem)

    def get(self, key: str) -> Score | None:
        with self._lock:
            score = self._mem.get(key)
            if score is not None:
                self._mem.move_to_end(key)
                self.hits += 1
                return score
            if self._db is not None:
                row = self._db.execute("SELECT score FROM scores WHERE key = ?", (key,)).fetchone()
                if row is not None:
                    score = Score.from_dict(json.loads(row[0]))
                    self._remember(key, score)
                    self.hits += 1
                    return score
            self.misses += 1
            return None

    def put(self, key: str, score: Score) -> None:
        if not score.scorable:
            return  # never cache infrastructure faults: the next attempt may succeed
        with self._lock:
            self._remember(key, score)
            if self._db is not None:  # None once closed (a late result after shutdown)
                self._db.execute("INSERT OR REPLACE INTO scores VALUES (?, ?)", (key, json.dumps(score.to_dict())))

    def _remember(self, key: str, score: Score) -> None:
        if self.max_entries == 0:
            return
        self._mem[key] = score
        self._mem.move_to_end(key)
        while len(self._mem) > self.max_entries:
            self._mem.popitem(last=False)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __getstate__(self):
        raise TypeError("ScoreCache is process-local and cannot be pickled; build one per process")
