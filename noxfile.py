"""The version matrix: the core suite against each supported redis-py, fakeredis, pytest and valkey-py.

Every cell is its own session, run one at a time (``nox -l`` lists them, ``nox -s redis-5.0`` runs
one, ``nox -s oldest newest`` the diagonal CI runs). A cell installs the package with its ``test``
extra into a fresh virtualenv, pins its versions on top, and runs the core suite. The ranges in
``pyproject.toml`` are the ones these cells prove: move a floor there and here together.

The core suite is ``tests/`` without ``tests/compat`` (the caching libraries, see
docs/compatibility.md), the docker backend tests (they need a Docker engine and an image) and the
browser check of the HTML report (it needs chromium): what a plain Debian box with a
``redis-server`` can run. Extra arguments after ``--`` go to pytest (default ``-n 2``).
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = True

#: The oldest release of each supported line (the floors in pyproject.toml).
OLDEST = {"redis": "redis==5.0.8", "fakeredis": "fakeredis[lua]==2.25.0", "pytest": "pytest==7.4.4"}
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
    # the diagonal: every floor together, and every newest release together (with valkey-py)
    "oldest": dict(OLDEST),
    "newest": {**NEWEST, "valkey": "valkey"},
}

#: The core suite: no caching libraries, no Docker engine, no browser.
CORE = ["tests", "--ignore=tests/compat", "--ignore=tests/test_backend_docker.py",
        "--ignore=tests/test_report_html_browser.py", "-k", "not docker", "-p", "no:cacheprovider"]


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
