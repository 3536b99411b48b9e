"""What a run wrote on somebody else's server: the only keys the ``url`` backends may delete (SPEC 8).

Clean-up on a shared server must never rest on "everything in the database is ours": other
clients write there too, during the run and between runs. So the run keeps its own record:

* an in-memory set of the keys each observed write created or changed (``after`` the reply:
  a ``SET NX`` that did not set, a ``RENAMENX`` that did not rename, wrote nothing), filled by a
  run-wide interceptor on the observation path, whatever the test did with ``cache_monitor``
  and from whichever thread; clean-up after each test deletes exactly those, minus the keys
  that were there when the run started;
* the same keys appended to a journal file, one write per new key, so that a run killed
  between two clean-ups (SIGKILL, ``os._exit``) leaves a list the next run can clean by:
  its keys are known to be the dead run's, nobody else's;
* a lease: the run's admin connection is named ``cachecheck-<run>`` (``CLIENT SETNAME``), so
  a second run on the same database, from this machine or another, sees it in ``CLIENT
  LIST`` and refuses to share the database instead of deleting the first run's keys under
  it. The lease needs no key and dies with the connection, so a crash cannot leave it held.

The same interceptor refuses the commands that would reach data outside the run's
database or delete data the run did not write: ``FLUSHALL``, ``FLUSHDB``, ``SWAPDB``,
``SELECT`` of another database, ``MOVE`` and ``COPY ... DB``. It costs one dictionary look-up
per observed command, and one file write per newly written key.
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from hashlib import sha1
from pathlib import Path
from typing import Any

import redis

from ..interception import Interceptor
from ..observe.commands import may_write, sent_key_bytes, spec_name, word, written_key_texts
from ..own_commands import unobserved
from .base import process_alive

LEASE_PREFIX = "cachecheck-"
# Replies that mean a conditional write did not happen (SET NX -> nil, SETNX/HSETNX/MSETNX/RENAMENX -> 0).
_CONDITIONAL = frozenset({"SET", "SETNX", "HSETNX", "MSETNX", "RENAMENX"})
_FLUSHES = frozenset({"FLUSHALL", "FLUSHDB", "SWAPDB"})
_GUARDED = _FLUSHES | {"SELECT", "MOVE", "COPY"}
_CLEANED = b"-\n"  # journal line: every key above was deleted by the run itself


class RefusedCommand(redis.ResponseError):
    """A command the ``url`` backend does not let the code under test send: it would delete or move
    data that the run did not create, or leave the run's database."""


def journal_dir(server: str, db: int) -> Path:
    """Where runs on this machine journal their writes to database ``db`` of ``server``."""
    digest = sha1(server.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "pytest-cachecheck-url" / f"{digest}-db{db}"


class WriteJournal(Interceptor):
    """The run's written keys on one database (see the module docstring)."""

    def __init__(self, server: str, db: int, preexisting: frozenset[bytes] = frozenset()) -> None:
        self.db = db
        self.run_id = uuid.uuid4().hex[:12]
        self.lease_name = f"{LEASE_PREFIX}{self.run_id}-db{db}"
        self.preexisting = preexisting
        self._written: set[bytes] = set()
        self._lock = threading.Lock()
        self.directory = journal_dir(server, db)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{os.getpid()}-{self.run_id}.keys"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    # -- the observation path
    def before(self, commands: list[tuple[Any, ...]]) -> None:
        __tracebackhide__ = True
        for args in commands:
            reason = self._refusal(args)
            if reason is not None:
                raise RefusedCommand(f"pytest-cachecheck (url backend): {reason}")

    def _refusal(self, args: tuple[Any, ...]) -> str | None:
        name = spec_name(args)
        if name not in _GUARDED:
            return None
        if name in _FLUSHES:
            return (
                f"{name} refused: this database is shared, and the run may delete only keys it wrote; "
                "delete your keys by name, or use --cache-backend fake/server for tests that flush"
            )
        if name == "SELECT" and len(args) > 1 and word(args[1]) != str(self.db):
            return f"SELECT {word(args[1])} refused: the run's database is {self.db}; keep clients on it"
        if name == "MOVE" or (name == "COPY" and any(word(arg) == "DB" for arg in args[3:])):
            return f"{name} to another database refused: the run's database is {self.db}"
        return None

    def after(self, args: tuple[Any, ...], reply: Any) -> None:
        if not may_write(args) or (reply in (None, 0) and spec_name(args) in _CONDITIONAL):
            return
        keys = written_key_texts(args)
        fresh = [key for key in map(sent_key_bytes, keys) if key not in self._written and key not in self.preexisting]
        if fresh:
            with self._lock:
                self._written.update(fresh)
                os.write(self._fd, b"".join(key.hex().encode() + b"\n" for key in fresh))

    # -- clean-up
    def take(self) -> list[bytes]:
        """The keys written since the last ``take``, for clean-up (then call ``cleaned``)."""
        with self._lock:
            taken, self._written = list(self._written), set()
        return taken

    def cleaned(self) -> None:
        """The keys taken so far are deleted: a later recovery must not delete them again (somebody
        may have written a key of that name since)."""
        with self._lock:
            os.write(self._fd, _CLEANED)

    def close(self) -> None:
        """The run ended and cleaned up: its journal is no longer needed."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.path.unlink(missing_ok=True)


def lease_holders(admin: redis.Redis, own_name: str) -> list[str] | None:
    """Other cachecheck runs holding a lease on the admin's database that took it before this one
    (lower client id: of two runs starting at once, the first keeps the database), as
    ``"name from addr"``; None when the server does not let this client list clients (then only
    the journals of runs on this machine protect the database)."""
    try:
        with unobserved():
            own_id = int(admin.client_id())
            clients = admin.client_list()
    except redis.ResponseError:
        return None
    suffix = f"-db{admin.connection_pool.connection_kwargs.get('db', 0)}"
    return [
        f"{client.get('name')} from {client.get('addr')}"
        for client in clients
        if str(client.get("name", "")).startswith(LEASE_PREFIX)
        and str(client.get("name", "")).endswith(suffix)
        and client.get("name") != own_name
        and int(client.get("id", 0)) < own_id
    ]


def live_lease_names(admin: redis.Redis) -> set[str] | None:
    """Every cachecheck lease held on the server right now; None when clients cannot be listed."""
    try:
        with unobserved():
            return {str(c.get("name")) for c in admin.client_list() if str(c.get("name", "")).startswith(LEASE_PREFIX)}
    except redis.ResponseError:
        return None


def dead_journals(journal: WriteJournal, leases: set[str] | None) -> list[Path]:
    """Journals of earlier runs on the same database that ended without cleaning up: their
    process is gone, or its pid was reused and the run's lease is no longer held."""
    dead = []
    for path in sorted(journal.directory.glob("*.keys")):
        if path == journal.path:
            continue
        pid_text, _, run_id = path.stem.partition("-")
        alive = pid_text.isdigit() and process_alive(int(pid_text), "")
        if alive and leases is not None:
            alive = any(name.startswith(f"{LEASE_PREFIX}{run_id}-") for name in leases)
        if not alive:
            dead.append(path)
    return dead


def journaled_keys(path: Path) -> list[bytes]:
    """The keys a journal lists after its run's last clean-up (a half-written last line from a
    kill is skipped)."""
    keys: list[bytes] = []
    for line in path.read_bytes().splitlines(keepends=True):
        if line == _CLEANED:
            keys = []
            continue
        if not line.endswith(b"\n"):
            continue
        try:
            keys.append(bytes.fromhex(line[:-1].decode("ascii")))
        except ValueError:
            continue
    return keys
