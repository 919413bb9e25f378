"""What ``queuescale simulate`` writes beside the runs' own figures: the ``result.json`` keys that are not a
policy's or a baseline's name, and the one line on the simulated cluster that its summary prints."""

from __future__ import annotations

import math

from autoscaler.sim.scenario import AnyConfig
from autoscaler.sim.trino import ClusterConfig

__all__ = ["RESERVED_KEYS", "describe_config"]

#: Keys of ``result.json`` besides the policies' names.
RESERVED_KEYS = ("lower_bound_worker_hours", "sweep", "iso_slo")


def describe_config(config: AnyConfig) -> str:
    """One line on the simulated cluster, for summaries."""
    groups = ""
    if config.group_limits or config.group_memory_limits:
        hard = config.group_limits[0] if config.group_limits else None
        soft = config.group_memory_limits[0] if config.group_memory_limits else None
        groups = f"; resource group hardConcurrencyLimit {hard}, softMemoryLimit {soft}"
    memory = f", {config.memory_per_worker_gb:g} GB" if math.isfinite(config.memory_per_worker_gb) else ""
    if isinstance(config, ClusterConfig):
        return (
            f"slot model, {config.slots_per_worker} slots and {config.cores:g} cores per worker{memory}, "
            f"{config.startup_seconds:g} s start-up, at most {config.max_workers} workers{groups}"
        )
    return (
        f"work model, {config.cores_per_worker:g} cores per worker{memory}, one query keeps at most "
        f"{config.query_parallelism:g} of each worker's cores busy, {config.startup_seconds:g} s start-up, "
        f"at most {config.max_workers} workers, graceful shutdown grace {config.grace_seconds:g} s and "
        f"termination grace {config.termination_grace_seconds:g} s{groups}"
    )
