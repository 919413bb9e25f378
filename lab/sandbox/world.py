"""The sandbox's wall-clock world for the adapter: an emulated Trino cluster and Spark pool under
moving load, served on loopback, plus the adapter settings that point at them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from lab.sandbox.spark import SparkSandbox, demo_pool
from lab.sandbox.trino import TrinoSandbox, demo_cluster, demo_load

TRINO_CLUSTER = "sandbox"
SPARK_POOL = "sandbox-spark"


@dataclass
class World:
    trino: TrinoSandbox
    spark: SparkSandbox

    def source_settings(self, poll_interval_seconds: float = 2.0) -> dict[str, Any]:
        """The ``trino`` and ``spark`` sections of the adapter settings for this world."""
        return {
            "trino": [
                {
                    "name": TRINO_CLUSTER,
                    "endpoint": {"url": self.trino.coordinator_url},
                    "resource_groups": ["global"],
                    "poll_interval_seconds": poll_interval_seconds,
                    # The demo shows every figure; the emulated coordinator lets any user view all queries.
                    "running_query_cpu": True,
                }
            ],
            "spark": [
                {
                    "name": SPARK_POOL,
                    "master": {"url": self.spark.master_url},
                    "reverse_proxy": True,
                    "poll_interval_seconds": poll_interval_seconds,
                }
            ],
        }


@contextlib.asynccontextmanager
async def running_world(
    *, seed: int = 0, speedup: float = 1.0, trino_version: int = 478
) -> AsyncIterator[World]:
    """Start both emulations with the demo load; the same seed gives the same arrivals."""
    pool, spark_load = demo_pool(seed)
    async with (
        TrinoSandbox(demo_cluster(trino_version, seed=seed), load=demo_load(seed), speedup=speedup) as trino,
        SparkSandbox(pool, load=spark_load) as spark,
    ):
        yield World(trino=trino, spark=spark)
