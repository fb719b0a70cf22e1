"""Reward-pool scenarios run *inside* the test cluster's namespaces (``RayCluster.run``); each prints one line
``RESULT <json>`` for the test to check.

    python ray_scenarios.py verdicts ADDRESS
    python ray_scenarios.py kill-worker ADDRESS
    python ray_scenarios.py no-workers ADDRESS
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from cluster_fixtures import (
    ALL_LEVELS,
    GATED_CONFIG,
    GOOD,
    WRONG,
    batch,
    gate_dir,
    gated_task,
    tasks,
    verdict,
)

from rewards.pool import RewardPool


def verdicts(address: str) -> dict:
    """Every level through the cluster; this process cannot run a tool itself (VERIRL_<TOOL> point nowhere)."""
    pairs = batch()
    with RewardPool(ALL_LEVELS, backend="ray", ray_address=address) as pool:
        scores = pool.score(pairs)
        passing = [pair for pair, s in zip(pairs, scores) if s.passed]
        ppa = pool.map_ppa(passing, ALL_LEVELS)
        return {"scores": [verdict(s) for s in scores], "ppa": [component for component, _ in ppa],
                "workers": pool.workers, "stats": pool.stats}


def kill_worker(address: str) -> dict:
    """SIGKILL the Ray worker running a job mid-batch: Ray reruns the job, nothing is lost or blamed on the model."""
    gate = gate_dir()
    adder = tasks()["adder"]
    # one gated job (a second one could pass the gate check at the same moment and hang too) among ordinary ones
    pairs = [(gated_task(gate), GOOD), (adder, GOOD), (adder, WRONG), (adder, GOOD + "\n// another completion")]
    result: dict = {}
    with RewardPool(GATED_CONFIG, backend="ray", ray_address=address) as pool:
        thread = threading.Thread(target=lambda: result.setdefault("scores", pool.score(pairs)))
        thread.start()
        marker = os.path.join(gate, "started")
        try:
            _until(lambda: os.path.exists(marker), "a job to reach the gate")  # the event: a job is hanging there
            vvp = _until(lambda: _gated_simulator(gate), "the hanging simulator")
        except TimeoutError:
            _kill_simulators()  # let the pool close instead of waiting out the hanging job's limits
            raise
        worker = _ray_worker_of(vvp)
        os.kill(worker, signal.SIGKILL)
        os.killpg(vvp, signal.SIGKILL)  # the tool's own process group, left behind by its dead worker
        thread.join(timeout=600)
        assert not thread.is_alive(), "the batch never finished"
    shutil.rmtree(gate, ignore_errors=True)
    return {"scores": [verdict(s) for s in result["scores"]], "killed_worker": worker}


def no_workers(address: str) -> dict:
    """Called with every worker node stopped: batches end (stall watchdog, then a batch deadline) with Nones and
    their Ray tasks cancelled; once a worker node joins again, the same pool scores the same pairs (re-run)."""
    pairs = batch()[:4]
    out: dict = {}
    with RewardPool(ALL_LEVELS, backend="ray", ray_address=address) as pool:
        pool.stall_seconds = 3.0  # the default (job_seconds + grace) is minutes; the mechanism is the same
        out["stalled"] = [(s.reward, s.failure, s.detail.get("reason")) for s in pool.score(pairs)]
        pool.stall_seconds = 3600.0
        out["deadline"] = [(s.reward, s.failure, s.detail.get("reason")) for s in pool.score(pairs, deadline=2.0)]
        out["cancelled"] = pool.stats["cancelled"]
        node = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "ray"), "start",
                                 f"--address={address}", "--num-cpus=2", "--block", "--disable-usage-stats"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
        try:
            import ray

            _until(lambda: ray.cluster_resources().get("CPU", 0) >= 2, "a worker node to join")
            out["rerun"] = [verdict(s) for s in pool.score(pairs)]
        finally:
            node.terminate()
            node.wait(timeout=120)
    return out


# ---------------------------------------------------------------------------------------------- helpers
def _until(predicate, what: str, timeout: float = 300.0):
    """Wait for a condition that stays true once reached (a file, a process); never a timing window."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _gated_simulator(gate: str) -> int | None:
    """PID of the vvp process holding the gate file open (it opened it, then hangs; the file stays open)."""
    marker = os.stat(os.path.join(gate, "started"))
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            if _read(f"/proc/{pid}/comm") != "vvp":
                continue
            for fd in os.listdir(f"/proc/{pid}/fd"):
                st = os.stat(f"/proc/{pid}/fd/{fd}")
                if (st.st_dev, st.st_ino) == (marker.st_dev, marker.st_ino):
                    return pid
        except OSError:
            continue
    return None


def _ray_worker_of(pid: int) -> int:
    """The Ray worker process (proctitle ``ray::...``) that started ``pid``."""
    while pid > 1:
        if _read(f"/proc/{pid}/cmdline").startswith("ray::"):
            return pid
        pid = int(_read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[1])
    raise RuntimeError("no Ray worker among the simulator's ancestors")


def _kill_simulators() -> None:
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            if _read(f"/proc/{pid}/comm") == "vvp":
                os.kill(pid, signal.SIGKILL)
        except OSError:
            continue


def _read(path: str) -> str:
    with open(path, errors="replace") as fh:
        return fh.read().strip()


SCENARIOS = {"verdicts": verdicts, "kill-worker": kill_worker, "no-workers": no_workers}

if __name__ == "__main__":
    print("RESULT", json.dumps(SCENARIOS[sys.argv[1]](*sys.argv[2:]), default=str), flush=True)
