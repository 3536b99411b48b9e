#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine (run as root, or with sudo available):
#   1. system parts the real-server tests need: redis-server, chromium (HTML report check),
#      a Docker engine and a local Redis image (docker backend tests) — each only if missing;
#   2. a virtualenv in .venv with the package, its test and example extras;
#   3. ruff and mypy, then the suite with two xdist workers, then the diagonal of the version
#      matrix and the release checks (nox), then the example apps on the fake backend with
#      their run-wide targets and on a real redis-server.
# Extra arguments go to the suite's pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if image=$(bash scripts/docker-redis-image.sh | tail -n 1); then
    export CACHECHECK_TEST_IMAGE="$image"
    export CACHECHECK_REQUIRE_DOCKER=1  # an engine is up: a broken docker backend must fail, not skip
else
    echo "no Docker engine could be started here: the docker backend tests will skip and say so"
fi

python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e '.[dev,examples]'

ruff check pytest_cachecheck tests benchmarks examples noxfile.py conftest.py
mypy

python -m pytest -n 2 "$@"

# The diagonal of the version matrix (noxfile.py): the suite above is its newest corner (this
# venv resolves every dependency to its newest release, valkey-py included by the dev extra); the
# core suite on every declared floor together is the oldest corner, on a middle release of each
# (redis-py 6.4, fakeredis 2.40, pytest 8) the middle; then the release checks (sdist + wheel,
# twine check, the wheel alone in a clean venv: pytest --help and the first command of the README).
# Each nox cell is a fresh venv.
nox -s oldest middle release

# The examples check the reports' claims, each with the statistic the report states (averages as
# mean_ms, p99.9 as p999_ms), and their count-based companions (round trips per call, O(1) command
# counts). They run once, timing enforced: a timing verdict fails only on clear evidence and when the
# machine's own round trip over the same seconds met the ceiling (docs/timing-checks.md), so a
# loaded host gives inconclusive warnings, not a red build, and a real regression still fails.
examples() {
    python -m pytest examples -p no:cacheprovider "$@"
}
examples --cache-backend server
examples --cache-targets examples/targets.toml --cache-report .ci-examples.json
