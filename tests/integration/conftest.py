"""Fixtures of the integration tests: a replay server of their own, a client of the shared one, a
local lake."""

from __future__ import annotations

import pytest

from sfpd.lake import open_lake
from sfpd.socrata import SocrataEndpoint, SocrataSource
from sfpd_dev.replay import ReplayServer
from tests.conftest import FIXTURES


@pytest.fixture
def server():
    """A replay server of the bundled rows for one test: it may change them upstream."""
    with ReplayServer(FIXTURES) as srv:
        yield srv


@pytest.fixture
def lake(tmp_path):
    """A local lake in the test's tmp dir."""
    return open_lake((tmp_path / "lake").as_uri())


@pytest.fixture
def source(replay_server):
    """A Socrata client of the session's replay server (the bundled rows, unchanged)."""
    endpoint = SocrataEndpoint(host="127.0.0.1", port=replay_server.port, scheme="http")
    with SocrataSource(endpoint, page_size=5000) as src:
        yield src
