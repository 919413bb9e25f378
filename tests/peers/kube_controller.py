"""Our controller against a real ``KubeCluster`` (issue 13 item 4), for the real_kube tests.

    with ControllerWorld.start(cluster, workdir) as world:      # RBAC, namespace, workload, policy, adapter
        first = world.start_controller("ctl-a")                  # `queuescale controller` as a subprocess
        world.trino.set_queued(10)

The controller runs out of cluster (``python -m queuescale controller --policies crd --metrics external-api``)
with a kubeconfig holding a token of the ServiceAccount ``queuescale/queuescale-controller``, bound only by
the RBAC objects of ``deploy/base/controller`` as rendered and, for the policy's credentials Secret, by the
Role pattern of ``deploy/examples/policies`` moved to the test's namespace. So a call our RBAC forgot shows
up as a 403 in its log (``forbidden()``). Metrics come from our adapter behind the real aggregation layer
(``kube_adapter.AggregatedAdapter``), read through kube-apiserver as the shipped Deployment does.

The Trino workers are kwok pods on a node of their own whose ``spec.podCIDR`` is loopback (``127.0.1.0/24``),
so the actuator's probes of ``http://<pod IP>:<port>`` are refused at once rather than dialling an address
nothing routes; with an ``EmulatedKubelet`` running, each Running pod is an emulated Trino worker reached at
``<pod IP>:<port>`` exactly as the actuator reaches a worker in a cluster. An ``EmulatedKubelet`` may serve
the workers of another emulated Trino instead, e.g. one with password authentication over HTTPS on the
template's port named ``https``, with a certificate for the workers' Service name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes.client
import yaml

from lab.sandbox.trino import TrinoSandbox
from tests.helpers.deploy import ROOT
from tests.peers.kube_adapter import (
    RBAC_KINDS,
    AggregatedAdapter,
    SandboxThread,
    apply_objects,
    render_base,
    service_account_token,
    token_kubeconfig,
    wait_for,
)
from tests.peers.kube_cluster import KubeCluster, free_port

NAMESPACE = "qs-ctl"
CONTROLLER_NAMESPACE = "queuescale"
SERVICE_ACCOUNT = "queuescale-controller"
LEASE = "queuescale-controller"
WORKLOAD = "trino-worker"
POLICY = "trino-worker"
SECRET = "trino-admin"
TRINO_PASSWORD = "emulated-admin-password"
# The CA of HTTPS workers, in a Secret the controller's Role names; their certificates name the Service.
CA_SECRET = "trino-worker-ca"
WORKER_SERVER_NAME = f"{WORKLOAD}.{NAMESPACE}.svc"
LOOP_NODE = "kwok-loop-0"
LOOP_CIDR = "127.0.1.0/24"
LABELS = {"app": "trino", "component": "worker"}
GROUP, VERSION, PLURAL = "queuescale.io", "v1alpha1", "scalingpolicies"
# Per worker: trino_capacity_queued_queries / AVERAGE_VALUE workers, between MIN and MAX.
AVERAGE_VALUE = 4
MIN_REPLICAS, MAX_REPLICAS = 1, 6
# Lease timings: a follower takes over at most LEASE_SECONDS + RETRY_PERIOD after the leader's last renew.
LEASE_SECONDS, RENEW_DEADLINE, RETRY_PERIOD = 3, 2.0, 0.5


def controller_objects(rendered: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The CRD and the controller's RBAC from the rendered base, and nothing else."""
    return [
        o
        for o in rendered
        if o["kind"] == "CustomResourceDefinition"
        or (
            o["kind"] in RBAC_KINDS
            and (o["kind"] == "Namespace" or o["metadata"]["name"].startswith("queuescale-controller"))
        )
    ]


def credentials_rbac() -> list[dict[str, Any]]:
    """deploy/examples/policies' Role and RoleBinding for the credentials Secret, in the test's namespace,
    naming the workers' CA Secret too (as the policy's workerTls field asks of whoever sets a caSecret)."""
    docs = []
    for name in ("role-trino-credentials.yaml", "rolebinding-trino-credentials.yaml"):
        doc = yaml.safe_load((ROOT / "deploy" / "examples" / "policies" / name).read_text())
        doc["metadata"]["namespace"] = NAMESPACE
        docs.append(doc)
    role = docs[0]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [SECRET], "verbs": ["get"]}
    ], role
    role["rules"][0]["resourceNames"] = [SECRET, CA_SECRET]
    return docs


