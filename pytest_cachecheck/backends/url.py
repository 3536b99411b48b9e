"""``url`` backend: somebody else's server, with safety rails (SPEC section 8).

The plugin never runs FLUSHALL or FLUSHDB here. Each xdist worker uses its own database
number (the URL's database + worker index). A database that holds keys at start is
refused unless ``--cache-allow-nonempty``; then the keys present at start are
remembered and never deleted, and only keys the run wrote are removed after each test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio

from ..observe.commands import sent_key_bytes
from ..observe.instrument import unobserved
from .base import BackendError, ServerInfo

_BATCH = 500


def url_with_db(url: str, db: int) -> str:
    """The same server URL pointing at database ``db``."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = parse_qs(parts.query)
        query["db"] = [str(db)]
        return urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
    return urlunsplit(parts._replace(path=f"/{db}"))


def base_db(url: str) -> int:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return int(parse_qs(parts.query).get("db", ["0"])[0])
    path = parts.path.strip("/")
    return int(path) if path.isdigit() else 0


def refusal(url: str, store: str, size: int, instead: str) -> BackendError:
    """The one-line error for a store that holds somebody's keys (SPEC section 8)."""
    return BackendError(
        f"--cache-url {url}: {store} holds {size} keys and the plugin never deletes data it did not "
        f"create; point --cache-url at {instead} or pass --cache-allow-nonempty (then only keys the "
        "run writes are deleted)"
    )


class UrlBackend:
    name = "url"

    def __init__(self, url: str, allow_nonempty: bool, worker: int = 0) -> None:
        self.base_url = url
        self.allow_nonempty = allow_nonempty
        self.db = base_db(url) + worker
        self.url = url_with_db(url, self.db)
        self._admin: redis.Redis | None = None
        self._pool: redis.ConnectionPool | None = None
        self._preexisting: frozenset[bytes] = frozenset()
        self._info: ServerInfo | None = None

    def start(self) -> ServerInfo:
        if self._info is not None:
            return self._info
        admin = redis.Redis.from_url(self.url, single_connection_client=True)
        try:
            with unobserved():
                version = str(admin.info("server").get("redis_version", "unknown"))
                size = int(admin.dbsize())
                existing = frozenset(admin.scan_iter(count=1000)) if size and self.allow_nonempty else frozenset()
        except redis.RedisError as exc:
            admin.close()
            raise BackendError(f"--cache-url {self.url}: cannot use that server ({exc})") from None
        if size and not self.allow_nonempty:
            admin.close()
            raise refusal(self.url, f"database {self.db}", size, "an empty database number")
        self._admin, self._preexisting = admin, existing
        self._pool = redis.ConnectionPool.from_url(self.url)
        kwargs = admin.connection_pool.connection_kwargs
        host = str(kwargs.get("host", kwargs.get("path", "")))
        self._info = ServerInfo(self.name, self.url, host, int(kwargs.get("port", 0) or 0), version)
        return self._info

    def url_for_test(self) -> str:
        return self.start().url

    def client(self, *, asyncio: bool = False) -> Any:
        """Sync clients share one pool (see ``ServerBackend.client``)."""
        self.start()
        if asyncio:
            return redis.asyncio.Redis.from_pool(redis.asyncio.ConnectionPool.from_url(self.url))
        return redis.Redis(connection_pool=self._pool)

    def reset(self, written_keys: Callable[[], set[str]]) -> None:
        """Delete what the test wrote, never a key that was there before the run.

        With a database that was empty at start everything in it was created by this
        run, so keys written behind the observer's back (Lua, other processes) go too.
        Otherwise only the written keys go, as the bytes sent (also when not UTF-8),
        including those written before the test called ``cache_monitor.reset()``.
        """
        admin = self._admin
        if admin is None:
            return
        with unobserved():
            if self.allow_nonempty:
                doomed = [key for key in map(sent_key_bytes, written_keys()) if key not in self._preexisting]
            else:
                doomed = list(admin.scan_iter(count=1000)) if admin.dbsize() else []
            for index in range(0, len(doomed), _BATCH):
                admin.unlink(*doomed[index : index + _BATCH])

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._pool is not None:
            self._pool.disconnect()
            self._pool = None
        self._info = None
