"""Score batches of completions in parallel, with a deadline and a content-addressed cache.

The work of scoring is done by EDA subprocesses, so the local backend is a bounded pool
of threads, each driving one sandboxed tool at a time (the GIL is released while a tool
runs). Duplicate completions in a batch are scored once, and every score is cached by
content. A batch has an overall deadline: what is not finished by then comes back as not
scorable (``reward=None``) rather than stalling a distributed training step; it keeps
running in the background and lands in the cache for the next time.

``backend="ray"`` runs the same jobs as Ray tasks on a cluster (``pip install
verirl[ray]``); the cache stays in the calling process.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .cache import ScoreCache, cache_key
from .errors import ConfigError
from .extract import completion_text
from .hierarchy import RewardConfig, score_completion
from .score import Score
from .task import Task

logger = logging.getLogger(__name__)

BACKENDS = ("local", "ray")


def default_workers() -> int:
    """Two workers per CPU this process may use.

    A job is a chain of short tool processes (compile, elaborate, simulate): while one job's
    process starts up or its output is parsed, another job's tool can use the core. Measured on
    2 cores (scripts/bench_rewards.py): 2 workers 1.4x the naive loop, 4 workers 2.0x.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        cpus = os.cpu_count() or 1
    return max(1, 2 * cpus)


