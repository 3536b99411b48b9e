"""``url`` backend: somebody else's server, with safety rails (SPEC section 8).

The plugin never runs FLUSHALL or FLUSHDB here, and deletes only what the run wrote
(``journal.WriteJournal``): never "everything in the database", even one that was empty at
start, since other clients may write there meanwhile. Each xdist worker uses its own database
number (the URL's database, from its path or ``?db=`` as redis-py reads it, + worker index).
A database that holds keys at start is refused unless ``--cache-allow-nonempty``; then the keys
present at start are remembered and never deleted. A database another cachecheck run holds
(its lease, ``journal.lease_holders``) is refused; the keys of a run that was killed are
deleted by the next run, from its journal.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio

from ..observe.instrument import intercepting, unobserved
from ..warning_types import LeftoverKeysWarning
from .base import ASYNC_POOL_SIZE, BackendError, ServerInfo, one_line
from .journal import WriteJournal, dead_journals, journaled_keys, lease_holders, live_lease_names

_BATCH = 500
_CONNECT_S = 5.0


def shown(url: str) -> str:
    """``url`` for messages and reports: a password is replaced by ``***`` (CI logs are often public)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def url_with_db(url: str, db: int) -> str:
    """The same server URL pointing at database ``db`` (and only there: a ``?db=`` is replaced)."""
    parts = urlsplit(url)
    query = {name: values for name, values in parse_qs(parts.query).items() if name != "db"}
    if parts.scheme == "unix":  # unix:///path/to.sock?db=N (urlunsplit would drop the empty authority)
        query["db"] = [str(db)]
        return f"unix://{parts.netloc}{parts.path}?{urlencode(query, doseq=True)}"
    return urlunsplit(parts._replace(path=f"/{db}", query=urlencode(query, doseq=True)))


def base_db(url: str) -> int:
    """The database redis-py's ``from_url`` uses for ``url``: ``?db=`` over the path, else 0.

    Unlike redis-py, a path or ``db`` that is not a database number is an error here, not db 0.
    """
    parts = urlsplit(url)
    query = parse_qs(parts.query).get("db")
    if query:
        text, where = query[-1], "?db="
    elif parts.scheme != "unix" and parts.path.strip("/"):
        text, where = parts.path.strip("/"), "path"
    else:
        return 0
    if not text.isdigit():
        raise BackendError(f"--cache-url {shown(url)}: the database ({where} {text!r}) must be a number 0, 1, 2, ...")
    return int(text)


def refusal(url: str, store: str, size: int, instead: str) -> BackendError:
    """The one-line error for a store that holds somebody's keys (SPEC section 8)."""
    return BackendError(
        f"--cache-url {shown(url)}: {store} holds {size} keys and the plugin never deletes data it did not "
        f"create; point --cache-url at {instead} or pass --cache-allow-nonempty (then only keys the "
        "run writes are deleted)"
    )


def unusable(url: str, exc: BaseException, what: str = "server") -> BackendError:
    """The one-line error for a server (or cluster) the run cannot use (closed port, password, TLS, database...)."""
    reason = f"{type(exc).__name__}: {one_line(str(exc))}"
    return BackendError(f"--cache-url {shown(url)}: cannot use that {what} ({reason})")


# What connecting to a URL can raise besides redis-py's own errors: a bad port or option (ValueError),
# a socket error that escaped redis-py's wrapping (OSError), a cluster error (not a RedisError).
CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    redis.RedisError,
    redis.exceptions.RedisClusterException,
    ValueError,
    TypeError,
    OSError,
)


def delete_keys(admin: Any, keys: list[bytes]) -> None:
    """UNLINK ``keys`` in batches, one round trip each (a pipeline on clusters: keys span slots)."""
    with unobserved():
        for index in range(0, len(keys), _BATCH):
            batch = keys[index : index + _BATCH]
            if isinstance(admin, redis.Redis):
                admin.unlink(*batch)
            else:
                pipe = admin.pipeline(transaction=False)
                for key in batch:
                    pipe.unlink(key)
                pipe.execute()


