"""A real Ray cluster for the tests, started the way operators do (`ray start --head`, a worker node joining), with
token authentication on, inside private network and PID namespaces.

Why namespaces: Ray replaces 127.0.0.1 with the machine's interface address, and `ray stop` kills every Ray process
on the machine, other users' included. This file, run by ``unshare --net --pid --fork --mount-proc --kill-child``,
is the init process of fresh namespaces: loopback is the only interface, `ray stop` sees only this cluster, and when
it exits the kernel ends every process left in the namespace (nothing can outlive a test session).

The test process drives it through stdin/stdout, one command per line, each answered once the cluster has reached
the state asked for (synchronisation on events, not sleeps): ``stop-workers``, ``start-workers``, ``gcs-count``,
``jobs``, ``exit``. Commands that must run on the cluster's network (clients, `verirl score`, `accelerate launch`)
run through :meth:`RayCluster.run`, i.e. ``nsenter`` into the same namespaces.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PORT = 6380
WORKER_CPUS = 2
STARTUP_TIMEOUT = 300.0


def namespaces_available() -> str | None:
    """None when private network+PID namespaces can be made here, else the reason they cannot."""
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"needs {tool} (util-linux / iproute2)"
    if os.geteuid() != 0:
        return "needs root to enter private network namespaces (unshare --net, nsenter)"
    probe = subprocess.run(["unshare", "--net", "--pid", "--fork", "--mount-proc", "ip", "link", "set", "lo", "up"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"cannot create network/PID namespaces here: {probe.stderr.strip()[:200]}"
    return None


class RayCluster:
    """Head (no CPUs: every job runs on worker nodes) plus one worker node of ``WORKER_CPUS`` CPUs."""

    def __init__(self, root: str):
        self.root = root
        self.token_path = os.path.join(root, "token")
        self.address = f"127.0.0.1:{PORT}"
        self._proc: subprocess.Popen | None = None
        self.ns_pid: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> RayCluster:
        with open(self.token_path, "w") as fh:
            fh.write(secrets.token_hex(32))
        with open(os.path.join(self.root, "holder.log"), "w") as log:
            self._proc = subprocess.Popen(
                ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child", "--",
                 sys.executable, os.path.abspath(__file__), "serve", self.root],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=self.env(), cwd=self.root)
        reply = self._reply()
        if not reply.startswith("READY"):
            raise RuntimeError(f"the Ray cluster did not start: {reply!r}; see {self.root}/holder.log")
        with open(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children") as fh:
            self.ns_pid = int(fh.read().split()[0])  # the holder: PID 1 of the namespaces
        return self

    def close(self) -> None:
        if self._proc is None:
            return
        try:
            if self._proc.poll() is None:
                self.command("exit")
                self._proc.wait(timeout=120)
        except (OSError, RuntimeError, subprocess.TimeoutExpired):
            pass
        finally:
            if self._proc.poll() is None:
                self._proc.kill()  # --kill-child: the namespace's init dies, and with it every process inside
                self._proc.wait()
            self._proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- talking to it -----------------------------------------------------------------------------------
    def _reply(self) -> str:
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the Ray cluster holder exited; see {self.root}/holder.log")
        return line.strip()

    def command(self, cmd: str) -> str:
        self._proc.stdin.write(cmd + "\n")
        self._proc.stdin.flush()
        reply = self._reply()
        if not reply.startswith("OK"):
            raise RuntimeError(f"{cmd}: {reply}")
        return reply[2:].strip()

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of a cluster client: token authentication on, this repository first on the path."""
        env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=self.token_path, OMP_NUM_THREADS="1",
                   RAY_USAGE_STATS_ENABLED="0",
                   PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests", "train"),
                                               os.path.join(ROOT, "tests", "cluster"),
                                               os.environ.get("PYTHONPATH", "")]))
        env.pop("RAY_ADDRESS", None)
        env.update(extra)
        return env

    def run(self, argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 600,
            cwd: str | None = None) -> subprocess.CompletedProcess:
        """Run ``argv`` inside the cluster's namespaces (its loopback network, its processes)."""
        cmd = ["nsenter", f"--target={self.ns_pid}", "--net", "--pid", "--mount", "--", *argv]
        return subprocess.run(cmd, env=env if env is not None else self.env(), cwd=cwd or ROOT, capture_output=True,
                              text=True, timeout=timeout, check=False)


# ----------------------------------------------------------------------------------------- the holder process
def _serve(root: str) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    bin_dir = os.path.dirname(sys.executable)
    ray_bin = os.path.join(bin_dir, "ray")
    address = f"127.0.0.1:{PORT}"
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    temp_dir = os.path.join(root, "ray")
    common = ["--disable-usage-stats"]
    subprocess.run([ray_bin, "start", "--head", f"--port={PORT}", "--num-cpus=0", f"--temp-dir={temp_dir}",
                    "--include-dashboard=false", *common], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=sys.stderr)
    worker: subprocess.Popen | None = None

    def start_workers():
        nonlocal worker
        worker = subprocess.Popen([ray_bin, "start", f"--address={address}", f"--num-cpus={WORKER_CPUS}", "--block",
                                   *common], env=env, stdout=subprocess.DEVNULL, stderr=sys.stderr, cwd="/")
        _until(lambda: ray.cluster_resources().get("CPU", 0) >= WORKER_CPUS, "the worker node to join")

    def stop_workers():
        nonlocal worker
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=120)
            worker = None
        _until(lambda: ray.cluster_resources().get("CPU", 0) == 0, "the worker node to leave")

    import ray

    ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    try:
        start_workers()
        print("READY", address, flush=True)
        for line in sys.stdin:
            cmd = line.strip()
            try:
                if cmd == "stop-workers":
                    stop_workers()
                    print("OK", flush=True)
                elif cmd == "start-workers":
                    if worker is None:
                        start_workers()
                    print("OK", flush=True)
                elif cmd == "gcs-count":  # how many Ray clusters run in these namespaces
                    print("OK", sum(_comm(pid) == "gcs_server" for pid in _pids()), flush=True)
                elif cmd == "jobs":  # drivers that ever connected, with their entry points
                    jobs = ray._private.worker.global_worker.gcs_client.get_all_job_info()
                    print("OK", json.dumps(sorted(info.entrypoint for info in jobs.values())), flush=True)
                elif cmd == "exit":
                    print("OK", flush=True)
                    break
                else:
                    print("ERROR unknown command", cmd, flush=True)
            except Exception as exc:  # noqa: BLE001 - reported to the test, which fails with it
                print("ERROR", type(exc).__name__, exc, flush=True)
    finally:
        ray.shutdown()
        if worker is not None:
            worker.terminate()
        subprocess.run([ray_bin, "stop", "--force"], env=env, check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)  # only this namespace's processes are visible


def _until(predicate, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return ""


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        _serve(sys.argv[2])
