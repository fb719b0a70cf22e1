"""Run one EDA tool on untrusted input, contained.

Every call of iverilog, vvp, yosys or verilator in verirl goes through :class:`Workspace`:

* a fresh temporary directory per job, removed afterwards; the tool's working directory,
  ``HOME`` and ``TMPDIR`` all point into it;
* an argv list, never a shell; callers build argv from fixed strings and validated names;
* a scrubbed environment: only ``PATH``, ``HOME``, ``TMPDIR`` and the locale reach the tool,
  so no token or credential in the caller's environment is visible to it;
* resource limits applied by ``prlimit(1)`` before the tool starts (address space, CPU
  seconds, file size, processes, open files, no core dumps);
* its own process group, killed as a whole on timeout or when it floods its output;
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

import dataclasses
import functools
import logging
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence

from .errors import InfrastructureError

logger = logging.getLogger(__name__)

NOBODY_UID = 65534
NOBODY_GID = 65534
_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits applied to every sandboxed tool process."""

    cpu_seconds: int = 60
    """CPU seconds per process (RLIMIT_CPU); a backstop behind the wall-clock timeout."""
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


@dataclasses.dataclass
class ToolResult:
    """What one sandboxed tool run did."""

    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    elapsed: float
    timed_out: bool = False
    output_flood: bool = False
    signal: int | None = None

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


def _prefix(config: SandboxConfig) -> tuple[list[str], bool]:
    """The wrapper argv that applies limits and isolation, and whether Popen must drop privileges."""
    caps = capabilities()
    if not caps["prlimit"]:
        raise InfrastructureError("prlimit(1) is missing: install util-linux (`apt-get install -y util-linux`)")
    lim = config.limits
    argv = [
        shutil.which("prlimit") or "prlimit",
        f"--as={lim.memory_mb * 1024 * 1024}",
        f"--cpu={lim.cpu_seconds}",
        f"--fsize={lim.file_size_mb * 1024 * 1024}",
        f"--nproc={lim.processes}",
        f"--nofile={lim.open_files}",
        "--core=0",
        "--",
    ]
    drop = config.drop_privileges and caps["drop_privileges"]
    if config.isolate_network and caps["isolate_network"]:
        argv += [shutil.which("unshare") or "unshare", "--net"]
        if not caps["root"]:
            argv.append("--map-root-user")
        elif drop:  # unshare switches to nobody itself once the namespace exists
            argv += ["--setuid", str(NOBODY_UID), "--setgid", str(NOBODY_GID)]
            drop = False
    return argv, drop


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

        ``stdin``: bytes fed through a pipe the tool reads as ``/dev/stdin`` (then drained: nothing
        can read them a second time); without it the tool's stdin is ``/dev/null``.
        """
        assert self.path is not None, "Workspace used outside its `with` block"
        if isinstance(argv, str):
            raise TypeError("argv must be a list of strings, never a shell command line")
        prefix, drop = _prefix(self.config)
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
        if write_end is not None:
            threading.Thread(target=_feed, args=(write_end, stdin), daemon=True).start()
        deadline = start + timeout
        stdout, stderr, timed_out, flood = _communicate(proc, deadline, self.config.limits.output_bytes)
        if not (timed_out or flood):
            try:  # the pipes are closed; give the tool the rest of its time to exit
                proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                timed_out = True
        _kill_group(proc)  # also reaps helpers the tool left behind in its group
        returncode = proc.wait()
        elapsed = time.monotonic() - start
        sig = -returncode if returncode < 0 else None
        result = ToolResult(
            argv=list(argv),
            returncode=returncode,
            stdout=stdout.decode("utf-8", errors="replace"),
            stderr=stderr.decode("utf-8", errors="replace"),
            elapsed=elapsed,
            timed_out=timed_out,
            output_flood=flood,
            signal=sig,
        )
        if sig == signal.SIGXCPU:
            result.timed_out = True
        return result


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


def _communicate(proc: subprocess.Popen, deadline: float, cap: int) -> tuple[bytes, bytes, bool, bool]:
    """Read both pipes until they close, the deadline passes, or output passes ``cap``."""
    buffers = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    timed_out = flood = False
    with selectors.DefaultSelector() as sel:
        for stream in buffers:
            sel.register(stream, selectors.EVENT_READ)
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=min(remaining, 0.5)):
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
    if timed_out or flood:
        _kill_group(proc)
    for stream in buffers:
        stream.close()
    return bytes(buffers[proc.stdout]), bytes(buffers[proc.stderr]), timed_out, flood


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
