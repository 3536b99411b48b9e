"""The slow source of truth the cache sits in front of (an analytics DB and a device registry)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Store:
    """In-memory data behind a simulated query latency, so cached and uncached paths differ."""

    query_delay_s: float = 0.002
    page_views: dict[str, int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    queries: int = 0

    async def query(self) -> None:
        self.queries += 1
        await asyncio.sleep(self.query_delay_s)

    async def analytics_stats(self) -> dict[str, Any]:
        await self.query()
        return {"events": len(self.events), "page_views": sum(self.page_views.values())}

    async def analytics_pages(self) -> dict[str, Any]:
        await self.query()
        return {"pages": dict(sorted(self.page_views.items()))}

    async def analytics_events(self) -> dict[str, Any]:
        await self.query()
        return {"events": self.events[-20:]}

    async def device_list(self) -> dict[str, Any]:
        await self.query()
        return {"devices": sorted(self.devices)}

    async def devices_online(self) -> dict[str, Any]:
        await self.query()
        return {"online": sorted(name for name, device in self.devices.items() if device["online"])}

    async def device(self, name: str) -> dict[str, Any]:
        await self.query()
        return {"device": self.devices.get(name)}

    async def device_stats(self) -> dict[str, Any]:
        await self.query()
        online = sum(1 for device in self.devices.values() if device["online"])
        return {"total": len(self.devices), "online": online}
