"""The HTML report opened in a real headless browser (Debian's chromium): DOM text and a screenshot."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1200, 1600

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)"
)

TESTS = """
    import pytest

    @pytest.mark.parametrize("round_", range(3))
    def test_users(cache_redis, round_):
        for _ in range(4):
            for user in range(10):
                if cache_redis.get(f"user:{user}") is None:
                    cache_redis.set(f"user:{user}", "profile", ex=60)

    def test_products(cache_redis):
        for product in range(20):
            cache_redis.get(f"product:{product}")
        cache_redis.set("product:1", "x")

    def test_invalidation_scaling(cache_redis, cache_invalidation):
        def populate(size):
            cache_redis.mset({f"user:v1:{index}": b"x" for index in range(size)})

        cache_invalidation.scaling(populate, lambda: cache_redis.incr("user:version"), sizes=(100, 1000, 10000))

    def test_staleness(cache_redis, cache_consistency):
        def read(key):  # cache-aside that never invalidates: stale after every write
            value = cache_redis.get(f"user:{key}")
            if value is None:
                value = rows[key]
                cache_redis.set(f"user:{key}", value, ex=60)
            return value

        def write(key, value):
            rows[key] = value

        rows = {}
        cache_consistency.run(read, write, keys=4, ops=200, amplify=False, seed=1)
"""

TARGETS = """
    [[tool.cachecheck.target]]
    name = "users"
    pattern = "user:*"
    hit_rate = 0.8
    invalidation_ms = 10
    stale_reads = 0

    [[tool.cachecheck.target]]
    name = "products"
    pattern = "product:*"
    hit_rate = 0.5
    p99_ms = 10000
"""


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the raw (filtered) scanlines of a PNG, read with the standard library."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat = 8, b""
    width = height = 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    return width, height, zlib.decompress(idat)


@pytest.fixture(scope="module")
def html_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pytester-like run of a small project, shared by the browser checks (chromium is slow to start)."""
    project = tmp_path_factory.mktemp("html_project")
    (project / "pyproject.toml").write_text(textwrap.dedent(TARGETS), encoding="utf-8")
    (project / "test_app.py").write_text(textwrap.dedent(TESTS), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--cache-targets", "--cache-report", "report.html"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={name: value for name, value in os.environ.items() if name != "GITHUB_STEP_SUMMARY"},
    )
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    return project / "report.html"


def test_report_is_self_contained(html_report: Path) -> None:
    html = html_report.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html and "<link" not in html and " src=" not in html


def test_dom_in_chromium_shows_targets_and_plots(html_report: Path, tmp_path: Path) -> None:
    dom = _chromium("--dump-dom", html_report.as_uri(), profile=tmp_path / "profile").stdout
    for text in (
        "cachecheck report",
        "Targets",
        "users",
        "products",
        "hit_rate",
        "&gt;= 80.0%",
        "missed",
        "met",
        "Hit rate per pattern",
        "Command latency (CDF)",
        "Invalidation scaling",
        "Staleness",
        "Per-pattern stats",
        "Busiest key shapes",
    ):
        assert text in dom, text
    assert dom.count("<svg") == 4
    assert '<span class="pill missed">missed</span>' in dom


def test_screenshot_shows_the_page(html_report: Path, tmp_path: Path) -> None:
    screenshot = tmp_path / "report.png"
    _chromium(
        f"--window-size={WIDTH},{HEIGHT}",
        f"--screenshot={screenshot}",
        html_report.as_uri(),
        profile=tmp_path / "profile",
    )
    width, height, pixels = _png_pixels(screenshot)
    assert (width, height) == (WIDTH, HEIGHT)
    # a rendered page has text, pills and bars: many distinct byte values, not a blank canvas
    assert len(set(pixels[: len(pixels) // 2])) > 100
