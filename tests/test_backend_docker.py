"""``docker`` backend against the real engine: start, isolation, labels, teardown, leftover sweep, errors."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import pytest
from docker_support import docker_engine_or_skip, docker_image_or_skip

from pytest_cachecheck.backends.docker import (
    LABEL,
    LABEL_HOST,
    LABEL_PID,
    LABEL_RUN,
    LABEL_STARTED,
    process_started,
)


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return True
    return False


def test_container_per_run_isolated_labelled_and_removed(pytester: pytest.Pytester) -> None:
    image = docker_image_or_skip()
    pytester.makepyfile(
        test_docker="""
        import os
        import docker

        def test_first(cache_server, cache_redis, cache_url):
            assert cache_server.backend == "docker" and cache_server.host == "127.0.0.1"
            assert cache_url == f"redis://127.0.0.1:{cache_server.port}/0"
            assert cache_redis.dbsize() == 0
            cache_redis.set("leak", 1)
            [container] = docker.from_env().containers.list(
                filters={"label": f"pytest-cachecheck.owner-pid={os.getpid()}"}
            )
            labels = container.labels
            assert labels["pytest-cachecheck"] == "1" and labels["pytest-cachecheck.run"]
            assert container.ports["6379/tcp"][0] == {"HostIp": "127.0.0.1", "HostPort": str(cache_server.port)}
            print("OWNER", os.getpid(), "PORT", cache_server.port)

        def test_second(cache_redis):
            assert cache_redis.dbsize() == 0
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-s", "--cache-backend", "docker", "--cache-image", image
    )
    result.assert_outcomes(passed=2)
    owner, port = map(int, re.search(r"OWNER (\d+) PORT (\d+)", result.stdout.str()).groups())
    client = docker_engine_or_skip()
    assert client.containers.list(all=True, ignore_removed=True, filters={"label": f"{LABEL_PID}={owner}"}) == []
    assert refused(port)


def test_leftovers_of_dead_owners_are_swept_live_ones_kept(pytester: pytest.Pytester) -> None:
    image = docker_image_or_skip()
    client = docker_engine_or_skip()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()

    def labelled(pid: int, started: str) -> object:
        labels = {LABEL: "1", LABEL_RUN: "test-sweep", LABEL_HOST: host, LABEL_PID: str(pid), LABEL_STARTED: started}
        return client.containers.create(image, command=["redis-server"], labels=labels)

    gone = labelled(dead.pid, "1")
    reused_pid = labelled(os.getpid(), "1")  # our pid, but another process's start time: pid reuse
    alive = labelled(os.getpid(), process_started(os.getpid()))
    try:
        pytester.makepyfile(test_one="def test_one(cache_redis):\n    cache_redis.ping()\n")
        result = pytester.runpytest("-p", "no:cacheprovider", "--cache-backend", "docker", "--cache-image", image)
        result.assert_outcomes(passed=1)
        remaining = {
            c.id
            for c in client.containers.list(all=True, ignore_removed=True, filters={"label": f"{LABEL_RUN}=test-sweep"})
        }
        assert remaining == {alive.id}
    finally:
        for container in (gone, reused_pid, alive):
            try:
                container.remove(force=True)
            except Exception:
                pass


def test_missing_image_and_unreachable_engine_are_one_line_errors(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker_engine_or_skip()
    pytester.makepyfile(test_one="def test_one(cache_redis):\n    pass\n")
    missing = pytester.runpytest(
        "-p", "no:cacheprovider", "--cache-backend", "docker", "--cache-image", "cachecheck/no-such-image:none"
    )
    missing.assert_outcomes(errors=1)
    missing.stdout.fnmatch_lines(
        [
            "*cache backend 'docker': --cache-image 'cachecheck/no-such-image:none': image not found locally and "
            "the pull failed (*); pull it (docker pull cachecheck/no-such-image:none) or build one from this "
            "machine's redis-server with `bash scripts/docker-redis-image.sh` and pass --cache-image *"
        ]
    )
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/cachecheck-no-engine.sock")
    unreachable = pytester.runpytest("-p", "no:cacheprovider", "--cache-backend", "docker")
    unreachable.assert_outcomes(errors=1)
    unreachable.stdout.fnmatch_lines(
        [
            "*cache backend 'docker': --cache-backend docker: no Docker engine answers at unix:///nonexistent/cachecheck-no-engine.sock (*); "
            "start dockerd (`bash scripts/docker-redis-image.sh` starts one and builds a local image) or use "
            "--cache-backend server"
        ]
    )


SIGNAL_DURING_CREATE = """
import os, signal, threading, time

import docker.api.client

SIGNUM = signal.{signum}
WHEN = "{when}"
_post = docker.api.client.APIClient._post


def _post_then_signal(self, url, *args, **kwargs):
    # A real signal to the main thread while it waits for the engine's answer to the create
    # request ("create": sent from another thread 20 ms after the request), or between create
    # and start ("start").
    if WHEN in url.rsplit("/", 1)[-1]:
        with open(os.environ["CACHECHECK_OWNER_FILE"], "w") as out:
            out.write(str(os.getpid()))
        if WHEN == "start":
            os.kill(os.getpid(), SIGNUM)
        else:
            main = threading.main_thread().ident
            threading.Thread(target=lambda: (time.sleep(0.02), signal.pthread_kill(main, SIGNUM))).start()
    return _post(self, url, *args, **kwargs)


docker.api.client.APIClient._post = _post_then_signal
"""


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("when", ["create", "start"])
def test_signal_while_the_container_is_created_leaves_none(pytester: pytest.Pytester, signum: str, when: str) -> None:
    """The signal lands while ``containers.run`` waits for the engine: no container was handed back
    to the backend, yet the one the engine creates must go too (by the run's labels)."""
    image = docker_image_or_skip()
    client = docker_engine_or_skip()
    pytester.makeconftest(SIGNAL_DURING_CREATE.format(signum=signum, when=when))
    pytester.makepyfile(test_one="def test_one(cache_redis):\n    cache_redis.set('k', 1)\n")
    owner_file = pytester.path / "owner.txt"
    pytester._monkeypatch.setenv("CACHECHECK_OWNER_FILE", str(owner_file))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--cache-backend", "docker", "--cache-image", image, timeout=120
    )
    assert result.ret != 0, result.stdout.str()
    owner = int(owner_file.read_text())
    filters = {"label": [f"{LABEL_PID}={owner}"]}
    deadline = time.monotonic() + 30
    while client.containers.list(all=True, ignore_removed=True, filters=filters) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.containers.list(all=True, ignore_removed=True, filters=filters) == []


def test_malformed_image_reference_is_a_one_line_error(pytester: pytest.Pytester) -> None:
    docker_engine_or_skip()
    pytester.makepyfile(test_one="def test_one(cache_redis):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--cache-backend", "docker", "--cache-image", "Bad Name")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*cache backend 'docker': --cache-image 'Bad Name': not a valid image reference (*invalid reference "
            "format*); expected [[]REGISTRY/[]]NAME[[]:TAG[]] in lower case without spaces, e.g. redis:7 or "
            "cachecheck/redis:local"
        ]
    )
    assert "Traceback" not in result.stdout.str() and "APIError" not in result.stdout.str()
