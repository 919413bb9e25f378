"""Fixtures for tests against real peer servers started on loopback (see trino_cluster.py, kube_cluster.py).

A peer that cannot be started fails its tests with the reason (a missing JDK 24+, an artifact Maven
Central refused, a Go module the proxy refused): they are never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers.kube_adapter import SandboxThread
from tests.peers.kube_cluster import ClusterError, KubeCluster, ensure_built, start_cluster
from tests.peers.trino_cluster import TrinoCluster, start_trino_cluster

# The kwok node every real_kube test may schedule pods on (no taint: plain Deployments land there).
KWOK_NODE = "kwok-node-0"


# Package scope: the peers are stopped when tests/peers ends, so the rest of the suite's timing-sensitive
# tests (real Spark) never share the machine's two cores with them.
@pytest.fixture(scope="package")
def real_trino(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrinoCluster]:
    """One coordinator and two workers over plain HTTP, shared by tests/peers; stopped at its end."""
    cluster = start_trino_cluster(tmp_path_factory.mktemp("trino"), workers=2)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="package")
def real_kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """One control plane (etcd, kube-apiserver, kube-controller-manager with a 2 s HPA sync period,
    kube-scheduler, kwok) with one kwok Node, shared by tests/peers; stopped at its end.

    Builds the binaries first if the cache is missing (build_kube.sh: a cold build takes tens of minutes);
    a build or a start that fails fails the tests with the reason."""
    workdir = tmp_path_factory.mktemp("kube")
    build_log = workdir / "build_kube.log"
    problem = ""
    try:
        bin_dir = ensure_built(log_file=build_log)
        cluster = start_cluster(workdir / "cluster", bin_dir=bin_dir)
    except ClusterError as err:
        tail = build_log.read_text(errors="replace")[-4000:] if build_log.exists() else ""
        problem = f"could not build or start the real control plane: {err}\n{tail}"
    if problem:
        pytest.fail(problem, pytrace=False)
    try:
        cluster.add_node(KWOK_NODE)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def trino() -> Iterator[SandboxThread]:
    """The emulated coordinator on a thread of its own (one root group running 2 queries), one per module:
    a module may stop it."""
    sandbox = SandboxThread(concurrency=2)
    try:
        yield sandbox
    finally:
        sandbox.stop()
