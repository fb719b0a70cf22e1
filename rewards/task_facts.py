"""Facts about a task that no completion changes, remembered on this machine across runs.

Scoring a completion needs a few facts about its task: that the reference passes its own testbench (else every
completion is ``task_error``), the CPU time that run took (the candidate's simulation budget adapts to it), and the
reference's synthesis figures (PPA). They depend only on the task's content, the tools and the reward engine, so
they are computed once per machine, not once per run: ``verirl score``, ``verirl eval`` and training share them
through a small SQLite database (WAL mode, safe for concurrent processes) in the per-user cache folder:

* ``$VERIRL_CACHE_DIR`` when set (``off`` disables the persistent cache: facts are then kept per process only);
* else ``$XDG_CACHE_HOME/verirl``, else ``~/.cache/verirl``.

A key hashes everything a fact depends on: the task's fingerprint (top, reference, testbench, harness, data files),
the identity of the tool binaries (path, size and modification time of ``iverilog``/``vvp``/``yosys``, so an upgrade
starts afresh), :data:`ENGINE_VERSION` (bumped whenever the meaning of a fact changes) and the settings the fact
was computed under (CPU budgets, memory limit, Liberty file content). What is stored is decided by the task's
content alone: the facts that hold, and a reference's testbench failure that no limit of ours caused (see
:mod:`rewards.task_checks`); a run stopped by a CPU or memory limit, or a tool fault, is decided again by the next
process, so a transient failure is never remembered.

Nothing here is model output: facts come from trusted inputs only, and the cache folder is created private
(mode 0700).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from typing import Any

from .toolchain import find_tool

logger = logging.getLogger(__name__)

ENGINE_VERSION = 2
"""Bump when a fact's meaning (how it is computed, what it is used for) changes: older entries are then ignored.
2: a testbench failure the task's content decides is remembered too (``{"error": ...}``), which a reader of version 1
would take for a passing reference."""
ENV = "VERIRL_CACHE_DIR"
DB_NAME = "task-facts.sqlite"
_OFF = ("off", "none", "0", "false", "")


def cache_dir() -> str | None:
    """The folder of verirl's per-user cache, or ``None`` when ``$VERIRL_CACHE_DIR`` turns it off."""
    env = os.environ.get(ENV)
    if env is not None:
        return None if env.strip().lower() in _OFF else os.path.abspath(os.path.expanduser(env))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "verirl")


def tool_identity(*names: str) -> str:
    """Path, size and modification time of each tool binary: a new build or version gives another identity."""
    parts = []
    for name in names:
        real = os.path.realpath(find_tool(name))
        try:
            st = os.stat(real)
            parts.append(f"{real}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{real}:?")
    return "|".join(parts)


def fact_key(kind: str, *parts: Any) -> str:
    """The key of a fact of ``kind`` computed from ``parts`` (JSON-serialisable)."""
    payload = json.dumps([ENGINE_VERSION, kind, *parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8", errors="surrogatepass")).hexdigest()


class FactStore:
    """The SQLite file of facts; every method is safe to call from any thread (and any process at once).

    A store that cannot be opened or written (read-only home, full disk, a broken file) logs one warning and then
    answers nothing: facts are then computed per process, never wrongly remembered."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = -1
        self._broken = False

    def _connect(self) -> sqlite3.Connection | None:
        if self._broken:
            return None
        if self._db is not None and self._pid == os.getpid():
            return self._db
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS facts (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL)")
        except (OSError, sqlite3.Error) as exc:
            self._fail(exc)
            return None
        self._db, self._pid = db, os.getpid()  # a forked child opens its own connection
        return db

    def _fail(self, exc: Exception) -> None:
        if not self._broken:
            logger.warning("the task-facts cache %s is unusable (%s): facts are kept in memory only; set %s to "
                           "another folder, or %s=off", self.path, exc, ENV, ENV)
        self._broken = True

    def get(self, key: str) -> dict | None:
        with self._lock:
            db = self._connect()
            if db is None:
                return None
            try:
                row = db.execute("SELECT value FROM facts WHERE key = ?", (key,)).fetchone()
            except sqlite3.Error as exc:
                self._fail(exc)
                return None
        if row is None:
            return None
        try:
            value = json.loads(row[0])
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def put(self, key: str, value: dict) -> None:
        with self._lock:
            db = self._connect()
            if db is None:
                return
            try:
                db.execute("INSERT OR REPLACE INTO facts VALUES (?, ?, ?)", (key, json.dumps(value), time.time()))
            except sqlite3.Error as exc:
                self._fail(exc)

    def __len__(self) -> int:
        with self._lock:
            db = self._connect()
            if db is None:
                return 0
            return int(db.execute("SELECT COUNT(*) FROM facts").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None


_STORES: dict[str, FactStore] = {}
_STORES_LOCK = threading.Lock()


def store() -> FactStore | None:
    """This process's handle on the facts file of :func:`cache_dir` (``None`` when the cache is off)."""
    folder = cache_dir()
    if folder is None:
        return None
    path = os.path.join(folder, DB_NAME)
    with _STORES_LOCK:
        found = _STORES.get(path)
        if found is None:
            found = _STORES[path] = FactStore(path)
        return found
