"""Isolated Redis providers behind one protocol (see ``base.Backend``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Backend, BackendError, ServerInfo

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["Backend", "BackendError", "ServerInfo", "make_backend"]


def make_backend(settings: Settings) -> Backend:
    """The backend the settings name; imports only what that backend needs."""
    name = settings.backend
    if name == "fake":
        from .fake import FakeBackend

        return FakeBackend()
    if name == "server":
        from .server import ServerBackend

        return ServerBackend(settings.server_bin)
    if name == "url":
        assert settings.url is not None
        if settings.url.startswith("redis+cluster://"):
            from .cluster import ClusterUrlBackend

            return ClusterUrlBackend(settings.url, settings.allow_nonempty, settings.workers)
        from .url import UrlBackend

        return UrlBackend(settings.url, settings.allow_nonempty, settings.worker)
    if name == "cluster":
        from .cluster import ClusterBackend

        return ClusterBackend(settings.server_bin)
    if name == "docker":
        from .docker import DockerBackend

        return DockerBackend(settings.image)
    raise BackendError(f"--cache-backend {name!r} is not available in this version")
