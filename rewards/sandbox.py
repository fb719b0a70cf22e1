"""Run one EDA tool on untrusted input, contained.

Every call of iverilog, vvp, yosys or verilator in verirl goes through :class:`Workspace`:

* a fresh temporary directory per job, removed afterwards; the tool's working directory,
  ``HOME`` and ``TMPDIR`` all point into it;
* an argv list, never a shell; callers build argv from fixed strings and validated names;
* a scrubbed environment: only ``PATH``, ``HOME``, ``TMPDIR`` and the locale reach the tool,
  so no token or credential in the caller's environment is visible to it;
* resource limits applied by ``prlimit(1)`` before the tool starts (address space, CPU
  seconds, file size, processes, open files, no core dumps);
* a budget of **CPU time**, not wall-clock time: the tool (with its child processes) is killed
  once it has used its budget, and that is a ``timed_out`` result. The wall clock is only a
  generous backstop (``wall_factor x budget + wall_grace``): a run that reaches it without having
  used its CPU budget was starved or stuck, which is the machine's fault, never the input's, and
  raises :class:`~rewards.errors.InfrastructureError`. So a loaded machine never turns a correct
  design into a timeout;
* its own process group, killed as a whole when the run ends, on a timeout, when it floods its
  output, and when the calling thread is interrupted (``KeyboardInterrupt``, a cancelled Ray
  task): no tool outlives the call that started it;
* bounded captured output (the tool is killed once it passes the cap);
* when running as root: a private network namespace (``unshare --net``) and the tool runs as
  ``nobody``, so it cannot write outside its directory or reach the network.

What the sandbox does **not** guarantee (see docs/sandbox.md): it is not a container or a
VM. A tool runs with the kernel's full system-call surface; when verirl is not started as
root it runs as the calling user, without network isolation unless unprivileged user
namespaces are available, and can read whatever that user can read. ``RLIMIT_NPROC`` counts
all processes of the user. Reads of host files by Verilog code are prevented one level up, by
:mod:`rewards.sanitize`, which rejects ``include`` directives and file system tasks in
candidate code before any tool sees it.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import logging
import math
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence

from .errors import InfrastructureError
from .toolchain import which

logger = logging.getLogger(__name__)

NOBODY_UID = 65534
NOBODY_GID = 65534
_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits applied to every sandboxed tool process."""

    cpu_seconds: int = 60
    """CPU seconds per process (RLIMIT_CPU's soft limit, ``SIGXCPU``; the hard limit, ``SIGKILL``, is a quarter
    above it), a kernel backstop behind each run's own CPU budget (the run's ``timeout``), which is enforced
    more finely by measuring the tool's CPU time while it runs."""
    memory_mb: int = 2048
    """Address-space limit (RLIMIT_AS) in MiB: a memory bomb fails fast instead of swapping."""
    file_size_mb: int = 64
    """Largest file a tool may write (RLIMIT_FSIZE), e.g. a waveform dump."""
    processes: int = 256
    """RLIMIT_NPROC for the tool's user (iverilog itself runs a few helper processes)."""
    open_files: int = 256
    """RLIMIT_NOFILE."""
    output_bytes: int = 1 << 20
    """Captured stdout/stderr per stream; a tool that prints more is killed (output flood)."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Limits.{field.name} must be a positive integer, got {value!r}")


@dataclasses.dataclass(frozen=True)
class SandboxConfig:
    """How tools are contained. The defaults are the safe ones."""

    limits: Limits = dataclasses.field(default_factory=Limits)
    root: str | None = None
    """Parent directory of the per-job temporary directories (default: the system temp dir)."""
    drop_privileges: bool = True
    """When verirl runs as root, run tools as ``nobody``."""
    isolate_network: bool = True
    """Run tools in a private network namespace when the machine allows it (``unshare``)."""
    keep_workdir: bool = False
    """Keep job directories for debugging instead of deleting them."""
    wall_factor: float = 4.0
    """Wall-clock backstop of a run, as a multiple of its CPU budget (plus ``wall_grace``). A run that reaches it
    without using its CPU budget is an infrastructure fault (an overloaded machine), never a timeout."""
    wall_grace: float = 10.0
    """Seconds added to the wall-clock backstop (tool start-up, a briefly stalled machine)."""

    def __post_init__(self) -> None:
        for name in ("wall_factor", "wall_grace"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"SandboxConfig.{name} must be a number > 0, got {value!r}")

    def wall_seconds(self, budget: float) -> float:
        """The wall-clock backstop of a run whose CPU budget is ``budget`` seconds."""
        return self.wall_factor * budget + self.wall_grace


@dataclasses.dataclass
class ToolResult:
    """What one sandboxed tool run did."""

    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    elapsed: float
    """Wall-clock seconds (for reports; no verdict depends on it)."""
    timed_out: bool = False
    """The tool used up its CPU budget (or hit RLIMIT_CPU)."""
    output_flood: bool = False
    signal: int | None = None
    cpu_seconds: float = 0.0
    """CPU time (user + system) of the tool and the child processes it waited for."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.output_flood

    @property
    def output(self) -> str:
        return self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr

    @property
    def killed_by_limit(self) -> bool:
        """CPU or file-size limit hit, or an allocation failure under the memory cap."""
        if self.signal in (signal.SIGXCPU, signal.SIGXFSZ):
            return True
        text = self.stderr.lower()
        return "bad_alloc" in text or "out of memory" in text or "cannot allocate memory" in text


