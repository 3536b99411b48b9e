"""Child ``redis-server`` processes that never outlive the test run."""

from __future__ import annotations

import atexit
import ctypes
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, NoReturn

from .base import BackendError, free_port, ping

_PR_SET_PDEATHSIG = 1
_PORT_ATTEMPTS = 3
_live: set[RedisProcess] = set()


def _load_libc() -> Any:
    """Loaded in the parent: ``dlopen`` between fork and exec may deadlock when pytest has threads."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)  # the C library the interpreter runs on (glibc or musl)
    except OSError:
        return None


_LIBC = _load_libc()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the kernel sends SIGKILL to the server if pytest dies, even by SIGKILL."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class _Spawner:
    """Forks every server from one daemon thread that lives as long as the pytest process.

    The parent-death signal fires when the *thread* that forked the child ends, not the
    process (prctl(2)): a server forked from a short-lived thread, e.g. a real outage
    ended inside a test's worker thread, would be SIGKILLed as soon as that thread returned.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Callable[[], None], Future[None]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, spawn: Callable[[], None]) -> None:
        """Run ``spawn`` on the spawner thread and wait for it; its exception is raised here."""
        done: Future[None] = Future()
        self._requests.put((spawn, done))
        self._ensure_thread()
        done.result()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # none yet, or we are a forked child
                self._thread = threading.Thread(target=self._serve, name="cachecheck-spawner", daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        while True:
            spawn, done = self._requests.get()
            try:
                spawn()
            except BaseException as exc:  # handed to the waiting caller
                done.set_exception(exc)
            else:
                done.set_result(None)


_spawner = _Spawner()


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
        wait: bool = True,
    ) -> None:
        """Spawn the server; with ``wait=False`` return at once and let the caller ``await_ready()``,
        so that several servers start in parallel."""
        self.binary = binary
        self.host = host
        self.directory = Path(tempfile.mkdtemp(prefix="cachecheck-redis-"))
        self.log_path = self.directory / "redis.log"
        self.extra_args = list(extra_args)
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._port_given = port is not None
        self.port = port or free_port(host)
        try:
            self._spawn()
        except BackendError:
            shutil.rmtree(self.directory, ignore_errors=True)  # nothing ran: nothing of ours to keep
            raise
        if wait:
            self.await_ready()

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

    def _spawn(self) -> None:
        """Forked on the spawner thread, so the parent-death signal is tied to a thread that never ends early."""
        _spawner.run(self._popen)

    def _popen(self) -> None:
        with open(self.log_path, "wb") as log:
            try:
                self.process = subprocess.Popen(
                    self.command_line(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    preexec_fn=_die_with_parent if _LIBC is not None else None,
                )
            except OSError as exc:
                raise BackendError(
                    f"--cache-server-bin: cannot run {self.binary!r} ({exc.strerror}); "
                    "install redis-server (e.g. apt-get install redis-server) or pass "
                    "--cache-server-bin /path/to/redis-server"
                ) from None
        _live.add(self)

    def await_ready(self) -> None:
        """Wait until it answers PING; a free port taken by someone else meanwhile is retried on new ones."""
        attempts_left = 1 if self._port_given else _PORT_ATTEMPTS
        while not self._answers_ping():
            attempts_left -= 1
            if not attempts_left or "Address already in use" not in self.log_tail():
                self._fail()
            self.stop(keep_files=True)
            self.port = free_port(self.host)
            self._spawn()

    def _answers_ping(self) -> bool:
        """Poll PING (not a sleep): True as soon as the server answers, False when it exits or times out."""
        deadline = time.monotonic() + self.timeout
        delay = 0.0005
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            if ping(self.host, self.port):
                return True
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        return False

    def _fail(self) -> NoReturn:
        """The message is read before ``stop`` removes the log with the directory."""
        message = self._failure_message()
        self.stop()
        raise BackendError(message)

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
        self._spawn()
        if not self._answers_ping():
            self._fail()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


def stop_all() -> None:
    """Stop every server this process started (session end, exit, SIGTERM)."""
    for process in list(_live):
        process.stop()


atexit.register(stop_all)
