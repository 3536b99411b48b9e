"""docs/ci.md's pytest command lines, run as written against a small project: the recipe works.

The command lines are read from the document itself (every folded ``run: >-`` block that starts
with ``python -m pytest``), so the recipe cannot drift from what is checked. The service
container of job A is stood in for by a ``redis-server`` this test starts on a free port (the
URL in the document names the container's port 6379, which on this host is somebody else's).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_cachecheck.backends.process import RedisProcess

DOC = Path(__file__).resolve().parent.parent / "docs" / "ci.md"
SERVICE_URL = "redis://localhost:6379/0"

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

PROJECT = {
    "pyproject.toml": """
        [project]
        name = "shop"
        version = "0"

        [[tool.cachecheck.target]]
        name = "profiles"
        pattern = "user:*"
        hit_rate = 0.8
        keys_without_ttl = 0
        mean_ms = 50        # enforced: no --cache-timing option in the recipe
    """,
    "tests/test_profiles.py": """
        import redis


        def profile(client, user_id):
            key = f"user:{user_id}"
            value = client.get(key)
            if value is None:
                value = b"profile"
                client.set(key, value, ex=60)
            return value


        def test_profiles(cache_url):
            client = redis.Redis.from_url(cache_url)
            for request in range(50):
                assert profile(client, request % 5) == b"profile"
            client.close()
    """,
}


def doc_commands() -> list[list[str]]:
    """The pytest command lines of docs/ci.md's ``run: >-`` blocks, as argument lists."""
    commands = []
    lines = DOC.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if not re.match(r"\s*run: >-$", line) or not lines[index + 1].strip().startswith("python -m pytest"):
            continue
        indent = len(lines[index + 1]) - len(lines[index + 1].lstrip())
        block = []
        for following in lines[index + 1 :]:
            if len(following) - len(following.lstrip()) < indent or not following.strip():
                break
            block.append(following.strip())
        commands.append(shlex.split(" ".join(block)))
    return commands


def test_the_document_has_both_jobs() -> None:
    backends = [command[command.index("--cache-backend") + 1] for command in doc_commands()]
    assert backends == ["url", "server"]


@pytest.mark.parametrize("job", [0, 1], ids=["A-service-container", "B-server-backend"])
def test_ci_recipe_runs_as_written(tmp_path: Path, job: int) -> None:
    pytest.importorskip("xdist", reason="the recipe runs with -n 2 (pytest-xdist)")
    for name, text in PROJECT.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(re.sub(r"(?m)^        ", "", text).lstrip(), encoding="utf-8")
    command = doc_commands()[job]
    assert command[:3] == ["python", "-m", "pytest"]
    service = RedisProcess("redis-server") if SERVICE_URL in command else None
    if service is not None:
        command[command.index(SERVICE_URL)] = f"redis://{service.host}:{service.port}/0"
    summary = tmp_path / "step-summary.md"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}
    env.pop("PYTEST_ADDOPTS", None)
    try:
        result = subprocess.run(
            [sys.executable, *command[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
    finally:
        if service is not None:
            service.stop()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "--cache-timing" not in command  # timing enforced, as the page says
    assert "cachecheck: all 3 targets met" in output
    for name in ("cachecheck.md", "cachecheck.json", "cachecheck.html", "junit.xml"):
        assert (tmp_path / name).is_file(), name
    assert "profiles" in summary.read_text(encoding="utf-8") and "✅" in summary.read_text(encoding="utf-8")
    report = json.loads((tmp_path / "cachecheck.json").read_text(encoding="utf-8"))
    assert report["backend"] == command[command.index("--cache-backend") + 1]
    properties = {prop.get("name"): prop.get("value") for prop in ET.parse(tmp_path / "junit.xml").iter("property")}
    assert properties["cachecheck.hit_rate"] == "0.9"