def workload(port: int, tls_port: int) -> dict[str, Any]:
    """Trino workers pinned to the loopback node (which is tainted, so nothing else lands there); HTTP on
    the port named ``http``, HTTPS on the one named ``https`` (the actuator picks by the coordinator's
    scheme)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": WORKLOAD, "namespace": NAMESPACE},
        "spec": {
            "replicas": MIN_REPLICAS,
            "selector": {"matchLabels": dict(LABELS)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": LOOP_NODE},
                    "tolerations": [
                        {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "containers": [
                        {
                            "name": "trino-worker",
                            "image": "trinodb/trino:478",
                            "ports": [
                                {"name": "http", "containerPort": port},
                                {"name": "https", "containerPort": tls_port},
                            ],
                        }
                    ],
                },
            },
        },
    }


def policy(coordinator_url: str) -> dict[str, Any]:
    """deploy/examples/policies/trino-workers.yaml with names, bounds and timings changed: one External
    metric (queued queries per worker), no scale-down for 10 minutes, drains at once."""
    doc: dict[str, Any] = yaml.safe_load(
        (ROOT / "deploy" / "examples" / "policies" / "trino-workers.yaml").read_text()
    )
    doc["metadata"] = {"name": POLICY, "namespace": NAMESPACE}
    spec = doc["spec"]
    assert spec["target"]["trino"]["credentialsSecret"]["name"] == SECRET
    spec["target"]["trino"]["coordinatorUrl"] = coordinator_url
    spec["target"]["startupSeconds"] = 0
    spec["minReplicas"], spec["maxReplicas"] = MIN_REPLICAS, MAX_REPLICAS
    spec["metrics"] = [m for m in spec["metrics"] if m["type"] == "External"]
    spec["metrics"][0]["external"]["target"]["averageValue"] = str(AVERAGE_VALUE)
    spec["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": 600}}
    spec["drain"] = {"gracePeriodSeconds": 0, "timeoutSeconds": 60}
    return doc


@dataclass
class ControllerProcess:
    identity: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def forbidden(self) -> list[str]:
        """Log lines that tell of a call the server refused under our RBAC (403)."""
        # 403 as a status, not inside a number (a log line's timestamp may end in .403).
        return [
            line
            for line in self.log_text().splitlines()
            if re.search(r"(?<![\d.])403(?![\d.])|[Ff]orbidden", line)
        ]

    def problems(self) -> list[str]:
        """Log lines at warning level or above (an actuator error, a failed pass, a refused call)."""
        return [
            line
            for line in self.log_text().splitlines()
            if '"level": "warning"' in line or '"level": "error"' in line or '"level": "critical"' in line
        ]

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, by pid: no Lease release, as a crashed or evicted replica."""
        if self.alive():
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(15)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)


