"""The API: cached GET endpoints with the report's TTLs, and POSTs that invalidate by pattern."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel

from .cache import KEY_PREFIX, CacheConfig, ResponseCache, cached_response
from .store import Store

# Categories: responses are cached under ``autus:<category>:<path>``; a POST invalidates
# ``autus:<category>:*`` for the categories in the report's invalidation table.
ANALYTICS = "analytics"
DEVICES = "devices"
GOD = "god"
TWIN = "twin"
HEALTH = "health"


class PageView(BaseModel):
    page: str


class TrackedEvent(BaseModel):
    name: str


class Device(BaseModel):
    name: str
    online: bool = True


class DeviceData(BaseModel):
    name: str
    online: bool


def create_app(
    redis_url: str,
    store: Store | None = None,
    *,
    checked_fills: bool = True,
    single_flight: bool = False,
    key_prefix: str = KEY_PREFIX,
) -> FastAPI:
    """One application instance; ``app.state.cache`` and ``app.state.store`` are there for tests.

    The Redis client is created here, not in the lifespan, so that in-process drivers
    (httpx's ASGI transport does not run lifespans) get a working cache too.
    ``checked_fills=False`` builds the report's racy fill (see ``cached_response``);
    ``single_flight=True`` adds a ``SET NX`` lease per cold response (the report's has none).
    """
    response_cache = ResponseCache(redis_url, prefix=key_prefix)

    def cache() -> ResponseCache:
        return response_cache

    cached = functools.partial(cached_response, cache, checked_fill=checked_fills, single_flight=single_flight)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await response_cache.close()

    app = FastAPI(lifespan=lifespan)
    app.state.cache = response_cache
    data = app.state.store = store or Store()

    @app.get("/analytics/stats")
    @cached(ANALYTICS, CacheConfig.ANALYTICS_STATS)
    async def analytics_stats(*, request: Request) -> dict[str, Any]:
        return await data.analytics_stats()

    @app.get("/analytics/pages")
    @cached(ANALYTICS, CacheConfig.ANALYTICS_STATS)
    async def analytics_pages(*, request: Request) -> dict[str, Any]:
        return await data.analytics_pages()

    @app.get("/analytics/api-calls")
    @cached(ANALYTICS, CacheConfig.ANALYTICS_STATS)
    async def analytics_api_calls(*, request: Request) -> dict[str, Any]:
        return await data.analytics_api_calls()

    @app.get("/analytics/events")
    @cached(ANALYTICS, CacheConfig.ANALYTICS_EVENTS)
    async def analytics_events(*, request: Request) -> dict[str, Any]:
        return await data.analytics_events()

    @app.get("/devices/list")
    @cached(DEVICES, CacheConfig.DEVICES)
    async def devices_list(*, request: Request) -> dict[str, Any]:
        return await data.device_list()

    @app.get("/devices/online")
    @cached(DEVICES, CacheConfig.DEVICES_ONLINE)
    async def devices_online(*, request: Request) -> dict[str, Any]:
        return await data.devices_online()

    @app.get("/devices/get/{name}")
    @cached(DEVICES, CacheConfig.DEVICES)
    async def devices_get(name: str, *, request: Request) -> dict[str, Any]:
        return await data.device(name)

    @app.get("/devices/stats")
    @cached(DEVICES, CacheConfig.DEVICE_STATS)
    async def devices_stats(*, request: Request) -> dict[str, Any]:
        return await data.device_stats()

    @app.get("/digital-twin/list")
    @cached(TWIN, CacheConfig.DIGITAL_TWIN)
    async def twin_list(*, request: Request) -> dict[str, Any]:
        return await data.twin_list()

    @app.get("/digital-twin/get/{name}")
    @cached(TWIN, CacheConfig.DIGITAL_TWIN)
    async def twin_get(name: str, *, request: Request) -> dict[str, Any]:
        return await data.twin(name)

    @app.get("/god/overview")
    @cached(GOD, CacheConfig.GOD)
    async def god_overview(*, request: Request) -> dict[str, Any]:
        return {"analytics": await data.analytics_stats(), "devices": await data.device_stats()}

    @app.get("/health")
    @cached(HEALTH, CacheConfig.HEALTH)
    async def health(*, request: Request) -> dict[str, Any]:
        return {"status": "ok"}

    @app.post("/analytics/track")
    async def track(event: TrackedEvent) -> dict[str, Any]:
        data.events.append({"name": event.name})
        await cache().invalidate(ANALYTICS, GOD)
        return {"tracked": len(data.events)}

    @app.post("/analytics/track/page")
    async def track_page(view: PageView) -> dict[str, Any]:
        data.page_views[view.page] = data.page_views.get(view.page, 0) + 1
        await cache().invalidate(ANALYTICS)
        return {"page": view.page, "views": data.page_views[view.page]}

    @app.post("/devices/register")
    async def register(device: Device) -> dict[str, Any]:
        data.devices[device.name] = {"name": device.name, "online": device.online}
        await cache().invalidate(DEVICES, GOD)
        return data.devices[device.name]

    @app.post("/devices/data")
    async def device_data(update: DeviceData) -> dict[str, Any]:
        data.devices.setdefault(update.name, {"name": update.name, "online": update.online})["online"] = update.online
        await cache().invalidate(DEVICES)
        return data.devices[update.name]

    @app.post("/devices/delete")
    async def delete(device: Device) -> dict[str, Any]:
        removed = data.devices.pop(device.name, None) is not None
        await cache().invalidate(DEVICES)
        return {"deleted": removed}

    @app.get("/cache/stats")
    async def cache_stats() -> dict[str, Any]:
        return cache().counters.as_dict()

    return app
