"""Django set-up for the example: settings, an SQLite database seeded once per process, and CACHES on ``cache_url``."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

django = pytest.importorskip("django", reason="the versioned_namespace example needs pip install -e '.[examples]'")
pytest.importorskip("django_redis", reason="the versioned_namespace example needs pip install -e '.[examples]'")

from django.conf import settings  # noqa: E402
from django.test import override_settings  # noqa: E402

if not settings.configured:
    settings.configure(
        INSTALLED_APPS=["vn_shop"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(Path(tempfile.mkdtemp(prefix="vn-shop-")) / "shop.sqlite3"),
                # a test database: no fsync per commit, readers never block the writer
                "OPTIONS": {"timeout": 30, "init_command": "PRAGMA synchronous=OFF; PRAGMA journal_mode=WAL;"},
            }
        },
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()


@pytest.fixture(scope="session")
def shop_database() -> None:
    """Tables and the 100 users' data, once per process (each xdist worker has its own file)."""
    from django.core.management import call_command
    from vn_shop.models import Product
    from vn_shop.seed import seed

    call_command("migrate", run_syncdb=True, verbosity=0)
    if not Product.objects.exists():
        seed()


@pytest.fixture
def shop(shop_database: None, cache_url: str) -> Iterator[None]:
    """The application configured as in production, but with this test's isolated Redis."""
    caches = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": cache_url,
            "KEY_FUNCTION": "vn_shop.namespace_cache.plain_key",
        }
    }
    with override_settings(CACHES=caches):
        yield
