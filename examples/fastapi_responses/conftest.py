"""Drive the example API in-process: httpx's ASGI transport, one event loop per test."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the fastapi_responses example needs pip install -e '.[examples]'")
httpx = pytest.importorskip("httpx", reason="the fastapi_responses example needs pip install -e '.[examples]'")

from autus_api.main import create_app  # noqa: E402

#: The load test's request mix from the report (GET path or POST, weight in percent).
REQUEST_MIX: tuple[tuple[str, str, int], ...] = (
    ("GET", "/analytics/stats", 37),
    ("GET", "/devices/list", 26),
    ("GET", "/analytics/pages", 17),
    ("GET", "/devices/online", 16),
    ("POST", "/analytics/track", 2),
    ("GET", "/cache/stats", 2),
)


@dataclass
class LoadResult:
    """What the simulated users saw: status codes and response times per request."""

    statuses: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def percentile_ms(self, fraction: float) -> float:
        ordered = sorted(self.seconds)
        return 1000 * ordered[max(0, int(fraction * len(ordered) + 0.5) - 1)]


class Api:
    """The application under test and an HTTP client on it, for one test's event loop."""

    def __init__(self, redis_url: str, **app_options: Any) -> None:
        self.app = create_app(redis_url, **app_options)
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://autus")

    @property
    def counters(self) -> Any:
        return self.app.state.cache.counters

    async def get(self, path: str) -> Any:
        response = await self.http.get(path)
        response.raise_for_status()
        return response.json()

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        response = await self.http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    async def seed(self, devices: int = 20) -> None:
        for index in range(devices):
            await self.post("/devices/register", {"name": f"device-{index}", "online": index % 3 != 0})
        await self.post("/analytics/track/page", {"page": "/home"})

    async def load(
        self, users: int = 30, requests_per_user: int = 20, think_s: tuple[float, float] = (0.05, 0.15), seed: int = 1
    ) -> LoadResult:
        """``users`` concurrent clients, each sending the report's mix with a think time between requests.

        The report's 30 users paused too (about 24 requests/s in all); the test's shorter pauses
        (about 150 requests/s with 0.1-0.3 s) keep it to seconds. Without pauses one event loop
        saturates and every await queues.
        """
        result = LoadResult()
        paths = [(method, path) for method, path, _ in REQUEST_MIX]
        weights = [weight for _, _, weight in REQUEST_MIX]

        async def user(number: int) -> None:
            rng = random.Random(seed * 1000 + number)
            for _ in range(requests_per_user):
                method, path = rng.choices(paths, weights)[0]
                started = perf_counter()
                if method == "GET":
                    response = await self.http.get(path)
                else:
                    response = await self.http.post(path, json={"name": f"click-{number}"})
                result.seconds.append(perf_counter() - started)
                result.statuses.append(response.status_code)
                await asyncio.sleep(rng.uniform(*think_s))

        await asyncio.gather(*(user(number) for number in range(users)))
        return result

    async def close(self) -> None:
        await self.http.aclose()
        await self.app.state.cache.close()


def run_api(redis_url: str, scenario: Callable[[Api], Awaitable[Any]], **app_options: Any) -> Any:
    """Run ``scenario`` against a fresh application (``create_app`` options) in a fresh event loop, then close both."""

    async def main() -> Any:
        api = Api(redis_url, **app_options)
        try:
            return await scenario(api)
        finally:
            await api.close()

    return asyncio.run(main())


@pytest.fixture
def api_run(cache_url: str) -> Callable[..., Any]:
    """``api_run(scenario, **create_app_options)``: drive a fresh application on this test's isolated Redis."""
    return functools.partial(run_api, cache_url)
