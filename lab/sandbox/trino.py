"""The emulated Trino cluster: one import for users of the sandbox.

The model (state machines, resource groups, queries, moving load) lives in
:mod:`lab.sandbox.trino_model`; the HTTP faces and the wall-clock runner in
:mod:`lab.sandbox.trino_http`.

    cluster = TrinoCluster(478, workers=2)
    async with TrinoSandbox(cluster, load=demo_load()) as sandbox:
        sandbox.coordinator_url, sandbox.worker_urls
"""

from __future__ import annotations

from lab.sandbox.trino_http import (
    OPENMETRICS_CONTENT_TYPE,
    Fault,
    Faults,
    MetricFamily,
    TrinoAuth,
    TrinoSandbox,
    basic_query_info,
    cluster_stats,
    create_node_app,
    java_double,
    node_metric_families,
    render_openmetrics,
    resource_group_info,
    server_info,
)
from lab.sandbox.trino_model import (
    DRAINING_SINCE,
    NODE_MANAGER_RENAMED_IN,
    Arrival,
    Burst,
    LoadPattern,
    Node,
    NodeState,
    Query,
    QueryState,
    ResourceGroup,
    ResourceGroupSpec,
    StateChangeRefused,
    Task,
    TrinoCluster,
    default_groups,
    demo_cluster,
    demo_load,
    drive_load,
    format_data_size,
    format_duration,
    parse_memory_limit,
)

__all__ = [
    "DRAINING_SINCE",
    "NODE_MANAGER_RENAMED_IN",
    "OPENMETRICS_CONTENT_TYPE",
    "Arrival",
    "Burst",
    "Fault",
    "Faults",
    "LoadPattern",
    "MetricFamily",
    "Node",
    "NodeState",
    "Query",
    "QueryState",
    "ResourceGroup",
    "ResourceGroupSpec",
    "StateChangeRefused",
    "Task",
    "TrinoAuth",
    "TrinoCluster",
    "TrinoSandbox",
    "basic_query_info",
    "cluster_stats",
    "create_node_app",
    "default_groups",
    "demo_cluster",
    "demo_load",
    "drive_load",
    "format_data_size",
    "format_duration",
    "java_double",
    "node_metric_families",
    "parse_memory_limit",
    "render_openmetrics",
    "resource_group_info",
    "server_info",
]
