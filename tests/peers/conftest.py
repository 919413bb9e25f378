"""Fixtures for tests against real peer servers started on loopback (see trino_cluster.py).

The ``real_trino`` marker is registered here so ``--strict-markers`` accepts it; it belongs in
pyproject.toml's ``markers`` list once this folder joins the default run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.peers.trino_cluster import TrinoCluster, start_trino_cluster


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real_trino: starts a real Trino 476 cluster (Maven Central, Java >= 24)"
    )


@pytest.fixture(scope="session")
def real_trino(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrinoCluster]:
    """One coordinator and two workers over plain HTTP, shared by the session; stopped at its end."""
    if os.environ.get("QUEUESCALE_SKIP_REAL_TRINO") == "1":
        pytest.skip("QUEUESCALE_SKIP_REAL_TRINO=1")
    cluster = start_trino_cluster(tmp_path_factory.mktemp("trino"), workers=2)
    try:
        yield cluster
    finally:
        cluster.stop()
