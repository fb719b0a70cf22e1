"""Stopping a long command cleanly: a signal becomes an exception in the main thread, so the command can save
what it has, print one line saying how to resume, and exit with ``128 + signal``."""

from __future__ import annotations

import signal
import threading


class Stopped(BaseException):
    """A stop signal arrived while a command was working (``signame``: ``"SIGTERM"``, ``"SIGINT"``)."""

    def __init__(self, signame: str):
        super().__init__(signame)
        self.signame = signame


class stop_on_signals:
    """While the block runs, each of ``signals`` raises :class:`Stopped` in the main thread; the previous handlers
    are restored on exit. Outside the main thread (where handlers cannot be set) it does nothing."""

    def __init__(self, *signals: signal.Signals):
        self.signals = signals or (signal.SIGTERM,)
        self._saved: dict = {}

    def __enter__(self):
        self._saved = {}
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._saved[sig] = signal.signal(sig, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise Stopped(signal.Signals(signum).name)

    def __exit__(self, *exc_info) -> bool:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        return False