@dataclass
class ControllerWorld:
    cluster: KubeCluster
    workdir: Path
    trino: SandboxThread
    adapter: AggregatedAdapter
    kubeconfig: Path
    api: kubernetes.client.ApiClient
    worker_port: int
    worker_tls_port: int
    controllers: list[ControllerProcess] = field(default_factory=list)

    @classmethod
    @contextlib.contextmanager
    def start(cls, cluster: KubeCluster, workdir: Path) -> Iterator[ControllerWorld]:
        workdir.mkdir(parents=True, exist_ok=True)
        # A world of an earlier module in the session leaves its node behind (kept) and its workload and
        # policy (removed below, so this world starts at MIN_REPLICAS with fresh pods).
        if cluster.kubectl("get", "node", LOOP_NODE, check=False).returncode != 0:
            cluster.add_node(LOOP_NODE, taint=True, pod_cidr=LOOP_CIDR)
        apply_objects(cluster, workdir, "controller-rbac", controller_objects(render_base(cluster)))
        cluster.kubectl("wait", "--for=condition=Established", "crd/scalingpolicies.queuescale.io")
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": NAMESPACE},
            "stringData": {"password": TRINO_PASSWORD},
        }
        apply_objects(cluster, workdir, "namespace", [namespace])
        cls._clear(cluster)
        apply_objects(cluster, workdir, "credentials", [*credentials_rbac(), secret])
        token = service_account_token(cluster, CONTROLLER_NAMESPACE, SERVICE_ACCOUNT)
        kubeconfig = token_kubeconfig(cluster, workdir / "controller.kubeconfig", token)
        trino = SandboxThread()
        api = cluster.api_client()
        try:
            with AggregatedAdapter.start(cluster, workdir / "adapter", trino.url) as adapter:
                port, tls_port = free_port(), free_port()
                apply_objects(cluster, workdir, "workload", [workload(port, tls_port)])
                apply_objects(cluster, workdir, "policy", [policy(trino.url)])
                world = cls(cluster, workdir, trino, adapter, kubeconfig, api, port, tls_port)
                try:
                    yield world
                finally:
                    for ctl in world.controllers:
                        ctl.stop()
                    # The APIService is cluster-wide: leave none pointing at a stopped adapter.
                    adapter.unregister()
        finally:
            api.close()
            trino.stop()

    @staticmethod
    def _clear(cluster: KubeCluster) -> None:
        cluster.kubectl(
            "delete", f"{PLURAL}.{GROUP},deployments", "-n", NAMESPACE, "--all", "--ignore-not-found"
        )
        selector = ",".join(f"{k}={v}" for k, v in LABELS.items())

        def no_pods() -> bool:
            done = cluster.kubectl("get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "name")
            return not done.stdout.strip()

        wait_for(f"no pods of an earlier {WORKLOAD} in {NAMESPACE}", no_pods, 60)

    def start_controller(self, identity: str) -> ControllerProcess:
        """``queuescale controller`` with leader election in ``queuescale``, short periods, JSON logs."""
        log = self.workdir / f"controller-{identity}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUEUESCALE_")}
        args = [
            sys.executable,
            "-m",
            "queuescale",
            "controller",
            "--policies",
            "crd",
            "--namespace",
            NAMESPACE,
            "--kubeconfig",
            str(self.kubeconfig),
            "--metrics",
            "external-api",
            "--leader-elect",
            "--lease-name",
            LEASE,
            "--lease-namespace",
            CONTROLLER_NAMESPACE,
            "--lease-seconds",
            str(LEASE_SECONDS),
            "--renew-deadline",
            str(RENEW_DEADLINE),
            "--retry-period",
            str(RETRY_PERIOD),
            "--identity",
            identity,
            "--period",
            "0.5",
            "--listen-metrics",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        ctl = ControllerProcess(identity, process, log)
        self.controllers.append(ctl)
        return ctl

    # ------------------------------------------------------------------ reading, as admin

    def replicas(self) -> int:
        scale = kubernetes.client.AppsV1Api(self.api).read_namespaced_deployment_scale(WORKLOAD, NAMESPACE)
        assert scale.spec is not None, scale
        assert scale.spec.replicas is not None, scale
        return int(scale.spec.replicas)

    def policy_status(self) -> dict[str, Any]:
        got: Any = kubernetes.client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, POLICY
        )
        return dict(got.get("status") or {})

    def condition(self, kind: str) -> dict[str, Any]:
        for cond in self.policy_status().get("conditions") or []:
            if cond.get("type") == kind:
                return dict(cond)
        return {}

    def events(self) -> list[dict[str, Any]]:
        """Events about the policy (core/v1 view; events.k8s.io writes show here too)."""
        done = self.cluster.kubectl("get", "events", "-n", NAMESPACE, "-o", "json")
        return [
            e
            for e in json.loads(done.stdout)["items"]
            if e.get("involvedObject", {}).get("kind") == "ScalingPolicy"
            and e["involvedObject"].get("name") == POLICY
        ]

    def queued_metric(self) -> float | None:
        """trino_capacity_queued_queries{cluster=adhoc} as kube-apiserver serves it from the adapter."""
        path = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/trino_capacity_queued_queries"
        done = self.cluster.kubectl("get", "--raw", f"{path}?labelSelector=cluster%3Dadhoc", check=False)
        if done.returncode != 0:
            return None
        items = json.loads(done.stdout).get("items") or []
        return float(items[0]["value"]) if items else None

    def pods(self) -> list[kubernetes.client.V1Pod]:
        found = kubernetes.client.CoreV1Api(self.api).list_namespaced_pod(
            NAMESPACE, label_selector=",".join(f"{k}={v}" for k, v in LABELS.items())
        )
        return list(found.items)

    def pod_ips(self) -> list[str]:
        pods = kubernetes.client.CoreV1Api(self.api).list_namespaced_pod(
            NAMESPACE, label_selector=",".join(f"{k}={v}" for k, v in LABELS.items())
        )
        return sorted((p.status.pod_ip if p.status else None) or "" for p in pods.items)

    def lease_holder(self) -> str | None:
        lease = kubernetes.client.CoordinationV1Api(self.api).read_namespaced_lease(
            LEASE, CONTROLLER_NAMESPACE
        )
        return lease.spec.holder_identity if lease.spec else None

    def wait_replicas(self, want: int, timeout: float = 30) -> None:
        wait_for(
            f"{WORKLOAD} at {want} replicas (now {self.replicas()})", lambda: self.replicas() == want, timeout
        )

    def logs(self) -> str:
        return "\n".join(f"--- {c.identity}\n{c.log_text()[-3000:]}" for c in self.controllers)


