"""``source=``: count the calls to the slow source (database, API) that the cache sits in front of.

The plugin cannot see a database, so the user names the callable the application calls
on a miss, and the plugin replaces it, for the duration of a measurement, where the
application looks it up: a bound method on its instance (``store.query``), a function
on its module (``app.db.query``), or ``(owner, "name")`` for any attribute. The
replacement counts each call and forwards it (an ``async def`` stays one). Costs one
counter increment per source call; nothing when ``source`` is None.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

SOURCE_HELP = "a bound method (store.query), a module-level function, or (owner, 'attribute')"


def where_found(source: Any, api: str) -> tuple[Any, str]:
    """The object and attribute through which the application reaches ``source``."""
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], str):
        owner, name = source
        if not callable(getattr(owner, name, None)):
            raise TypeError(f"{api}: source {source!r} does not name a callable attribute; expected {SOURCE_HELP}")
        return owner, name
    if not callable(source):
        raise TypeError(f"{api}: 'source' must be {SOURCE_HELP}, got {source!r}")
    owner = getattr(source, "__self__", None)
    name = getattr(source, "__name__", None)
    if owner is not None and isinstance(name, str) and getattr(owner, name, None) == source:
        return owner, name
    module = sys.modules.get(getattr(source, "__module__", None) or "")
    qualname = getattr(source, "__qualname__", None)
    if module is not None and isinstance(name, str) and qualname == name and getattr(module, name, None) is source:
        return module, name
    raise TypeError(f"{api}: cannot replace source {source!r} where the application finds it; pass {SOURCE_HELP}")


class SourceCounter:
    """Calls to the wrapped source so far (read ``count`` before and after a round)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()  # threads may load at once

    def add(self) -> None:
        with self._lock:
            self.count += 1


@contextlib.contextmanager
def counting(source: Any, api: str) -> Iterator[SourceCounter | None]:
    """Replace ``source`` by a counting wrapper inside the block (None: nothing to count)."""
    if source is None:
        yield None
        return
    owner, name = where_found(source, api)
    original = getattr(owner, name)
    counter = SourceCounter()
    wrapper = _counting_wrapper(original, counter)
    had_own = name in getattr(owner, "__dict__", {})
    try:
        setattr(owner, name, wrapper)
    except (AttributeError, TypeError) as exc:
        raise TypeError(f"{api}: cannot replace source {name!r} on {owner!r} ({exc}); pass {SOURCE_HELP}") from None
    try:
        yield counter
    finally:
        if had_own or inspect.ismodule(owner):
            setattr(owner, name, original)
        else:
            delattr(owner, name)  # a bound method came from the class: let the lookup find it there again


def _counting_wrapper(original: Callable[..., Any], counter: SourceCounter) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def counted_async(*args: Any, **kwargs: Any) -> Any:
            counter.add()
            return await original(*args, **kwargs)

        return counted_async

    @functools.wraps(original)
    def counted(*args: Any, **kwargs: Any) -> Any:
        counter.add()
        return original(*args, **kwargs)

    return counted
