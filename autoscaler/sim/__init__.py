"""Fast-forward simulation of a Trino cluster under a scaling policy (``queuescale simulate``).

:mod:`.load` makes seeded query loads, :mod:`.trino` models the cluster (query slots),
:mod:`.trino_work` models it as Trino is (CPU work shared over every worker), :mod:`.baselines` holds the
policies queuescale is compared with, and :mod:`.run` drives a policy over a load and scores it.
"""

from autoscaler.sim.load import Load
from autoscaler.sim.run import Result, result_json, simulate
from autoscaler.sim.trino import ClusterConfig, ClusterView, Policy, SlotCluster
from autoscaler.sim.trino_work import WorkCluster, WorkConfig

__all__ = [
    "ClusterConfig",
    "ClusterView",
    "Load",
    "Policy",
    "Result",
    "SlotCluster",
    "WorkCluster",
    "WorkConfig",
    "result_json",
    "simulate",
]
