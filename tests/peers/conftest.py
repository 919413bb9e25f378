"""Fixtures for tests against real peer servers started on loopback (see trino_cluster.py).

A peer that cannot be started fails its tests with the reason (a missing JDK 24+, an artifact Maven
Central refused): they are never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers.trino_cluster import TrinoCluster, start_trino_cluster


@pytest.fixture(scope="session")
def real_trino(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrinoCluster]:
    """One coordinator and two workers over plain HTTP, shared by the session; stopped at its end."""
    cluster = start_trino_cluster(tmp_path_factory.mktemp("trino"), workers=2)
    try:
        yield cluster
    finally:
        cluster.stop()
