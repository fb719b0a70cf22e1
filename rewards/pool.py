"""Score batches of completions in parallel, with deadlines and a content-addressed cache of verdicts.

The work of scoring is done by EDA subprocesses, so the local backend is a bounded pool of threads, each driving one
sandboxed tool at a time (the GIL is released while a tool runs). Duplicate completions in a batch are scored once,
and every verdict (:func:`rewards.hierarchy.judge`) is cached by content. A pool serves every configuration with its
configuration's :attr:`~rewards.hierarchy.RewardConfig.verdict_fingerprint`: each gets its own values of the shared
verdicts (:meth:`RewardPool.score`'s ``config``), so settings that only turn a verdict into a number (weights,
``partial_credit``) never run a tool again. ``backend="ray"`` runs the same jobs, all levels included (simulation,
equivalence, PPA synthesis), as Ray tasks on a cluster (:mod:`rewards.ray_backend`); the cache stays in the calling
process.

Deadlines, on by default: every job is bounded by its own tool timeouts, so a working pool finishes *some* job
within :func:`job_seconds` of the last one. A batch in which nothing finished for that long (plus
:data:`STALL_GRACE`) has lost its workers, and ends: unfinished completions come back as not scorable
(``reward=None``, failure ``infrastructure``, with the reason) instead of hanging a training step.
``batch_deadline`` adds a hard limit for the whole batch. Late local jobs still land in the cache when they finish;
late Ray tasks are cancelled and simply run again the next time their completion is seen (nothing is cached for them).

Capacity is per node: the default worker count is two per CPU, divided among the processes that share the node
(``LOCAL_WORLD_SIZE``, set by ``torchrun``/``accelerate launch``), so eight training ranks on a node do not start
eight full pools.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .cache import ScoreCache, cache_key
from .errors import ConfigError
from .extract import completion_text
from .hierarchy import RewardConfig, judge, ppa_only
from .score import Score
from .task import Task

logger = logging.getLogger(__name__)

BACKENDS = ("local", "ray")
SYNTH_TIMEOUT = 60.0
"""CPU seconds of one Yosys synthesis (:func:`rewards.synth.synthesize`'s default)."""
STALL_GRACE = 15.0
"""Seconds added to :func:`job_seconds` before a batch without progress is declared stalled (scheduling, worker
start-up, Ray's retry of a job whose worker died)."""


def node_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def processes_per_node() -> int:
    """Processes of this job on this node: ``LOCAL_WORLD_SIZE`` (torchrun, accelerate launch), else 1."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def default_workers() -> int:
    """Two workers per CPU of this node, shared among the processes of this job on the node.

    A job is a chain of short tool processes (compile, elaborate, simulate): while one job's process starts up or
    its output is parsed, another job's tool can use the core. Measured on 2 cores (scripts/bench_rewards.py):
    2 workers 1.4x the naive loop, 4 workers 2.0x. With ``LOCAL_WORLD_SIZE=8`` on a 96-CPU node each rank gets
    24 workers (the node's 192 in all), not 192 each.
    """
    return max(1, 2 * node_cpus() // processes_per_node())


def job_seconds(config: RewardConfig) -> float:
    """The longest one scoring job can run under its tools' own limits (the unit of the default deadline).

    Every tool run ends by its CPU budget or, on a starved machine, by its wall-clock backstop
    (:meth:`rewards.sandbox.SandboxConfig.wall_seconds`), so a job is bounded by the backstops of the runs on its
    longest path: the joint gate-and-simulation compile, then the gate alone, the compile alone and the gate's
    second half when the joint run cannot decide; the simulation (and its rerun without the gate's nets); the
    reference's compile and simulation once per task; or an equivalence check (formal runs, then simulation of
    both designs); plus the reference's and the candidate's synthesis when PPA is on.
    """
    from .equivalence import EquivConfig

    wall = config.sandbox.wall_seconds
    sim = config.sim
    compile_, run = wall(sim.compile_timeout), wall(sim.max_timeout)
    seconds = compile_  # the gate alone (syntax only)
    if config.enabled("function") or config.enabled("ppa"):
        eq = EquivConfig(**dict(config.equivalence))
        # joint compile, gate alone, compile alone, second half, run; or joint compile, second half, run, and the
        # rerun without the gate's nets; plus the reference's compile and run
        testbench = max(4 * compile_ + run, 3 * compile_ + 2 * run) + compile_ + run
        equivalence = compile_ + 3 * wall(eq.formal_timeout) + 2 * (compile_ + wall(eq.sim_timeout))
        seconds = max(testbench, equivalence)
    if config.enabled("ppa"):
        seconds += 2 * wall(SYNTH_TIMEOUT)
    return seconds


def check_backend(backend: str, ray_address: str | None = None) -> None:
    """Reject an unknown backend, or a Ray backend without a cluster to join, before any work starts."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown reward backend {backend!r}; use one of {BACKENDS}")
    if backend == "ray":
        from .ray_backend import resolve_address

        resolve_address(ray_address)
    elif ray_address:
        raise ConfigError(f"ray_address={ray_address!r} is set but the reward backend is {backend!r}; "
                          "use backend 'ray' to score on that cluster, or drop ray_address")


class RewardPool:
    """Parallel, cached scoring of ``(task, completion)`` pairs.

    Args:
        config: the reward configuration (levels, weights, timeouts, sandbox); :meth:`score` values verdicts with it
            unless given another with the same verdict settings.
        workers: concurrent scoring jobs of the local backend (default :func:`default_workers`); with Ray, the
            scoring window of :meth:`score_iter` (default: the cluster's CPUs).
        backend: ``local`` (threads driving sandboxed subprocesses) or ``ray``.
        cache_size: in-memory cache entries (LRU); 0 disables the memory cache.
        cache_path: optional SQLite file that persists the cache across restarts.
        batch_deadline: seconds after which unfinished jobs of a batch come back as not scorable; without it a batch
            ends only when it stalls (nothing finished for ``stall_seconds``).
        ray_address: the Ray cluster to join (``host:port`` or ``auto``; default ``$RAY_ADDRESS``), or ``local`` for
            a private Ray in this process (see :mod:`rewards.ray_backend`).
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
        check_backend(backend, ray_address)
        if workers is not None and workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        if batch_deadline is not None and not batch_deadline > 0:
            raise ConfigError(f"batch_deadline must be > 0 seconds, got {batch_deadline}")
        self.config = config or RewardConfig()
        self.verdict_config = self.config.verdict_config
        """What the pool's jobs run under (:attr:`RewardConfig.verdict_config`)."""
        self.backend = backend
        self.batch_deadline = batch_deadline
        self.stall_seconds = job_seconds(self.verdict_config) + STALL_GRACE
        """A batch ends when no job finished for this long (its workers are lost)."""
        self.cache = ScoreCache(cache_size, cache_path)
        self._executor: cf.ThreadPoolExecutor | None = None
        self._ray = None
        self._ppa_cache: dict[str, tuple[float | None, dict]] = {}
        self._lock = threading.Lock()
        self.stats = {"scored": 0, "cache_hits": 0, "unscorable": 0, "seconds": 0.0, "missed_deadline": 0,
                      "cancelled": 0}
        self.workers = workers or default_workers()
        if backend == "ray":
            from .ray_backend import RayJobs, connect, resolve_address

            self.ray_address = resolve_address(ray_address)
            cluster_cpus = connect(self.ray_address, self.workers)
            self.workers = workers or max(1, cluster_cpus)
            self._ray = RayJobs(self.verdict_config)

    # -- public API -------------------------------------------------------------------
    def score(self, pairs: Sequence[tuple[Task, Any]], *, deadline: float | None = None,
              config: RewardConfig | None = None) -> list[Score]:
        """Score a batch; the result is in input order. ``deadline`` overrides ``batch_deadline``; ``config`` (default:
        the pool's) values the verdicts and must have the pool's verdict settings."""
        config = config or self.config
        if config.verdict_fingerprint != self.verdict_config.verdict_fingerprint:
            raise ConfigError("this reward pool judges under other verdict settings (levels on, sim, equivalence, "
                              "sandbox, reasoning, liberty, validate_reference) than the configuration it was asked "
                              "to score with; use a pool of that configuration")
        start = time.monotonic()
        out = [config.value(verdict) for verdict in self.verdicts(pairs, deadline=deadline)]
        self._count(scored=len(out), unscorable=sum(1 for s in out if not s.scorable),
                    seconds=time.monotonic() - start)
        return out

    def verdicts(self, pairs: Sequence[tuple[Task, Any]], *, deadline: float | None = None) -> list[Score]:
        """The verdicts of a batch (:func:`rewards.hierarchy.judge`), in input order, from the cache or judged now."""
        deadline = deadline if deadline is not None else self.batch_deadline
        fingerprint = self.verdict_config.verdict_fingerprint
        keys = [self._key(task, completion, fingerprint) for task, completion in pairs]
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
        self._count(cache_hits=len(pairs) - len(todo))
        if todo:
            results.update(self._run("verdict", todo, deadline, self.cache.put))
        return [results[key] for key in keys]

    def map_ppa(self, pairs: Sequence[tuple[Task, Any]], config: RewardConfig, *,
                deadline: float | None = None) -> list[tuple[float | None, dict]]:
        """PPA component and figures of functionally correct completions, on the pool's backend, cached."""
        deadline = deadline if deadline is not None else self.batch_deadline
        fingerprint = "ppa:" + config.verdict_fingerprint  # PPA figures depend on no value setting
        keys = [cache_key(t.fingerprint, repr(c), fingerprint) for t, c in pairs]
        out: dict[str, tuple[float | None, dict]] = {}
        todo: dict[str, tuple[Task, Any]] = {}
        for key, pair in zip(keys, pairs):
            hit = self._ppa_cache.get(key)
            if hit is not None:
                out[key] = hit
            elif key not in todo:
                todo[key] = pair
        if todo:
            out.update(self._run("ppa", todo, deadline, self._store_ppa, config))
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

    def __enter__(self) -> RewardPool:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------
    def _key(self, task: Task, completion: Any, fingerprint: str | None = None) -> str:
        """The cache key of a completion's verdict (``fingerprint``: the pool's verdict fingerprint, if known)."""
        try:
            text = completion_text(completion)
        except TypeError:
            text = repr(completion)
        return cache_key(task.fingerprint, text, fingerprint or self.verdict_config.verdict_fingerprint)

    def _count(self, **increments: float) -> None:
        """Add to :attr:`stats` (batches may be scored from several threads at once)."""
        with self._lock:
            for name, amount in increments.items():
                self.stats[name] += amount

    def _store_ppa(self, key: str, result: tuple[float | None, dict]) -> None:
        if result[0] is None:  # an infrastructure or task fault: try again next time
            return
        with self._lock:
            self._ppa_cache[key] = result
            while len(self._ppa_cache) > max(self.cache.max_entries, 1):
                self._ppa_cache.pop(next(iter(self._ppa_cache)))

    def _run(self, kind: str, todo: dict[str, tuple[Task, Any]], deadline: float | None,
             store: Callable[[str, Any], None], config: RewardConfig | None = None) -> dict[str, Any]:
        """Run ``kind`` jobs (``verdict``/``ppa``) on the backend; what misses the deadline comes back as a fault."""
        config = config or self.verdict_config
        todo = _longest_first(todo, config) if kind == "verdict" else todo
        if self._ray is not None:
            handles = dict(zip(self._ray.submit(kind, list(todo.values())), todo))
            wait, value = self._ray.wait, self._ray_value(kind)
        else:
            fn = judge if kind == "verdict" else ppa_only
            executor = self._ensure_executor()
            handles = {executor.submit(fn, task, completion, config): key for key, (task, completion) in todo.items()}
            wait, value = _wait_futures, _future_value(kind)
        done, pending, reason = self._gather(handles, wait, deadline)
        out: dict[str, Any] = {}
        for handle in done:
            out[handles[handle]] = result = value(handle)
            store(handles[handle], result)
        if pending:
            self._count(missed_deadline=len(pending))
            logger.warning("%d of %d reward jobs unfinished: %s", len(pending), len(handles), reason)
            if self._ray is not None:
                self._count(cancelled=self._ray.cancel(pending))
            else:  # late results still land in the cache, for the next time this completion is seen
                for future in pending:
                    future.add_done_callback(lambda f, k=handles[future]: _store_late(store, k, f, value))
        for handle in pending:
            out[handles[handle]] = (Score.unscorable("infrastructure", reason) if kind == "verdict"
                                    else (None, {"error": reason}))
        return out

    def _gather(self, handles: dict, wait, deadline: float | None) -> tuple[list, set, str]:
        """Wait until every handle is done, ``deadline`` seconds pass, or nothing finishes for ``stall_seconds``."""
        start = last = time.monotonic()
        hard = start + deadline if deadline is not None else math.inf
        done: list = []
        pending = set(handles)
        while pending:
            now = time.monotonic()
            limit = min(hard, last + self.stall_seconds)
            if now >= limit:
                break
            ready = wait(pending, limit - now)
            if ready:
                last = time.monotonic()
                done.extend(ready)
                pending.difference_update(ready)
        if not pending:
            return done, pending, ""
        if time.monotonic() >= hard:
            reason = f"batch deadline of {deadline:.1f}s passed before this job finished"
        else:
            reason = (f"no reward job finished for {self.stall_seconds:.1f}s (the longest one job can take under its "
                      f"timeouts): the {self.backend} reward workers are lost or stalled")
        return done, pending, reason

    def _ray_value(self, kind: str) -> Callable[[Any], Any]:
        def value(ref):
            try:
                data = self._ray.result(ref)
            except Exception as exc:  # noqa: BLE001 - a lost worker or node (after Ray's retries): never the model's fault
                reason = f"ray task failed: {type(exc).__name__}: {str(exc)[:400]}"
                logger.warning("%s", reason)
                return Score.unscorable("infrastructure", reason) if kind == "verdict" else (None, {"error": reason})
            return Score.from_dict(data) if kind == "verdict" else (data[0], data[1])
        return value

    def _ensure_executor(self) -> cf.ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="verirl-reward")
            return self._executor


