"""Fixtures for the history tests: a live PostgreSQL server (one per test process) and a fresh database per test.

Outside CI a machine without PostgreSQL skips the server tests; with ``CI=true`` a missing server is a failure
(``.ci/run`` installs the distribution's binaries).
"""
from __future__ import annotations

import itertools
import os

import pytest

_count = itertools.count()


@pytest.fixture(scope="session")
def pg_server():
    from tests.store import pgserver

    try:
        srv = pgserver.start()
    except (FileNotFoundError, RuntimeError) as err:
        msg = f"PostgreSQL server for the history tests: {err}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg + " (CI=true: .ci/run installs postgresql)", pytrace=False)
        pytest.skip(msg + " (apt-get install -y postgresql)")
    yield srv
    srv.cleanup()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty database on the live server, as a postgresql:// URL."""
    return pg_server.create_db(f"hqa_{os.getpid()}_{next(_count)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def history_target(request, tmp_path):
    """The same test on both backends: an SQLite file path, or a fresh PostgreSQL database URL."""
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite")
    return request.getfixturevalue("pg_url")
