"""Process control of a build: one build per output folder, scratch space, stops, no orphans.

:class:`RunControl` owns, for one ``verirl data build``:

* a lock on ``<output_dir>/.lock``: a second build on the same folder fails at once, naming the
  process that holds it;
* the scratch folder ``<output_dir>/.tmp/run-<pid>-<nonce>``: every sandboxed tool run of the build
  (compile, reward engine, synthesis, equivalence) has its job folder there
  (:meth:`RunControl.sandbox`). (When verirl runs as root, tools run as ``nobody``, who must be able
  to reach the job folder: if a parent of the output folder is closed to others, the scratch root is
  ``$TMPDIR/verirl-data-<hash of the output folder>`` instead.) At start, what earlier runs left under ``.tmp`` — job folders and
  still-running tools of a build killed with ``SIGKILL`` — is killed and removed, and so are
  half-written ``.tmp-*`` files of interrupted atomic writes;
* a watchdog process in its own session (:mod:`data_pipeline.watchdog`) that removes the scratch
  folder and kills its tools as soon as the build's process is gone, however it ended;
* ``SIGINT``/``SIGTERM`` handlers: the first signal stops starting new tools, kills the running
  ones (and keeps killing any started afterwards until the build unwinds), and raises
  :class:`BuildStopped` in the main thread; committed shards are kept and a rerun resumes;
* a test-only switch, ``VERIRL_DATA_TEST_STOP_AFTER_SHARDS=N[:SIGNAL]``: right after the N-th shard
  committed by this process, the build sends itself ``SIGNAL`` (default ``KILL``; ``INT``, ``TERM``).
  Tests use it to stop a build at an exact point instead of racing a poller against it.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

from rewards.sandbox import SandboxConfig

from . import watchdog

logger = logging.getLogger(__name__)

TEST_STOP_ENV = "VERIRL_DATA_TEST_STOP_AFTER_SHARDS"


class BuildStopped(BaseException):
    """The build was stopped by a signal; committed shards are kept (rerun to resume).

    A ``BaseException`` like ``KeyboardInterrupt``: no ``except Exception`` on the way (a front end that
    turns failures into drop reasons) may swallow it and let a half-checked shard be committed."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class RunControl:
    def __init__(self, out_dir: str):
        self.out = out_dir
        self.scratch_root = scratch_root(out_dir)
        self.scratch = os.path.join(self.scratch_root, f"run-{os.getpid()}-{secrets.token_hex(4)}")
        self.stop = threading.Event()
        self._lock_fh = None
        self._watchdog: subprocess.Popen | None = None
        self._previous_handlers: dict[int, object] = {}
        self._reaper: threading.Thread | None = None
        self._closed = threading.Event()
        self._committed_here = 0
        self._log_levels: dict[str, int] = {}
        self._test_stop = _parse_test_stop(os.environ.get(TEST_STOP_ENV, ""))

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Lock the output folder, clean up after earlier runs, create scratch space, start the watchdog."""
        os.makedirs(self.out, exist_ok=True)
        fh = open(os.path.join(self.out, ".lock"), "a+")  # noqa: SIM115 - held open (locked) until close()
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise ValueError(f"{self.out} is in use by another `verirl data build` (pid {holder}); wait for it "
                             f"or choose another output_dir") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_fh = fh
        self.cleanup_leftovers()
        for attempt in range(3):  # the watchdog of a killed run may remove the empty root meanwhile
            try:
                os.makedirs(self.scratch, exist_ok=True)
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
        # job folders are created inside by the sandbox (mode 0700, possibly owned by `nobody`)
        os.chmod(self.scratch_root, 0o711)
        os.chmod(self.scratch, 0o711)
        self._watchdog = subprocess.Popen(
            [sys.executable, watchdog.__file__, self.scratch], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)

    def cleanup_leftovers(self) -> None:
        """Kill tools of earlier (killed) runs of this folder and remove their scratch files."""
        if os.path.isdir(self.scratch_root):
            killed = watchdog.kill_tool_groups(self.scratch_root)
            if killed:
                logger.warning("killed %d tool process group(s) left running by an earlier build of %s", killed,
                               self.out)
            for entry in os.listdir(self.scratch_root):
                shutil.rmtree(os.path.join(self.scratch_root, entry), ignore_errors=True)
        for pattern in (os.path.join(self.out, ".tmp-*"), os.path.join(self.out, "shards", ".tmp-*")):
            for path in glob.glob(pattern):
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def close(self) -> None:
        """Stop the reaper, kill leftovers, remove the scratch folder, end the watchdog, unlock."""
        self._closed.set()
        self.uninstall_signal_handlers()
        for name, level in self._log_levels.items():
            logging.getLogger(name).setLevel(level)
        self._log_levels = {}
        watchdog.clean(self.scratch)
        if self._watchdog is not None:
            with contextlib.suppress(OSError):
                self._watchdog.stdin.close()
            try:
                self._watchdog.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
            self._watchdog = None
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    def sandbox(self) -> SandboxConfig:
        """Sandbox settings whose job folders live in this run's scratch folder."""
        return SandboxConfig(root=self.scratch)

    # -- signals --------------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def uninstall_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, handler)
        self._previous_handlers = {}

    def _on_signal(self, signum, frame) -> None:
        if self.stop.is_set():
            return  # already stopping: the first signal's exception is unwinding
        self.request_stop()
        raise BuildStopped(signum)

    def request_stop(self) -> None:
        """Start no new tool; kill the running ones and any started until the build has unwound."""
        self.stop.set()
        # the tools killed from here on are killed on purpose: their "infrastructure faults" are not news
        for name in ("rewards", "data_pipeline.filters", "data_pipeline.roundtrip"):
            log = logging.getLogger(name)
            self._log_levels.setdefault(name, log.level)
            log.setLevel(logging.ERROR)
        watchdog.kill_tool_groups(self.scratch)
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, name="verirl-reaper", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        while not self._closed.wait(0.05):
            watchdog.kill_tool_groups(self.scratch)

    # -- test hook --------------------------------------------------------------------------------

    def shard_committed(self) -> None:
        """Called after each shard this process commits (the test-only stop switch acts here)."""
        self._committed_here += 1
        if self._test_stop is not None and self._committed_here == self._test_stop[0]:
            logger.warning("%s: sending %s to this build after %d committed shard(s)", TEST_STOP_ENV,
                           signal.Signals(self._test_stop[1]).name, self._committed_here)
            os.kill(os.getpid(), self._test_stop[1])


