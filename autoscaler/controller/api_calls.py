"""Every Kubernetes API call the controller and the adapter make, as data.

The RBAC objects in ``deploy/`` are checked against these tables by ``tests/deploy/test_deploy_rbac.py`` in both
directions: every call here must be granted, and nothing is granted that is not listed here. Keep the
tables in step with the code: a new call without a line here is refused by RBAC in a real cluster.

``scope`` says where the grant lives:

- ``cluster``: a ClusterRole bound cluster-wide (targets and policies live in any namespace);
- ``own-namespace``: a Role in the namespace queuescale runs in (the leader-election Lease);
- ``kube-system``: a Role in ``kube-system`` (the front-proxy ConfigMap kube-apiserver publishes there);
- ``policy-namespace``: a Role the operator creates in each namespace whose policies name a Secret, limited
  to those Secrets (``deploy/examples/policies`` shows one): a cluster-wide ``get secrets`` would let the
  controller read every credential in the cluster.

``names`` limits a grant to objects of those names (RBAC ``resourceNames``); ``create`` cannot be limited
that way, because the name is not known when the request is authorized.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

__all__ = [
    "ADAPTER_CALLS",
    "CONTROLLER_CALLS",
    "DEFAULT_LEASE_NAME",
    "FRONT_PROXY_CONFIGMAP",
    "ApiCall",
    "Scope",
]

Scope = Literal["cluster", "own-namespace", "kube-system", "policy-namespace"]

#: ``queuescale controller --lease-name`` default; the Lease Role is limited to this name.
DEFAULT_LEASE_NAME = "queuescale-controller"
#: The ConfigMap kube-apiserver keeps its front-proxy (request-header) trust settings in.
FRONT_PROXY_CONFIGMAP = "extension-apiserver-authentication"


class ApiCall(NamedTuple):
    """One kind of request: API group, resource, subresource ("" for none), verbs, and why it is made."""

    group: str
    resource: str
    subresource: str
    verbs: tuple[str, ...]
    why: str
    scope: Scope = "cluster"
    names: tuple[str, ...] = ()


CONTROLLER_CALLS: tuple[ApiCall, ...] = (
    ApiCall(
        "queuescale.io",
        "scalingpolicies",
        "",
        ("get", "list", "watch"),
        "--policies crd: the policies to apply",
    ),
    ApiCall(
        "queuescale.io",
        "scalingpolicies",
        "status",
        ("update", "patch"),
        "report desired replicas, conditions and read problems in each policy's status",
    ),
    ApiCall(
        "apps",
        "deployments",
        "",
        ("get", "list", "watch"),
        "TrinoWorkers targets: the workload and its pod selector",
    ),
    ApiCall(
        "apps",
        "statefulsets",
        "",
        ("get", "list", "watch"),
        "TrinoWorkers and SparkWorkerPool targets: the workload and its pod selector",
    ),
    ApiCall(
        "apps",
        "deployments",
        "scale",
        ("get", "update", "patch"),
        "read and write the replicas of a Deployment target",
    ),
    ApiCall(
        "apps",
        "statefulsets",
        "scale",
        ("get", "update", "patch"),
        "read and write the replicas of a StatefulSet target",
    ),
    ApiCall(
        "",
        "pods",
        "",
        ("get", "list", "watch", "patch", "delete"),
        "find the target's workers; annotate controller.kubernetes.io/pod-deletion-cost so drained "
        "Deployment pods leave first; delete a decommissioned Spark worker's pod the pool needs again "
        "(a decommissioned worker never takes work back, a fresh pod does)",
    ),
    ApiCall(
        "coordination.k8s.io",
        "leases",
        "",
        ("create",),
        "--leader-elect: create the Lease the first time",
        "own-namespace",
    ),
    ApiCall(
        "coordination.k8s.io",
        "leases",
        "",
        ("get", "update"),
        "--leader-elect: hold and renew the Lease",
        "own-namespace",
        (DEFAULT_LEASE_NAME,),
    ),
    ApiCall("", "events", "", ("create", "patch"), "record scale actions and drains on the policy (core/v1)"),
    ApiCall(
        "events.k8s.io",
        "events",
        "",
        ("create", "patch"),
        "record scale actions and drains on the policy (events.k8s.io/v1)",
    ),
    ApiCall(
        "autoscaling",
        "horizontalpodautoscalers",
        "",
        ("get", "list", "watch"),
        "refuse to act on a target an HPA also scales",
    ),
    ApiCall(
        "",
        "secrets",
        "",
        ("get",),
        "spec.target.trino.credentialsSecret: the password that may drain Trino workers",
        "policy-namespace",
    ),
    ApiCall(
        "sparkoperator.k8s.io",
        "sparkapplications",
        "",
        ("get", "list", "watch", "update", "patch"),
        "SparkApplication targets: size the next submission",
    ),
    ApiCall(
        "sparkoperator.k8s.io",
        "scheduledsparkapplications",
        "",
        ("get", "list", "watch", "update", "patch"),
        "ScheduledSparkApplication targets: size spec.template for the next run",
    ),
    # kube-apiserver authorizes GET .../namespaces/{ns}/{metric} as verb "list" on resource <metric>:
    # there is no "get" and no fixed resource name. The group serves only metrics, read-only, and the
    # names include the operator's own PromQL metrics, so the resource is "*" within this one group.
    ApiCall(
        "external.metrics.k8s.io",
        "*",
        "",
        ("list",),
        "--metrics external-api: read the adapter's metrics the way the HPA does",
    ),
)

ADAPTER_CALLS: tuple[ApiCall, ...] = (
    # The two calls of system:auth-delegator: metric reads are authenticated by the front-proxy
    # certificate and authorized by SubjectAccessReview; /metrics by TokenReview, then the same.
    ApiCall(
        "authorization.k8s.io",
        "subjectaccessreviews",
        "",
        ("create",),
        "authorize each metric read for the user kube-apiserver forwards, and each /metrics scrape",
    ),
    ApiCall(
        "authentication.k8s.io",
        "tokenreviews",
        "",
        ("create",),
        "authenticate the bearer token of a /metrics scrape (auth.mode front-proxy)",
    ),
    # The part of extension-apiserver-authentication-reader the adapter uses: it reads the one
    # ConfigMap by name every auth.reload_seconds (no list, no watch).
    ApiCall(
        "",
        "configmaps",
        "",
        ("get",),
        "front-proxy client CA and allowed names (auth.requestheader_client_ca_file unset)",
        "kube-system",
        (FRONT_PROXY_CONFIGMAP,),
    ),
    ApiCall(
        "",
        "pods",
        "",
        ("list",),
        "spark[].kubernetes: find running drivers labelled spark-role=driver",
    ),
    ApiCall(
        "sparkoperator.k8s.io",
        "sparkapplications",
        "",
        ("list",),
        "spark[].kubernetes.spark_operator: driver UI addresses of RUNNING SparkApplications",
    ),
)
