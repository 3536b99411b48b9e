"""requests-cache (Redis backend): response hits and misses match the server's, on fake and server.

Responses are plain keys (``GET``/``SETEX <namespace>:<hash>``). Every miss also looks up the
redirects hash (``HGET <namespace>-redirects <hash>``), a real keyspace miss on both sides: a
hit-rate target over all keys is diluted by it; scope it with ``pattern="<namespace>:*"`` for the
response cache's own rate.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis

requests_cache = pytest.importorskip("requests_cache")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    """A real HTTP server on loopback whose responses requests-cache stores."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def session(either_redis: Any) -> Iterator[Any]:
    connection = redis.Redis(host=either_redis.host, port=either_redis.port)
    backend = requests_cache.RedisCache(namespace="compat", connection=connection)
    cached = requests_cache.CachedSession(backend=backend, expire_after=300)
    yield cached
    cached.close()
    connection.close()


def test_response_hits_and_misses_equal_the_servers(
    session: Any, either_redis: Any, origin: str, cache_monitor: Any, workload: list[int]
) -> None:
    with either_redis.counting() as server:
        for page in workload:
            session.get(f"{origin}/page/{page}")

    responses = cache_monitor.stats("compat:*")
    everything = cache_monitor.stats()
    assert (responses.hits, responses.misses) == (180, 20)
    # each of the 20 misses also missed the redirects hash: 40 misses in all, as the server counts
    assert cache_monitor.stats("compat-redirects").misses == 20
    assert (everything.hits, everything.misses) == (server.hits, server.misses) == (180, 40)
