"""Child ``redis-server`` processes that never outlive the test run."""

from __future__ import annotations

import atexit
import ctypes
import functools
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

from .base import BackendError, free_port, ping, process_alive, process_started

_PR_SET_PDEATHSIG = 1
_PORT_ATTEMPTS = 3
DIR_PREFIX = "cachecheck-redis-"
_SERVER_PID_FILE = "server.pid"
_live: set[RedisProcess] = set()
_swept = False


def _load_libc() -> Any:
    """Loaded in the parent: ``dlopen`` between fork and exec may deadlock when pytest has threads."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)  # the C library the interpreter runs on (glibc or musl)
    except OSError:
        return None


_LIBC = _load_libc()


def _die_with_parent(parent: int) -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the kernel sends SIGKILL to the server if pytest dies, even by SIGKILL.

    A parent that died between the fork and the ``prctl`` sends no signal (the child was
    re-parented already): then the child leaves at once instead of starting an orphan server.
    """
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


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


def _owned_dir() -> Path:
    """A fresh work directory whose name says who owns it: ``cachecheck-redis-PID-STARTED-XXXXXXXX``.

    In the name, not in a file written afterwards, so that no sweep ever sees one of a live
    run without its owner (mkdtemp creates it atomically, owner included).
    """
    pid = os.getpid()
    return Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{pid}-{process_started(pid) or 0}-"))


def _dir_owner(directory: Path) -> tuple[int, str] | None:
    """(pid, start time) from the directory's name; None for a name this scheme did not make."""
    parts = directory.name[len(DIR_PREFIX) :].split("-")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), "" if parts[1] == "0" else parts[1]


def _our_server_in(directory: Path) -> int | None:
    """The pid in ``server.pid`` if that very process (same pid, same start time) still runs."""
    try:
        pid_text, started = (directory / _SERVER_PID_FILE).read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):  # never written (killed right after the fork), or no start time known
        return None
    return pid if process_started(pid) == started else None


def sweep_dead_runs(root: str | None = None) -> int:
    """Remove the work directories (and stop the servers) that runs killed by SIGKILL left behind.

    Only where the owner named in the directory is gone; a live owner's directory, or one
    whose owner cannot be told, is never touched. A server is stopped only when it is still
    the process started there (same pid and start time), e.g. where no parent-death signal exists.
    Returns how many directories were removed.
    """
    removed = 0
    for directory in Path(root or tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"):
        owner = _dir_owner(directory)
        if owner is None or process_alive(*owner) or not directory.is_dir():
            continue
        server = _our_server_in(directory)
        if server is not None:
            try:
                os.kill(server, signal.SIGKILL)  # no persistence: nothing of its data is wanted
            except OSError:
                pass
        shutil.rmtree(directory, ignore_errors=True)
        removed += 1
    return removed


def _sweep_once() -> None:
    """Once per pytest process, before its first server: a dead run's leftovers never pile up."""
    global _swept
    if not _swept:
        _swept = True
        sweep_dead_runs()


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
        _sweep_once()
        self.directory = _owned_dir()
        self.log_path = self.directory / "redis.log"
        self.extra_args = list(extra_args)
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._port_given = port is not None
        self.port = port or free_port(host)
        _live.add(self)  # from here on a signal's stop_all removes the directory, also before the spawn
        try:
            self._spawn()
        except BackendError:
            self.stop()  # nothing ran: nothing of ours to keep
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
                    preexec_fn=functools.partial(_die_with_parent, os.getpid()) if _LIBC is not None else None,
                )
            except OSError as exc:
                raise BackendError(
                    f"--cache-server-bin: cannot run {self.binary!r} ({exc.strerror}); "
                    "install redis-server (e.g. apt-get install redis-server) or pass "
                    "--cache-server-bin /path/to/redis-server"
                ) from None
        _live.add(self)
        pid = self.process.pid
        (self.directory / _SERVER_PID_FILE).write_text(f"{pid} {process_started(pid)}\n")

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