@functools.cache
def capabilities() -> dict[str, bool]:
    """Which containment features work on this machine (probed once)."""
    caps = {"prlimit": shutil.which("prlimit") is not None}
    is_root = os.geteuid() == 0
    caps["root"] = is_root
    caps["drop_privileges"] = is_root and _probe(["true"], user=NOBODY_UID, group=NOBODY_GID, extra_groups=[])
    unshare = shutil.which("unshare")
    if is_root:
        net_argv = [unshare, "--net", "--setuid", str(NOBODY_UID), "--setgid", str(NOBODY_GID)]
    else:
        net_argv = [unshare, "--map-root-user", "--net"]
    caps["isolate_network"] = bool(unshare and _probe([*net_argv, "true"]))
    return caps


def _probe(argv: list[str], **kwargs) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=10, check=False, **kwargs).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _prefix(config: SandboxConfig, budget: float | None = None) -> tuple[list[str], bool]:
    """The wrapper argv that applies limits and isolation, and whether Popen must drop privileges.

    ``budget``: the run's CPU budget; RLIMIT_CPU is set a little above it (never above
    ``limits.cpu_seconds``), a kernel-enforced backstop behind the measured budget.

    The soft limit sits below the hard one, so the kernel's backstop ends a tool with ``SIGXCPU``
    (read as a timeout), not with ``SIGKILL``. The kernel counts CPU time ahead of what ``/proc`` and
    ``wait4`` report (up to a fifth less on a loaded machine), so a tool the kernel killed at its hard
    limit could look as if it had died of something else inside its budget."""
    caps = capabilities()
    if not caps["prlimit"]:
        raise InfrastructureError("prlimit(1) is missing: install util-linux (`apt-get install -y util-linux`)")
    lim = config.limits
    soft = lim.cpu_seconds if budget is None else min(lim.cpu_seconds, max(1, math.ceil(budget) + 1))
    argv = [
        which("prlimit") or "prlimit",
        f"--as={lim.memory_mb * 1024 * 1024}",
        f"--cpu={soft}:{soft + 1 + soft // 4}",
        f"--fsize={lim.file_size_mb * 1024 * 1024}",
        f"--nproc={lim.processes}",
        f"--nofile={lim.open_files}",
        "--core=0",
        "--",
    ]
    drop = config.drop_privileges and caps["drop_privileges"]
    if config.isolate_network and caps["isolate_network"]:
        argv += [which("unshare") or "unshare", "--net"]
        if not caps["root"]:
            argv.append("--map-root-user")
        elif drop:  # unshare switches to nobody itself once the namespace exists
            argv += ["--setuid", str(NOBODY_UID), "--setgid", str(NOBODY_GID)]
            drop = False
    return argv, drop


#: How the wrappers of :func:`_prefix` report that they could not start the tool (its exec refused: the process limit,
#: which counts every process of the tools' user; memory; a namespace refused): the first line of stderr, with exit
#: status 1, 126 or 127. A tool cannot write that line itself: its stderr starts with what the tool prints.
_WRAPPER_FAILURE = re.compile(r"(?:prlimit|unshare): ")


