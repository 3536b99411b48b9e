"""``server`` backend: a real ``redis-server`` child process per pytest (xdist worker) process."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio

from ..own_commands import unobserved
from .base import ASYNC_POOL_SIZE, ServerInfo, admin_client
from .process import RedisProcess


class ServerBackend:
    """Started lazily on first use, no persistence, stopped at session end or with its parent."""

    name = "server"

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.process: RedisProcess | None = None
        self._admin: redis.Redis | None = None
        self._pool: redis.ConnectionPool | None = None
        self._info: ServerInfo | None = None

    def start(self) -> ServerInfo:
        if self._info is None:
            self.process = RedisProcess(self.binary)
            host, port = self.process.host, self.process.port
            self._admin = admin_client(host, port)
            self._pool = redis.ConnectionPool(host=host, port=port)
            with unobserved():
                version = str(self._admin.info("server").get("redis_version", "unknown"))
            self._info = ServerInfo(self.name, f"redis://{host}:{port}/0", host, port, version)
        return self._info

    def url_for_test(self) -> str:
        return self.start().url

    def client(self, *, asyncio: bool = False) -> Any:
        """Sync clients share one pool: redis-py's ``Redis()`` without a pool costs ~2.5 ms."""
        info = self.start()
        if asyncio:
            pool = redis.asyncio.ConnectionPool(host=info.host, port=info.port, max_connections=ASYNC_POOL_SIZE)
            return redis.asyncio.Redis.from_pool(pool)
        return redis.Redis(connection_pool=self._pool)

    def reset(self) -> None:
        """The server is ours, so FLUSHALL on one kept-open connection: a single round trip."""
        if self._admin is not None:
            with unobserved():
                self._admin.flushall()

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._pool is not None:
            self._pool.disconnect()
            self._pool = None
        if self.process is not None:
            self.process.stop()
            self.process = None
        self._info = None
