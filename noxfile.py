"""The version matrix: the core suite against each supported redis-py, fakeredis, pytest and valkey-py.

Every cell is its own session, run one at a time (``nox -l`` lists them, ``nox -s redis-5.0`` runs
one, ``nox -s oldest middle newest`` the diagonal). A cell installs the package with its ``test``
extra into a fresh virtualenv, pins its versions on top, and runs the core suite. The ranges in
``pyproject.toml`` are the ones these cells prove: move a floor there and here together.

The core suite is ``tests/`` without ``tests/compat`` (the caching libraries, see
docs/compatibility.md), the docker backend tests (they need a Docker engine and an image) and the
browser check of the HTML report (it needs chromium): what a plain Debian box with a
``redis-server`` can run. Extra arguments after ``--`` go to pytest (default ``-n 2``).
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = True

#: The floors in pyproject.toml, each the oldest release that passes: redis-py 5.0.0 lacks
#: ``redis.asyncio.Redis.from_pool`` (the server and url backends' async clients); fakeredis
#: before 2.34 cannot serve redis-py 8's ``HELLO 3`` over TCP (``cache_url``), and 2.20-2.24 have
#: no ``TcpFakeServer`` at all; before 2.39 its TCP server answers RESP2 clients (redis-py < 8) with RESP3
#: nulls (``_``: "Protocol Error"); 2.34.0 warns (``retry_on_timeout``) on every client under redis-py 8.
OLDEST = {"redis": "redis==5.0.1", "fakeredis": "fakeredis[lua]==2.39.0", "pytest": "pytest==7.4.0"}
#: The newest release of each (unpinned: whatever the index has today).
NEWEST = {"redis": "redis", "fakeredis": "fakeredis[lua]", "pytest": "pytest"}

#: cell name -> the requirements pinned on top of the newest of everything.
CELLS: dict[str, dict[str, str]] = {
    "redis-5.0": {"redis": "redis==5.0.*"},
    "redis-5.2": {"redis": "redis==5.2.*"},
    "redis-6.4": {"redis": "redis==6.4.*"},
    "redis-7": {"redis": "redis==7.*"},
    "redis-8": {"redis": "redis==8.*"},
    "fakeredis-oldest": {"fakeredis": OLDEST["fakeredis"]},
    "fakeredis-newest": {"fakeredis": NEWEST["fakeredis"]},
    "pytest-7.4": {"pytest": "pytest==7.4.*"},
    "pytest-8": {"pytest": "pytest==8.*"},
    "pytest-9": {"pytest": "pytest==9.*"},
    "valkey": {"valkey": "valkey"},
    # the diagonal: every floor together, a middle release of each together, and every newest
    # release together (with valkey-py). CI runs oldest and middle; its own suite is the newest.
    "oldest": dict(OLDEST),
    "middle": {"redis": "redis==6.4.*", "fakeredis": "fakeredis[lua]==2.40.*", "pytest": "pytest==8.*"},
    "newest": {**NEWEST, "valkey": "valkey"},
}

#: What the source release must carry besides the package: the means to test it and to read about it.
SDIST_CARRIES = (
    "conftest.py",
    "tests/compat/conftest.py",
    "tests/test_backends.py",
    "docs/ci.md",
    "README.md",
    "CHANGELOG.md",
    "LICENSE",
    "noxfile.py",
)

#: The README's first command, after its install: the examples with their run-wide targets.
FIRST_COMMAND = ("examples", "-p", "no:cacheprovider", "--cache-targets", "examples/targets.toml")
_WHERE = "import pytest_cachecheck; print(pytest_cachecheck.__file__)"

#: The core suite: no caching libraries, no Docker engine, no browser.
CORE = [
    "tests",
    "--ignore=tests/compat",
    "--ignore=tests/test_backend_docker.py",
    "--ignore=tests/test_report_html_browser.py",
    "-k",
    "not docker",
    "-p",
    "no:cacheprovider",
]


#: Printed by each cell before its tests: the versions the cell really got.
VERSIONS = (
    "import importlib.metadata as m, platform\n"
    "def v(name):\n"
    "    try:\n        return m.version(name)\n"
    "    except m.PackageNotFoundError:\n        return '-'\n"
    "print('cell versions: python', platform.python_version(),"
    " *(f'{name} {v(name)}' for name in ('redis', 'fakeredis', 'pytest', 'valkey')))"
)


def _cell(name: str, pins: dict[str, str]) -> None:
    requirements = [*{**NEWEST, **pins}.values()]

    def cell(session: nox.Session) -> None:
        # one resolution: the package, its test extra and the cell's pins together, so pip
        # refuses a cell whose pins contradict the declared ranges instead of quietly moving one
        session.install(".[test]", *requirements)
        session.run("python", "-c", VERSIONS)
        session.run("python", "-m", "pytest", *CORE, *(session.posargs or ["-n", "2"]))

    cell.__doc__ = f"core suite with {', '.join(requirements)}"
    nox.session(name=name)(cell)


for _name, _pins in CELLS.items():
    _cell(_name, _pins)


@nox.session(name="release")
def release(session: nox.Session) -> None:
    """sdist + wheel, twine check; the wheel in a clean venv: pytest --help, the README's first command."""
    session.install("build", "twine")
    dist = Path(session.create_tmp()) / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", str(dist))
    built = sorted(str(path) for path in dist.iterdir())
    session.run("python", "-m", "twine", "check", "--strict", *built)
    sdist = next(path for path in built if path.endswith(".tar.gz"))
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    missing = [name for name in SDIST_CARRIES if name not in names]
    if missing:
        session.error(f"the sdist lacks {', '.join(missing)}")
    clean = Path(session.create_tmp()) / "clean"
    shutil.rmtree(clean, ignore_errors=True)
    session.run("python", "-m", "venv", str(clean))
    wheel = next(path for path in built if path.endswith(".whl"))
    session.run(str(clean / "bin" / "python"), "-m", "pip", "install", "-q", wheel, external=True)
    help_text = session.run(str(clean / "bin" / "pytest"), "--help", external=True, silent=True) or ""
    absent = [option for option in ("--cache-backend", "--cache-targets", "--cache-report") if option not in help_text]
    if absent:
        session.error(f"pytest --help from the installed wheel lacks {', '.join(absent)}")
    _first_command(session, clean, wheel)
    session.log(f"release ok: {', '.join(Path(path).name for path in built)}")


def _first_command(session: nox.Session, clean: Path, wheel: str) -> None:
    """The README's first command on the wheel instead of the checkout: ``[examples]`` installed
    from the wheel into the clean venv, then the examples with their targets, run from a copy
    outside the checkout so that nothing but the installed wheel can be imported (checked).
    Costs the examples' dependencies (from pip's cache after the first run) and their ~25 s run."""
    clean = clean.resolve()  # the runs below change directory
    python = str(clean / "bin" / "python")
    session.run(python, "-m", "pip", "install", "-q", f"{Path(wheel).resolve()}[examples]", external=True)
    # outside the checkout: no pyproject.toml or conftest.py of the repository above it either
    work = Path(tempfile.mkdtemp(prefix="cachecheck-first-command-"))
    shutil.copytree("examples", work / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    try:
        with session.chdir(work):
            where = session.run(python, "-c", _WHERE, external=True, silent=True) or ""
            if not Path(where.strip()).resolve().is_relative_to(clean):
                session.error(f"the examples would import pytest_cachecheck from {where.strip()}, not the wheel")
            session.run(python, "-m", "pytest", *FIRST_COMMAND, external=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
