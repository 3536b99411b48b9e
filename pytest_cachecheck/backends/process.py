"""Child ``redis-server`` processes that never outlive the test run."""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from .base import BackendError, free_port, ping

_PR_SET_PDEATHSIG = 1
_live: set[RedisProcess] = set()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the kernel sends SIGKILL to the server if pytest dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


class RedisProcess:
    """One ``redis-server`` on a free loopback port, ready when the constructor returns."""

    def __init__(
        self,
        binary: str,
        extra_args: Sequence[str] = (),
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.binary = binary
        self.host = host
        self.directory = Path(tempfile.mkdtemp(prefix="cachecheck-redis-"))
        self.log_path = self.directory / "redis.log"
        self.extra_args = list(extra_args)
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        attempts = 1 if port else 3
        for attempt in range(attempts):
            self.port = port or free_port(host)
            if self._launch():
                return
            if "Address already in use" not in self.log_tail() or attempt == attempts - 1:
                break
        raise BackendError(self._failure_message())

    def command_line(self) -> list[str]:
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.directory),
            "--logfile",
            "",
            *self.extra_args,
        ]

    def _launch(self) -> bool:
        with open(self.log_path, "wb") as log:
            try:
                self.process = subprocess.Popen(
                    self.command_line(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                )
            except OSError as exc:
                raise BackendError(
                    f"--cache-server-bin: cannot run {self.binary!r} ({exc.strerror}); "
                    "install redis-server (e.g. apt-get install redis-server) or pass "
                    "--cache-server-bin /path/to/redis-server"
                ) from None
        _live.add(self)
        return self.wait_ready()

    def wait_ready(self) -> bool:
        """Poll PING (not a sleep): ready as soon as the server answers."""
        deadline = time.monotonic() + self.timeout
        delay = 0.0005
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                _live.discard(self)
                return False
            if ping(self.host, self.port):
                return True
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        self.stop()
        return False

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    def _failure_message(self) -> str:
        code = self.process.poll() if self.process is not None else None
        state = f"exited with code {code}" if code is not None else f"did not answer PING within {self.timeout:g} s"
        return f"redis-server {state}: {' '.join(self.command_line())}; its log: {self.log_tail() or '(empty)'}"

    def stop(self, *, keep_files: bool = False) -> None:
        """Terminate, then kill if it does not exit within 5 s; idempotent.

        The temporary directory goes too, unless ``keep_files`` (a real outage that
        ``restart`` ends, with the dump the server saved there).
        """
        process, self.process = self.process, None
        _live.discard(self)
        if process is not None and process.poll() is None:
            try:
                os.kill(process.pid, signal.SIGCONT)  # a server frozen by a fault must be able to exit
            except OSError:
                pass
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if not keep_files:
            shutil.rmtree(self.directory, ignore_errors=True)

    def restart(self) -> None:
        """Start again on the same port and directory (so with the data a SAVE left there)."""
        if self.process is not None:
            raise BackendError(f"redis-server on port {self.port} is still running; stop it first")
        if not self._launch():
            raise BackendError(self._failure_message())

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


def stop_all() -> None:
    """Stop every server this process started (session end, exit, SIGTERM)."""
    for process in list(_live):
        process.stop()


atexit.register(stop_all)
