"""Fast-forward simulation of a Trino cluster under a scaling policy (``queuescale simulate``).

:mod:`.load` makes seeded query loads, :mod:`.trino` models the cluster, :mod:`.baselines` holds the
policies queuescale is compared with, and :mod:`.run` drives a policy over a load and scores it.
"""

from autoscaler.sim.load import Load
from autoscaler.sim.run import Result, result_json, simulate
from autoscaler.sim.trino import ClusterConfig, ClusterView, Policy, TrinoCluster

__all__ = [
    "ClusterConfig",
    "ClusterView",
    "Load",
    "Policy",
    "Result",
    "TrinoCluster",
    "result_json",
    "simulate",
]