async def _pipe(port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One connection to a pod's address, carried to the emulated worker on 127.0.0.1:``port``."""
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        writer.close()
        return

    async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except OSError:
            pass
        finally:
            dst.close()

    await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))


class EmulatedKubelet:
    """What a kubelet and the Trino image would do for the workload's kwok pods: a Running pod with an IP
    becomes an emulated Trino worker (named after the pod) reachable at ``<pod IP>:<port>`` (a TCP relay to
    the emulator's own port, so TLS, if the emulator serves it, runs end to end), and a pod that goes away
    takes its worker with it. The model's clock follows the wall clock meanwhile. Polls the pods every
    ``interval`` seconds in a thread of its own. The workers belong to ``trino`` (default: the world's
    coordinator) and listen on ``port`` (default: the template's ``http`` port)."""

    def __init__(
        self,
        world: ControllerWorld,
        *,
        interval: float = 0.1,
        trino: SandboxThread | None = None,
        port: int | None = None,
    ) -> None:
        self.world = world
        self.trino = trino if trino is not None else world.trino
        self.port = port if port is not None else world.worker_port
        self.interval = interval
        self.served: dict[str, tuple[str, asyncio.Server]] = {}
        self.left: dict[str, str] = {}
        """Pods gone, with the state their worker was in at that moment."""
        self.error: BaseException | None = None
        self._stop = threading.Event()
        # Relayed connections by worker: closing a listening server leaves its connections open (the
        # controller keeps them alive), and a relay still pending when the emulator's loop closes is lost.
        self._relays: dict[str, set[asyncio.Task[None]]] = {}
        self._last = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="emulated-kubelet", daemon=True)

    def __enter__(self) -> EmulatedKubelet:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

        async def leave_all(sb: TrinoSandbox) -> None:
            for name in list(self.served):
                await self._leave(sb, name)

        self.trino.run(leave_all)
        if self.error is not None and exc[0] is None:
            raise AssertionError(f"the emulated kubelet failed: {self.error!r}") from self.error

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._tick()
            except BaseException as err:  # reported at __exit__
                self.error = err
                return

    def _tick(self) -> None:
        pods = kubernetes.client.CoreV1Api(self.world.api).list_namespaced_pod(
            NAMESPACE, label_selector=",".join(f"{k}={v}" for k, v in LABELS.items())
        )
        running: dict[str, str] = {
            str(p.metadata.name): str(p.status.pod_ip)
            for p in pods.items
            if p.metadata and p.status and p.status.phase == "Running" and p.status.pod_ip
        }
        now = time.monotonic()
        elapsed, self._last = now - self._last, now

        async def step(sb: TrinoSandbox) -> None:
            sb.cluster.advance(sb.cluster.now + elapsed)
            for name, ip in running.items():
                if name not in self.served:
                    await self._join(sb, name, ip)
            for name in [n for n in self.served if n not in running]:
                await self._leave(sb, name)
            await sb.sync()

        self.trino.run(step)

    async def _join(self, sb: TrinoSandbox, name: str, ip: str) -> None:
        if name not in {w.node_id for w in sb.cluster.workers(include_gone=True)}:
            sb.cluster.add_worker(node_id=name)
        await sb.sync()
        port = urlsplit(sb.url(name)).port
        assert port is not None
        relays = self._relays.setdefault(name, set())

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            relays.add(task)
            try:
                await _pipe(port, reader, writer)
            finally:
                relays.discard(task)

        server = await asyncio.start_server(relay, host=ip, port=self.port)
        self.served[name] = (ip, server)

    async def _leave(self, sb: TrinoSandbox, name: str) -> None:
        _, server = self.served.pop(name)
        server.close()
        relays = self._relays.pop(name, set())
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)
        await server.wait_closed()
        node = sb.cluster.node(name)
        self.left[name] = node.state.value if node.alive else "GONE"
        if node.alive:
            sb.cluster.remove_worker(name)
        await sb.sync()

    def state(self, pod: str) -> str:
        def read(sb: TrinoSandbox) -> str:
            node = sb.cluster.node(pod)
            return node.state.value if node.alive else "GONE"

        return self.trino.call(read)
