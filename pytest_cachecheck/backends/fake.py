"""``fake`` backend: fakeredis in-process, plus the same data over loopback TCP for ``cache_url``."""

from __future__ import annotations

import threading
from typing import Any

import fakeredis
import redis

from ..observe import fake_server
from ..own_commands import unobserved
from .base import ASYNC_POOL_SIZE, ServerInfo

# What fakeredis's own connection raises for an error reply (redis-py's parser raises them).
_ERROR_REPLIES = (redis.ResponseError, redis.AuthenticationError)


def _handler(base: Any) -> type:
    """fakeredis's TCP request handler, with two fixes the plugin relies on.

    Replies are written in pieces: without TCP_NODELAY, Nagle's algorithm and the client's
    delayed ACK stall every pipeline by ~40 ms. And an error reply (``WRONGTYPE``, ``NOSCRIPT``,
    a script's error) keeps the connection open, as a real server does: fakeredis before 2.41
    wrote the error and then closed the connection, so the client's next command on it failed
    with "Connection closed by server" whenever it came before the pool noticed (redis-py's
    ``Script`` retries ``EVALSHA`` after ``NOSCRIPT`` on the same connection). The error is
    handed back as the reply instead of raised; 2.41 does the same itself. Costs nothing on
    the command path but a ``try``.
    """

    class Handler(base):  # type: ignore[misc, valid-type]
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            connection = self.current_client
            read_response = connection.read_response
            if getattr(read_response, "_cachecheck_keeps_errors", False):  # the same client address again
                return

            def keep_serving(*args: Any, **kwargs: Any) -> Any:
                try:
                    return read_response(*args, **kwargs)
                except _ERROR_REPLIES as error:
                    return error

            keep_serving._cachecheck_keeps_errors = True  # type: ignore[attr-defined]
            connection.read_response = keep_serving

    Handler.__name__ = Handler.__qualname__ = "CacheCheckHandler"
    return Handler


class FakeBackend:
    """One ``fakeredis.FakeServer`` per process (so per xdist worker): zero set-up, no ports.

    The server carries the plugin's view of what it executes (``observe.fake_server``):
    server-side counters and ``INFO``, as a real server has, scripts included.
    """

    name = "fake"

    def __init__(self) -> None:
        self.server: fakeredis.FakeServer | None = None
        self._tcp: fakeredis.TcpFakeServer | None = None
        self._tcp_thread: threading.Thread | None = None
        self._admin: fakeredis.FakeRedis | None = None
        self.server_view: fake_server.ServerView | None = None

    def start(self) -> ServerInfo:
        """The in-process server, also served over TCP so ``cache_server.url``/``host``/``port`` are usable."""
        server = self._server()
        version = ".".join(str(part) for part in server.version)
        url = self.url_for_test()
        assert self._tcp is not None
        host, port = self._tcp.server_address[:2]
        return ServerInfo(self.name, url, str(host), int(port), f"fakeredis {fakeredis.__version__} (redis {version})")

    def _server(self) -> fakeredis.FakeServer:
        if self.server is None:
            self.server = fakeredis.FakeServer()
            self.server_view = fake_server.attach(self.server)
            self._admin = fakeredis.FakeRedis(server=self.server)
        return self.server

    def url_for_test(self) -> str:
        """Serve the in-process data over real TCP on loopback, started on first use."""
        if self._tcp is None:
            tcp = fakeredis.TcpFakeServer(("127.0.0.1", 0))
            tcp.fake_server = self._server()  # type: ignore[assignment]  # serve the same data
            tcp.RequestHandlerClass = _handler(tcp.RequestHandlerClass)  # type: ignore[assignment]
            thread = threading.Thread(target=tcp.serve_forever, name="cachecheck-fakeredis-tcp", daemon=True)
            thread.start()
            self._tcp, self._tcp_thread = tcp, thread
        return self._tcp_url()

    def _tcp_url(self) -> str:
        assert self._tcp is not None
        host, port = self._tcp.server_address[:2]
        return f"redis://{host!s}:{port}/0"

    def client(self, *, asyncio: bool = False) -> Any:
        """Sync clients share one pool (a new pool per client costs ~0.3 ms a test)."""
        if asyncio:
            return fakeredis.FakeAsyncRedis(server=self._server(), max_connections=ASYNC_POOL_SIZE)
        self._server()
        assert self._admin is not None
        return fakeredis.FakeRedis(connection_pool=self._admin.connection_pool)

    def reset(self) -> None:
        """Our own server: dropping every database is safe and O(1) for the test."""
        if self._admin is not None:
            with unobserved():
                self._admin.flushall()

    def stop(self) -> None:
        tcp, self._tcp = self._tcp, None
        if tcp is not None:
            tcp.shutdown()
            tcp.server_close()
        self.server = None
        self.server_view = None
        self._admin = None
