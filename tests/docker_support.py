"""What the docker tests share: the image to use, and a skip only when no Docker engine answers."""

from __future__ import annotations

import os
from typing import Any

import pytest

try:  # imported before any in-process pytester run: those drop modules first imported inside them,
    import docker  # and a re-imported ``requests`` breaks the SDK ("You can only merge into CookieJar")
except ImportError:
    docker = None

DEFAULT_TEST_IMAGE = "cachecheck/redis:local"


def docker_engine_or_skip() -> Any:
    """A Docker SDK client; skips the test (with the reason) only when no engine answers."""
    if docker is None:
        pytest.skip("the docker SDK is not installed (pip install 'pytest-cachecheck[docker]')")
    from pytest_cachecheck.backends.base import BackendError
    from pytest_cachecheck.backends.docker import engine

    try:
        return engine()
    except BackendError as exc:
        if os.environ.get("CACHECHECK_REQUIRE_DOCKER"):  # CI, where the engine was started on purpose
            pytest.fail(f"CACHECHECK_REQUIRE_DOCKER is set but {exc}")
        pytest.skip(f"no Docker engine answers: {exc}")


def docker_image_or_skip() -> str:
    """``$CACHECHECK_TEST_IMAGE`` (default the local image); a missing image fails, it does not skip."""
    client = docker_engine_or_skip()
    image = os.environ.get("CACHECHECK_TEST_IMAGE", DEFAULT_TEST_IMAGE)
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        pytest.fail(f"docker image {image!r} is missing: build it with `bash scripts/docker-redis-image.sh`")
    return image
