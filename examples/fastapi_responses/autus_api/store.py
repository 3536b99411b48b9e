"""The slow source of truth the cache sits in front of (an analytics DB and a device registry)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


def _plant_twins() -> dict[str, dict[str, Any]]:
    """Digital twins are models maintained elsewhere: no route writes them, hence their 600 s TTL."""
    return {
        "boiler-1": {"name": "boiler-1", "model": "boiler", "setpoint_c": 65.0},
        "pump-1": {"name": "pump-1", "model": "pump", "flow_l_min": 120.0},
    }


@dataclass
class Store:
    """In-memory data behind a simulated query latency, so cached and uncached paths differ.

    Like a database's, an answer reflects the data when the query began and arrives
    ``query_delay_s`` later: a write in between is not in it.
    """

    query_delay_s: float = 0.002
    page_views: dict[str, int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    twins: dict[str, dict[str, Any]] = field(default_factory=_plant_twins)
    queries: int = 0

    async def answer(self, result: dict[str, Any]) -> dict[str, Any]:
        self.queries += 1
        await asyncio.sleep(self.query_delay_s)
        return result

    async def analytics_stats(self) -> dict[str, Any]:
        return await self.answer({"events": len(self.events), "page_views": sum(self.page_views.values())})

    async def analytics_pages(self) -> dict[str, Any]:
        return await self.answer({"pages": dict(sorted(self.page_views.items()))})

    async def analytics_api_calls(self) -> dict[str, Any]:
        return await self.answer({"calls": {"track": len(self.events), "track_page": sum(self.page_views.values())}})

    async def analytics_events(self) -> dict[str, Any]:
        return await self.answer({"events": self.events[-20:]})

    async def device_list(self) -> dict[str, Any]:
        return await self.answer({"devices": sorted(self.devices)})

    async def devices_online(self) -> dict[str, Any]:
        return await self.answer({"online": sorted(name for name, device in self.devices.items() if device["online"])})

    async def device(self, name: str) -> dict[str, Any]:
        device = self.devices.get(name)
        return await self.answer({"device": dict(device) if device is not None else None})

    async def device_stats(self) -> dict[str, Any]:
        online = sum(1 for device in self.devices.values() if device["online"])
        return await self.answer({"total": len(self.devices), "online": online})

    async def twin_list(self) -> dict[str, Any]:
        return await self.answer({"twins": sorted(self.twins)})

    async def twin(self, name: str) -> dict[str, Any]:
        twin = self.twins.get(name)
        return await self.answer({"twin": dict(twin) if twin is not None else None})
