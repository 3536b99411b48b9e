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
        from .url import UrlBackend

        assert settings.url is not None
        return UrlBackend(settings.url, settings.allow_nonempty)
    raise BackendError(f"--cache-backend {name!r} is not available in this version")
