"""Fixtures of the unit tests that change what the source serves or write a lake."""

from __future__ import annotations

import pytest

from sfpd.lake import open_lake
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
