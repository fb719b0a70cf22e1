"""The Ray backend of :class:`rewards.pool.RewardPool`: join a Ray cluster and run scoring jobs as Ray tasks.

Which cluster (:func:`resolve_address`): the ``ray_address`` setting, else the ``RAY_ADDRESS`` environment variable.
``host:port`` (what ``ray start --head`` prints) or ``auto`` (the cluster ``ray start`` began on this node) joins an
existing cluster, and no resources are passed (Ray refuses ``num_cpus`` when joining: the nodes declared theirs at
``ray start``). ``local`` starts a private Ray inside this process with one CPU per pool worker: an explicit choice,
never a fallback, because every training process would otherwise start its own Ray.

Jobs are one Ray task per completion (one CPU each), retried up to :data:`RETRIES` times when their worker process
or node dies (a job is a pure function of its inputs, so a rerun gives the same verdict); an exception raised by the
job itself is not retried. The calling process keeps the cache. The driver's own ``rewards`` package is shipped to
the workers (job-level ``runtime_env.py_modules``, when this module calls ``ray.init``), so the cluster scores with
exactly the code the cache keys assume; the reward nodes need Python with Ray and the EDA tools (iverilog, yosys).

Ray 2.60 enables token authentication on ``ray start --head`` whenever a token already exists on that node
(``~/.ray/auth_token``, written by any earlier ``ray.init()`` there), and a client that joins with an explicit
address only sends its token when ``RAY_AUTH_MODE=token`` is set in its environment; otherwise ``ray.init`` fails
after about 20 s of retries. :func:`connect` names that cause in its error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

from .errors import ConfigError

logger = logging.getLogger(__name__)

LOCAL = "local"
"""``ray_address`` value that starts a private Ray in this process (single machine only)."""
RETRIES = 3
"""Reruns of a job whose worker process or node died (Ray's ``max_retries``)."""
ADDRESS_ENV = "RAY_ADDRESS"

_remote_fn = None


def resolve_address(address: str | None) -> str:
    """The cluster to use: ``address``, else ``$RAY_ADDRESS``; neither is a :class:`ConfigError` saying what to set."""
    address = (address or os.environ.get(ADDRESS_ENV) or "").strip()
    if not address:
        raise ConfigError(
            "the ray reward backend needs a cluster to join: set the reward kwarg `ray_address` (or "
            "`--ray-address` on verirl score / verirl eval, or the RAY_ADDRESS environment variable) to the "
            "head's host:port printed by `ray start --head`; `ray_address: local` starts a private Ray inside "
            "this process instead (one machine only; see docs/training.md, 'Moving to a cluster')")
    return address


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("the ray reward backend needs Ray: pip install 'verirl[ray]'") from exc
    return ray


def connect(address: str, workers: int) -> int:
    """Join (or, for :data:`LOCAL`, start) Ray in this process; returns the cluster's CPU count.

    A process that is already connected (its own earlier pool, or the caller's ``ray.init``) keeps its connection.
    """
    ray = _import_ray()
    if not ray.is_initialized():
        package = os.path.dirname(os.path.abspath(__file__))
        quiet = {"log_to_driver": False, "logging_level": logging.WARNING, "ignore_reinit_error": True,
                 "runtime_env": {"py_modules": [package]}}
        if address == LOCAL:
            ray.init(address=LOCAL, num_cpus=workers, include_dashboard=False, **quiet)
        else:
            try:
                ray.init(address=address, **quiet)
            except (ConnectionError, RuntimeError) as exc:
                raise ConfigError(_join_failure(address, exc)) from exc
            logger.info("joined the Ray cluster at %s", address)
    else:
        logger.info("using this process's Ray connection; the reward nodes must have this `rewards` installed")
    return int(ray.cluster_resources().get("CPU", 0))


def _join_failure(address: str, exc: Exception) -> str:
    hint = ""
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        hint = (" If the cluster is up, it probably uses token authentication (Ray 2.60 turns it on at "
                "`ray start --head` when the head node has a token in ~/.ray/auth_token): set RAY_AUTH_MODE=token "
                "here and give this process the cluster's token (RAY_AUTH_TOKEN, a file named by "
                "RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token; `ray get-auth-token` prints it on the head).")
    return (f"cannot join the Ray cluster at {address!r}: {type(exc).__name__}: {exc}. Check that `ray start "
            f"--head` runs there and that this address is reachable from this machine.{hint}")


def _run_job(kind: str, task: dict, completion: Any, config) -> Any:
    """Body of a Ray task (runs on a reward node): a plain-data result that pickles across Ray versions."""
    from .hierarchy import judge, ppa_only
    from .task import Task

    if kind == "verdict":
        return judge(Task.from_dict(task), completion, config).to_dict()
    component, detail = ppa_only(Task.from_dict(task), completion, config)
    return [component, detail]


def _remote():
    global _remote_fn
    if _remote_fn is None:
        ray = _import_ray()
        _remote_fn = ray.remote(num_cpus=1, max_retries=RETRIES, retry_exceptions=False)(_run_job)
    return _remote_fn


class RayJobs:
    """Submit jobs, wait for them, cancel the rest: the operations :class:`~rewards.pool.RewardPool` needs."""

    def __init__(self, config):
        ray = _import_ray()
        self._ray = ray
        self._config_ref = ray.put(config)

    def submit(self, kind: str, pairs: Sequence[tuple[Any, Any]]) -> list:
        """One task per ``(task, completion)``; each distinct task is put into the object store once."""
        task_refs: dict[str, Any] = {}
        refs = []
        for task, completion in pairs:
            ref = task_refs.get(task.fingerprint)
            if ref is None:
                ref = task_refs[task.fingerprint] = self._ray.put(task.to_dict())
            refs.append(_remote().remote(kind, ref, completion, self._config_ref))
        return refs

    def wait(self, refs: Iterable, timeout: float) -> list:
        """The refs among ``refs`` that are done, waiting at most ``timeout`` seconds for the first one."""
        refs = list(refs)
        ready, _ = self._ray.wait(refs, num_returns=1, timeout=max(timeout, 0.0), fetch_local=False)
        if ready:  # collect everything else that is done too, without waiting
            more, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)
            ready = list({*ready, *more})
        return ready

    def result(self, ref) -> Any:
        """The job's value; raises when its task failed (a lost worker after every retry, a cancel, a bug)."""
        return self._ray.get(ref)

    def cancel(self, refs: Iterable) -> int:
        """Cancel unfinished jobs (queued ones are dropped, running ones interrupted); returns how many."""
        n = 0
        for ref in refs:
            try:
                self._ray.cancel(ref, force=False)
                n += 1
            except Exception as exc:  # noqa: BLE001 - already finished, or its owner is gone: nothing to stop
                logger.debug("ray.cancel: %s", exc)
        return n