def ensure_not_running(out_dir: str) -> None:
    """Raise ``ValueError`` when a build holds the lock of ``out_dir`` (before deleting it for --restart)."""
    path = os.path.join(out_dir, ".lock")
    if not os.path.isfile(path):
        return
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            raise ValueError(f"{out_dir} is in use by another `verirl data build` (pid {fh.read().strip() or '?'}); "
                             f"--restart would delete its files") from None
        fcntl.flock(fh, fcntl.LOCK_UN)


def scratch_root(out_dir: str) -> str:
    """``<out_dir>/.tmp``, or a folder in the system temp dir when tools could not reach that one."""
    from rewards.sandbox import capabilities

    inside = os.path.join(out_dir, ".tmp")
    if not (SandboxConfig().drop_privileges and capabilities()["drop_privileges"]):
        return inside
    path = os.path.realpath(out_dir)
    while True:  # every existing parent must let others through (o+x)
        try:
            if not os.stat(path).st_mode & 0o001:
                break
        except OSError:
            pass
        parent = os.path.dirname(path)
        if parent == path:
            return inside
        path = parent
    digest = hashlib.sha256(os.path.realpath(out_dir).encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"verirl-data-{digest}")


def _parse_test_stop(value: str) -> tuple[int, int] | None:
    if not value:
        return None
    count, _, name = value.partition(":")
    try:
        n = int(count)
        sig = getattr(signal, "SIG" + (name or "KILL").upper().removeprefix("SIG"))
    except (ValueError, AttributeError):
        raise ValueError(f"{TEST_STOP_ENV}={value!r}: expected N or N:SIGNAL (e.g. 1:INT)") from None
    if n < 1:
        raise ValueError(f"{TEST_STOP_ENV}={value!r}: N must be >= 1")
    return n, int(sig)