class UrlBackend:
    name = "url"

    def __init__(self, url: str, allow_nonempty: bool, worker: int = 0) -> None:
        self.base_url = url
        self.allow_nonempty = allow_nonempty
        self.worker = worker
        self.db = base_db(url) + worker
        self.url = url_with_db(url, self.db)
        self._admin: redis.Redis | None = None
        self._pool: redis.ConnectionPool | None = None
        self._journal: WriteJournal | None = None
        self._intercepting = contextlib.ExitStack()
        self._info: ServerInfo | None = None
        self._empty_at_start = False
        self._warned_leftovers = 0

    def _where(self) -> str:
        worker = f" (worker gw{self.worker}: the URL's database + {self.worker})" if self.worker else ""
        return f"database {self.db}{worker}"

    def start(self) -> ServerInfo:
        if self._info is not None:
            return self._info
        admin: redis.Redis | None = None
        try:
            with unobserved():
                # timeouts unless the URL sets its own: a TLS handshake with a plain port (redis-py 5)
                # or a silent firewall must be an error, never a hang
                timeouts = {"socket_connect_timeout": _CONNECT_S, "socket_timeout": _CONNECT_S}
                admin = redis.Redis.from_url(self.url, single_connection_client=True, **timeouts)
                version = str(admin.info("server").get("redis_version", "unknown"))
                info = self._claim(admin)
        except BackendError:
            if admin is not None:
                admin.close()
            raise
        except CONNECT_ERRORS as exc:
            if admin is not None:
                admin.close()
            if "DB index is out of range" in str(exc):
                raise BackendError(
                    f"--cache-url {shown(self.url)}: the server has no {self._where()}; run fewer xdist workers "
                    "(-n) or point --cache-url at a lower database number"
                ) from None
            raise unusable(self.url, exc) from None
        self._info = ServerInfo(self.name, self.url, info[0], info[1], version)
        return self._info

    def _claim(self, admin: redis.Redis) -> tuple[str, int]:
        """Take the lease, clean up after killed runs, check the database, start the journal."""
        size_before = int(admin.dbsize())
        journal = WriteJournal(self.base_url, self.db)
        admin.client_setname(journal.lease_name)
        holders = lease_holders(admin, journal.lease_name)
        if holders:
            journal.close()
            raise BackendError(
                f"--cache-url {shown(self.url)}: {self._where()} is in use by another pytest-cachecheck run "
                f"({holders[0]}); give each concurrent run its own database (another number in the URL) "
                "or run them one after another"
            )
        leases = live_lease_names(admin)
        for path in dead_journals(journal, leases):
            delete_keys(admin, journaled_keys(path))
            path.unlink(missing_ok=True)
        size = int(admin.dbsize())
        if size and not self.allow_nonempty:
            journal.close()
            note = f" (after deleting what a killed run left: {size_before - size} keys)" if size < size_before else ""
            raise refusal(self.url, f"database {self.db}{note}", size, "an empty database number")
        journal.preexisting = frozenset(admin.scan_iter(count=1000)) if size else frozenset()
        self._empty_at_start = not size
        self._admin, self._journal = admin, journal
        self._intercepting.enter_context(intercepting(journal))
        self._pool = redis.ConnectionPool.from_url(self.url)
        kwargs = admin.connection_pool.connection_kwargs
        return str(kwargs.get("host", kwargs.get("path", ""))), int(kwargs.get("port", 0) or 0)

    def url_for_test(self) -> str:
        return self.start().url

    def client(self, *, asyncio: bool = False) -> Any:
        """Sync clients share one pool (see ``ServerBackend.client``)."""
        self.start()
        if asyncio:
            pool = redis.asyncio.ConnectionPool.from_url(self.url, max_connections=ASYNC_POOL_SIZE)
            return redis.asyncio.Redis.from_pool(pool)
        return redis.Redis(connection_pool=self._pool)

    def reset(self, written_keys: Callable[[], set[str]]) -> None:
        """Delete what the run wrote since the last clean-up (the journal's keys), never a key that
        was there before the run nor one somebody else wrote.

        ``written_keys`` (the monitor's view) is not needed: the journal saw every observed write,
        before and after ``cache_monitor.reset()``, from every thread. On a database that was empty
        at start, keys still there afterwards were written behind the observer's back (a script's
        undeclared keys, an unobserved client, another process): they stay, with a warning.
        """
        admin, journal = self._admin, self._journal
        if admin is None or journal is None:
            return
        delete_keys(admin, journal.take())
        journal.cleaned()
        if self._empty_at_start:
            with unobserved():
                left = int(admin.dbsize())
            if left > self._warned_leftovers:
                warnings.warn(
                    LeftoverKeysWarning(
                        f"--cache-url {shown(self.url)}: {left} keys in database {self.db} were not written by an "
                        "observed command of this run (a script's keys not declared in KEYS, an unobserved "
                        "client, or another process); the plugin left them in place"
                    ),
                    stacklevel=2,
                )
                self._warned_leftovers = left

    def stop(self) -> None:
        self._intercepting.close()
        if self._admin is not None:
            if self._journal is not None:
                with contextlib.suppress(*CONNECT_ERRORS):
                    delete_keys(self._admin, self._journal.take())
                    self._journal.close()  # kept when the last clean-up failed: the next run finishes it
            self._admin.close()
            self._admin = None
        self._journal = None
        if self._pool is not None:
            self._pool.disconnect()
            self._pool = None
        self._info = None