def _longest_first(todo: dict[str, tuple[Task, Any]], config: RewardConfig) -> dict[str, tuple[Task, Any]]:
    """Jobs whose task is known to simulate long first (longest-processing-time order; the rest keep their order):
    a batch then ends when its total work is done, not when its longest job, started last, finally ends."""
    from .task_checks import expected_seconds

    cost: dict[str, float] = {}
    for task, _ in todo.values():
        if task.fingerprint not in cost:
            try:
                cost[task.fingerprint] = expected_seconds(task, config)
            except Exception:  # noqa: BLE001 - ordering is an optimisation: never fail a batch for it
                cost[task.fingerprint] = 0.0
    if not any(cost.values()):
        return todo
    order = sorted(todo, key=lambda key: -cost[todo[key][0].fingerprint])
    return {key: todo[key] for key in order}


def _wait_futures(futures: set, timeout: float) -> list:
    done, _ = cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
    return list(done)


def _future_value(kind: str) -> Callable[[cf.Future], Any]:
    def value(future: cf.Future):
        exc = future.exception()
        if exc is None:
            return future.result()
        # a bug or an unexpected fault: never charge it to the model
        logger.error("reward job raised %s: %s", type(exc).__name__, exc, exc_info=exc)
        reason = f"{type(exc).__name__}: {exc}"
        return Score.unscorable("infrastructure", reason) if kind == "verdict" else (None, {"error": reason})
    return value


def _store_late(store: Callable[[str, Any], None], key: str, future: cf.Future, value) -> None:
    if not future.cancelled():
        store(key, value(future))