class RewardPool:
    """Parallel, cached scoring of ``(task, completion)`` pairs.

    Args:
        config: the reward configuration (levels, weights, timeouts, sandbox).
        workers: concurrent scoring jobs (default: twice the CPUs available to this process).
        backend: ``local`` (threads driving sandboxed subprocesses) or ``ray``.
        cache_size: in-memory cache entries (LRU); 0 disables the memory cache.
        cache_path: optional SQLite file that persists the cache across restarts.
        batch_deadline: seconds after which unfinished jobs of a batch come back as not scorable.
        ray_address: address passed to ``ray.init`` (``None``: start or join a local Ray).
    """

    def __init__(
        self,
        config: RewardConfig | None = None,
        *,
        workers: int | None = None,
        backend: str = "local",
        cache_size: int = 16384,
        cache_path: str | None = None,
        batch_deadline: float | None = None,
        ray_address: str | None = None,
    ):
        if backend not in BACKENDS:
            raise ConfigError(f"unknown reward backend {backend!r}; use one of {BACKENDS}")
        if workers is not None and workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        if batch_deadline is not None and batch_deadline <= 0:
            raise ConfigError(f"batch_deadline must be > 0 seconds, got {batch_deadline}")
        self.config = config or RewardConfig()
        self.workers = workers or default_workers()
        self.backend = backend
        self.batch_deadline = batch_deadline
        self.cache = ScoreCache(cache_size, cache_path)
        self._executor: cf.ThreadPoolExecutor | None = None
        self._ray_fn = None
        self._ppa_cache: dict[str, tuple[float | None, dict]] = {}
        self._lock = threading.Lock()
        self.stats = {"scored": 0, "cache_hits": 0, "unscorable": 0, "seconds": 0.0}
        if backend == "ray":
            self._ray_fn = _ray_scorer(ray_address, self.workers)

    # -- public API -------------------------------------------------------------------
    def score(self, pairs: Sequence[tuple[Task, Any]], *, deadline: float | None = None) -> list[Score]:
        """Score a batch; the result is in input order. ``deadline`` overrides ``batch_deadline``."""
        start = time.monotonic()
        deadline = deadline if deadline is not None else self.batch_deadline
        keys = [self._key(task, completion) for task, completion in pairs]
        results: dict[str, Score] = {}
        todo: dict[str, tuple[Task, Any]] = {}
        for key, pair in zip(keys, pairs):
            if key in results or key in todo:
                continue
            cached = self.cache.get(key)
            if cached is not None:
                results[key] = cached
            else:
                todo[key] = pair
        self.stats["cache_hits"] += len(pairs) - len(todo)
        if todo:
            results.update(self._run(todo, deadline))
        out = [results[key] for key in keys]
        self.stats["scored"] += len(out)
        self.stats["unscorable"] += sum(1 for s in out if not s.scorable)
        self.stats["seconds"] += time.monotonic() - start
        return out

    def map_ppa(self, pairs: Sequence[tuple[Task, Any]], config: RewardConfig) -> list[tuple[float | None, dict]]:
        """PPA component and figures of functionally correct completions, in parallel and cached."""
        from .hierarchy import ppa_only

        keys = [cache_key(t.fingerprint, repr(c), "ppa:" + config.fingerprint) for t, c in pairs]
        out: dict[str, tuple[float | None, dict]] = {}
        executor = self._ensure_executor()
        futures = {}
        for key, (task, completion) in zip(keys, pairs):
            if key in out or key in futures.values():
                continue
            hit = self._ppa_cache.get(key)
            if hit is not None:
                out[key] = hit
            else:
                futures[executor.submit(ppa_only, task, completion, config)] = key
        for future in cf.as_completed(futures):
            exc = future.exception()
            result = (None, {"error": f"{type(exc).__name__}: {exc}"}) if exc else future.result()
            out[futures[future]] = result
            if result[0] is not None:
                self._ppa_cache[futures[future]] = result
                while len(self._ppa_cache) > max(self.cache.max_entries, 1):
                    self._ppa_cache.pop(next(iter(self._ppa_cache)))
        return [out[k] for k in keys]

    def score_iter(self, pairs: Iterable[tuple[Task, Any]], *, window: int | None = None) -> Iterator[Score]:
        """Stream scores in input order, holding at most ``window`` pairs in flight (bounded memory)."""
        window = window or 4 * self.workers
        iterator = iter(pairs)
        while True:
            chunk = list(itertools.islice(iterator, window))
            if not chunk:
                return
            yield from self.score(chunk)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self.cache.close()

    def __enter__(self) -> RewardPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------
    def _key(self, task: Task, completion: Any) -> str:
        try:
            text = completion_text(completion)
        except TypeError:
            text = repr(completion)
        return cache_key(task.fingerprint, text, self.config.fingerprint)

    def _run(self, todo: dict[str, tuple[Task, Any]], deadline: float | None) -> dict[str, Score]:
        if self.backend == "ray":
            return self._run_ray(todo, deadline)
        executor = self._ensure_executor()
        futures = {
            executor.submit(score_completion, task, completion, self.config): key
            for key, (task, completion) in todo.items()
        }
        done, pending = cf.wait(futures, timeout=deadline)
        out: dict[str, Score] = {}
        for future in done:
            out[futures[future]] = score = _result(future)
            self.cache.put(futures[future], score)
        for future in pending:
            # late results still land in the cache, for the next time this completion is seen
            future.add_done_callback(lambda f, k=futures[future]: self._store(k, f))
            out[futures[future]] = Score.unscorable(
                "infrastructure", f"batch deadline of {deadline:.1f}s passed before this completion was scored")
        if pending:
            logger.warning("%d of %d completions missed the %.1fs batch deadline", len(pending), len(futures), deadline)
        return out

    def _ensure_executor(self) -> cf.ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="verirl-reward")
            return self._executor

    def _store(self, key: str, future: cf.Future) -> None:
        if not future.cancelled() and future.exception() is None:
            self.cache.put(key, future.result())

    def _run_ray(self, todo: dict[str, tuple[Task, Any]], deadline: float | None) -> dict[str, Score]:
        import ray

        refs = {self._ray_fn.remote(task.to_dict(), completion, self.config): key
                for key, (task, completion) in todo.items()}
        ready, pending = ray.wait(list(refs), num_returns=len(refs), timeout=deadline)
        out: dict[str, Score] = {}
        for ref in ready:
            key = refs[ref]
            try:
                score = Score.from_dict(ray.get(ref))
            except Exception as exc:  # a lost worker or node is an infrastructure fault
                score = Score.unscorable("infrastructure", f"ray task failed: {exc}")
            self.cache.put(key, score)
            out[key] = score
        for ref in pending:
            out[refs[ref]] = Score.unscorable("infrastructure", f"batch deadline of {deadline}s passed (ray)")
        return out


def _result(future: cf.Future) -> Score:
    exc = future.exception()
    if exc is not None:  # a bug or an unexpected fault: never charge it to the model
        logger.error("scoring raised %s: %s", type(exc).__name__, exc, exc_info=exc)
        return Score.unscorable("infrastructure", f"{type(exc).__name__}: {exc}")
    return future.result()


def _score_remote(task_dict: dict, completion: Any, config: RewardConfig) -> dict:
    return score_completion(Task.from_dict(task_dict), completion, config).to_dict()


def _ray_scorer(address: str | None, workers: int):
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("backend='ray' needs Ray: pip install 'verirl[ray]'") from exc
    if not ray.is_initialized():
        if address:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False)
    return ray.remote(num_cpus=1)(_score_remote)
