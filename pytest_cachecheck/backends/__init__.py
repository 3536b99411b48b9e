"""Isolated Redis providers behind one protocol (see ``base.Backend``)."""

from __future__ import annotations

from typing import Protocol

from .base import Backend, BackendError, ServerInfo

__all__ = ["Backend", "BackendError", "BackendSettings", "ServerInfo", "make_backend"]


class BackendSettings(Protocol):
    """What choosing and building a backend reads of the run's settings (``config.Settings`` has it all);
    a protocol, so this lowest layer does not import the options layer."""

    @property
    def backend(self) -> str: ...
    @property
    def url(self) -> str | None: ...
    @property
    def server_bin(self) -> str: ...
    @property
    def image(self) -> str: ...
    @property
    def allow_nonempty(self) -> bool: ...
    @property
    def worker(self) -> int: ...
    @property
    def workers(self) -> int: ...


def make_backend(settings: BackendSettings) -> Backend:
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