def _wrapper_failure(returncode: int | None, stderr: bytes) -> str | None:
    """The wrapper's message when the tool never started, else ``None``."""
    if returncode not in (1, 126, 127):
        return None
    first = stderr[:500].decode("utf-8", errors="replace").split("\n", 1)[0]
    return first if _WRAPPER_FAILURE.match(first) else None


def _env(workdir: str) -> dict[str, str]:
    return {"PATH": _SAFE_PATH, "HOME": workdir, "TMPDIR": workdir, "LANG": "C", "LC_ALL": "C"}


class Workspace:
    """A fresh directory holding one job's files, in which tools run contained.

    >>> with Workspace({"a.v": "module a; endmodule"}) as ws:   # doctest: +SKIP
    ...     result = ws.run(["iverilog", "-tnull", "a.v"], timeout=10)
    """

    def __init__(self, files: Mapping[str, str | bytes] | None = None, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self.path: str | None = None
        self._files = dict(files or {})
        self._drop = self.config.drop_privileges and capabilities()["drop_privileges"]

    def __enter__(self) -> Workspace:  # noqa: PYI034 - typing.Self needs Python 3.11
        try:
            self.path = tempfile.mkdtemp(prefix="verirl-", dir=self.config.root)
            if self._drop:
                os.chown(self.path, NOBODY_UID, NOBODY_GID)
            os.chmod(self.path, 0o700)
            for name, content in self._files.items():
                self.write(name, content)
        except OSError as exc:
            self.__exit__(None, None, None)
            raise InfrastructureError(f"cannot prepare sandbox directory: {exc}") from exc
        return self

    def __exit__(self, *exc_info) -> None:
        if self.path and not self.config.keep_workdir:
            shutil.rmtree(self.path, ignore_errors=True)

    def write(self, name: str, content: str | bytes) -> str:
        """Write a file into the workspace; ``name`` must be a plain relative path."""
        assert self.path is not None, "Workspace used outside its `with` block"
        if os.path.isabs(name) or ".." in name.split("/") or not name:
            raise ValueError(f"sandbox file name must be a relative path inside the workspace, got {name!r}")
        target = os.path.join(self.path, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        data = content.encode("utf-8", errors="surrogateescape") if isinstance(content, str) else content
        with open(target, "wb") as fh:
            fh.write(data)
        if self._drop:
            for dirpath in _parents(self.path, os.path.dirname(target)):
                os.chown(dirpath, NOBODY_UID, NOBODY_GID)
            os.chmod(target, 0o644)
        return target

    def remove(self, name: str) -> None:
        """Delete a file of the workspace (e.g. sources holding a secret, once they are compiled)."""
        assert self.path is not None
        try:
            os.unlink(os.path.join(self.path, name))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise InfrastructureError(f"cannot remove {name} from the sandbox directory: {exc}") from exc

    def read(self, name: str, limit: int = 1 << 20) -> bytes | None:
        assert self.path is not None
        target = os.path.join(self.path, name)
        try:
            with open(target, "rb") as fh:
                return fh.read(limit)
        except OSError:
            return None

    def run(self, argv: Sequence[str], timeout: float, stdin: bytes | None = None) -> ToolResult:
        """Run ``argv`` (a list: never a shell string) inside the workspace.

        ``timeout``: the CPU seconds the tool, child processes included, may use. Past it the tool is
        killed and the result is ``timed_out``. A run that lasts :meth:`SandboxConfig.wall_seconds` of
        wall-clock time without using its budget raises :class:`InfrastructureError`: the machine, not
        the input, was too slow. The tool's process group is killed however the call ends, an exception
        in the calling thread included.

        ``stdin``: bytes fed through a pipe the tool reads as ``/dev/stdin`` (then drained: nothing
        can read them a second time); without it the tool's stdin is ``/dev/null``.
        """
        assert self.path is not None, "Workspace used outside its `with` block"
        if isinstance(argv, str):
            raise TypeError("argv must be a list of strings, never a shell command line")
        budget = float(timeout)
        if not budget > 0:
            raise ValueError(f"a tool's CPU budget must be > 0 seconds, got {timeout!r}")
        prefix, drop = _prefix(self.config, budget)
        full = [*prefix, *argv]
        # without network isolation, Popen itself switches to nobody (no extra exec, thread-safe)
        identity = {"user": NOBODY_UID, "group": NOBODY_GID, "extra_groups": []} if drop else {}
        read_end = write_end = None
        if stdin is not None:
            read_end, write_end = os.pipe()
            if self._drop:  # the tool runs as nobody and opens /dev/stdin by name: the pipe must be its own
                os.fchown(read_end, NOBODY_UID, NOBODY_GID)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                full,
                **identity,
                cwd=self.path,
                env=_env(self.path),
                stdin=subprocess.DEVNULL if read_end is None else read_end,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            if write_end is not None:
                os.close(write_end)
            raise InfrastructureError(f"cannot start {argv[0]}: {exc}") from exc
        finally:
            if read_end is not None:
                os.close(read_end)
        try:
            if write_end is not None:
                threading.Thread(target=_feed, args=(write_end, stdin), daemon=True).start()
            outcome = _communicate(proc, budget, start + self.config.wall_seconds(budget),
                                   self.config.limits.output_bytes)
        except BaseException:
            # interrupted (KeyboardInterrupt, a cancelled Ray task, a bug): the tool must not outlive the call
            _kill_group(proc)
            _reap(proc)
            _close_pipes(proc)
            raise
        elapsed = time.monotonic() - start
        sig = -proc.returncode if proc.returncode < 0 else None
        timed_out = outcome.cpu_exceeded or outcome.cpu_seconds > budget or sig == signal.SIGXCPU
        if outcome.wall_exceeded and not timed_out:
            _account(outcome.cpu_seconds, elapsed)
            raise InfrastructureError(
                f"{os.path.basename(argv[0])} ran for {elapsed:.1f}s of wall-clock time but used only "
                f"{outcome.cpu_seconds:.2f}s of its {budget:g}s CPU budget: the machine is overloaded or the tool "
                "is stuck (not the fault of its input)")
        not_started = _wrapper_failure(proc.returncode, outcome.stderr) if prefix else None
        if not_started is not None:
            _account(outcome.cpu_seconds, elapsed)
            raise InfrastructureError(f"the sandbox could not start {os.path.basename(argv[0])}: {not_started}")
        result = ToolResult(
            argv=list(argv),
            returncode=proc.returncode,
            stdout=outcome.stdout.decode("utf-8", errors="replace"),
            stderr=outcome.stderr.decode("utf-8", errors="replace"),
            elapsed=elapsed,
            timed_out=timed_out,
            output_flood=outcome.flood,
            signal=sig,
            cpu_seconds=outcome.cpu_seconds,
        )
        _account(result.cpu_seconds, elapsed)
        return result


# ------------------------------------------------------------------------------------------ accounting

_LEDGERS: contextvars.ContextVar[tuple[dict, ...]] = contextvars.ContextVar("verirl_tool_ledgers", default=())
_STAGE: contextvars.ContextVar[str] = contextvars.ContextVar("verirl_tool_stage", default="other")


@contextlib.contextmanager
def accounting() -> Iterator[dict[str, dict[str, float]]]:
    """Record every tool run made inside the block (in this thread and context), by stage.

    Yields ``{stage: {"runs": n, "cpu_s": ..., "wall_s": ...}}``, filled as tools run; ``Score.detail["tools"]``
    and the benchmarks report processes and time per completion from it. Nested blocks each see the runs made
    inside them."""
    ledger: dict[str, dict[str, float]] = {}
    token = _LEDGERS.set((*_LEDGERS.get(), ledger))
    try:
        yield ledger
    finally:
        _LEDGERS.reset(token)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Tool runs inside the block are booked under stage ``name`` (see :func:`accounting`); inside another stage,
    under ``outer/name`` (e.g. ``equivalence/simulate``)."""
    outer = _STAGE.get()
    token = _STAGE.set(name if outer == "other" else f"{outer}/{name}")
    try:
        yield
    finally:
        _STAGE.reset(token)


def _account(cpu: float, wall: float) -> None:
    for ledger in _LEDGERS.get():
        entry = ledger.setdefault(_STAGE.get(), {"runs": 0, "cpu_s": 0.0, "wall_s": 0.0})
        entry["runs"] += 1
        entry["cpu_s"] += cpu
        entry["wall_s"] += wall


def _feed(fd: int, data: bytes) -> None:
    """Write ``data`` into a pipe and close it; a tool that exits early just closes its end."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        pass
    finally:
        os.close(fd)


def _parents(root: str, path: str):
    while True:
        yield path
        if os.path.samefile(path, root):
            return
        path = os.path.dirname(path)


@dataclasses.dataclass
class _Outcome:
    stdout: bytes
    stderr: bytes
    flood: bool
    cpu_exceeded: bool
    wall_exceeded: bool
    cpu_seconds: float


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _communicate(proc: subprocess.Popen, budget: float, wall_deadline: float, cap: int) -> _Outcome:
    """Read both pipes until the tool exits, its CPU budget or the wall-clock backstop is used up, or its
    output passes ``cap``; then kill its group and reap it (``proc.returncode`` is set)."""
    buffers = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    flood = cpu_exceeded = wall_exceeded = False
    poll = min(0.25, max(0.005, budget / 20))  # how often the CPU time is measured while the tool runs
    reaped: list = []  # (status, rusage) once the tool is waited for
    pidfd = _pidfd(proc.pid)
    next_check = time.monotonic() + poll
    try:
        with selectors.DefaultSelector() as sel:
            for stream in buffers:
                sel.register(stream, selectors.EVENT_READ)
            if pidfd is not None:
                sel.register(pidfd, selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                if now >= wall_deadline:
                    wall_exceeded = True
                    break
                exited = False
                for key, _ in sel.select(timeout=min(poll, wall_deadline - now)):
                    if key.fileobj is pidfd:
                        exited = True
                        continue
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    buf = buffers[key.fileobj]
                    room = cap - len(buf)
                    buf += chunk[: max(room, 0)]
                    if len(chunk) > room:
                        flood = True
                if flood:
                    break
                if pidfd is None and not any(k.fileobj in buffers for k in sel.get_map().values()):
                    exited = _try_reap(proc, reaped)  # no pidfd: poll for the exit once the pipes are closed
                if exited:
                    _drain(sel, buffers, cap)
                    break
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + poll
                    used = _tree_cpu(proc.pid)
                    if used is not None and used > budget:
                        cpu_exceeded = True
                        break
    finally:
        if pidfd is not None:
            os.close(pidfd)
    if not reaped:
        if flood or cpu_exceeded or wall_exceeded:
            _kill_group(proc)
        cpu = _reap(proc)
    else:
        status, usage = reaped[0]
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu = usage.ru_utime + usage.ru_stime
    _kill_group(proc)  # helpers the tool left behind in its group
    _close_pipes(proc)
    return _Outcome(bytes(buffers[proc.stdout]), bytes(buffers[proc.stderr]), flood, cpu_exceeded, wall_exceeded,
                    cpu)


def _try_reap(proc: subprocess.Popen, reaped: list) -> bool:
    try:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    except ChildProcessError:
        return True
    if pid == 0:
        return False
    reaped.append((status, usage))
    return True


def _drain(sel: selectors.BaseSelector, buffers: dict, cap: int) -> None:
    """Read what the exited tool left in its pipes, without waiting for helpers that may hold them open."""
    while True:
        ready = [key for key, _ in sel.select(timeout=0) if key.fileobj in buffers]
        if not ready:
            return
        for key in ready:
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            buf = buffers[key.fileobj]
            buf += chunk[: max(cap - len(buf), 0)]


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits (Linux 5.3+), else ``None`` (then exit is polled)."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return opener(pid)
    except OSError:
        return None


def _tree_cpu(pid: int) -> float | None:
    """CPU seconds used so far by ``pid`` and its descendants (live ones, and those already waited for)."""
    total, stack, seen = 0, [pid], set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            if p == pid:
                return None
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        try:  # utime, stime, cutime, cstime (fields 14-17 of proc(5))
            total += sum(int(x) for x in fields[11:15])
        except ValueError:
            continue
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children", "rb") as fh:
                    stack += [int(c) for c in fh.read().split()]
        except OSError:
            pass  # no children file on this kernel: RLIMIT_CPU still bounds each process
    return total / _CLK_TCK


def _reap(proc: subprocess.Popen) -> float:
    """Wait for the tool (it has exited or been killed) and return its CPU seconds, children included."""
    if proc.returncode is not None:
        return 0.0
    while True:
        try:
            _, status, usage = os.wait4(proc.pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:  # reaped elsewhere
            proc.returncode = proc.returncode if proc.returncode is not None else -signal.SIGKILL
            return 0.0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def _close_pipes(proc: subprocess.Popen) -> None:
    for stream in (proc.stdout, proc.stderr):
        if stream is not None and not stream.closed:
            stream.close()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
