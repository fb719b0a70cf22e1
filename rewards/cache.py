"""Content-addressed cache of verdicts, bounded in memory, optionally persisted to SQLite.

Entries are verdicts (:func:`rewards.hierarchy.judge`), not reward values, and keys hash what
determines a verdict: the task's fingerprint, the completion text and the reward configuration's
:attr:`~rewards.hierarchy.RewardConfig.verdict_fingerprint`. Duplicate completions in a batch
(common in GRPO groups) are judged once. The in-memory part is an LRU with a fixed number of
entries; with ``path`` set, entries also go to a SQLite file, so a resumed training run does not
re-simulate what it already judged.

The file's ``PRAGMA user_version`` is :data:`SCHEMA`. A file of schema 0 (verirl before verdicts: a
``scores`` table of values under the whole configuration's fingerprint, which no key of now can
match) has that table dropped and starts empty; a file of a newer schema is refused with
:class:`~rewards.errors.ConfigError`.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import sqlite3
import threading

from .errors import ConfigError
from .score import Score

SCHEMA = 1
"""Version of the SQLite file's layout (``verdicts`` table of verdicts)."""

logger = logging.getLogger(__name__)


def cache_key(task_fingerprint: str, completion_text: str, config_fingerprint: str) -> str:
    digest = hashlib.sha256()
    for part in (task_fingerprint, config_fingerprint, completion_text):
        data = part.encode("utf-8", errors="surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


class ScoreCache:
    """Thread-safe LRU of verdicts (:class:`Score`) keyed by :func:`cache_key`; optional SQLite backing."""

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
            self._db = _open(path)

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
                row = self._db.execute("SELECT verdict FROM verdicts WHERE key = ?", (key,)).fetchone()
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
                self._db.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?)", (key, json.dumps(score.to_dict())))

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


def _open(path: str) -> sqlite3.Connection:
    """Open (or create) the cache file at :data:`SCHEMA`: an older file's entries are dropped, a newer one refused."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("BEGIN IMMEDIATE")  # one process upgrades a file that several open at once
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA:
            raise ConfigError(f"reward cache file {path} has schema {version}, written by a newer verirl than this "
                              f"one (schema {SCHEMA}); upgrade verirl, or set another cache_path")
        if version < SCHEMA:
            if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'scores'").fetchone():
                logger.warning("reward cache file %s holds reward values of an older verirl, not verdicts: they are "
                               "dropped and completions are judged again", path)
                db.execute("DROP TABLE scores")
            db.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, verdict TEXT NOT NULL)")
            db.execute(f"PRAGMA user_version = {SCHEMA}")
        db.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        db.close()
        raise ConfigError(f"reward cache file {path} cannot be opened as a verirl cache ({exc}); delete it or set "
                          "another cache_path") from None
    except BaseException:
        db.close()
        raise
    return db
