"""Our adapter behind the real aggregation layer of a ``KubeCluster`` (issue 13), for the real_kube tests.

    trino = SandboxThread()                                   # the emulated coordinator, in its own thread
    with AggregatedAdapter.start(cluster, workdir, trino.url) as adapter:
        cluster.kubectl("get", "--raw", "/apis/external.metrics.k8s.io/v1beta1/namespaces/x/trino_queued_queries")

The adapter runs out of cluster (``python -m queuescale adapter --config FILE``) on 127.0.0.1 in front-proxy mode, with a
serving certificate for ``queuescale-adapter.queuescale.svc`` and a kubeconfig holding a token of the
ServiceAccount ``queuescale/queuescale-adapter``, bound only by the RBAC objects of ``deploy/base/adapter``.
The APIService is ours (``deploy/base/adapter/apiservice.yaml``) with the test CA as caBundle, backed by a
Service of type ExternalName ``localhost`` (Endpoints refuse loopback addresses).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from lab.sandbox.tls import SelfSigned
from lab.sandbox.trino import ResourceGroupSpec, TrinoAuth, TrinoSandbox
from tests.helpers.certs import CertFactory, Issued
from tests.helpers.deploy import ROOT
from tests.helpers.trino import trino_sandbox
from tests.peers.kube_cluster import KeyPair, KubeCluster, free_port

T = TypeVar("T")

NAMESPACE = "queuescale"
SERVICE = "queuescale-adapter"
SERVICE_ACCOUNT = "queuescale-adapter"
APISERVICE = "v1beta1.external.metrics.k8s.io"
GROUP_VERSION = "external.metrics.k8s.io/v1beta1"
# The objects of deploy/base/adapter that give the adapter its permissions, and nothing else.
RBAC_KINDS = ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def wait_for(what: str, ok: Callable[[], T], timeout: float = 60, interval: float = 0.25) -> T:
    """Polls ``ok`` until it returns something true; raises AssertionError naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = ok()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class SandboxThread:
    """The emulated Trino coordinator (tests/helpers/trino.py) served from a thread of its own, so that blocking
    test code can run beside it. Time stands still unless a test moves it (``advance``); one root resource group
    ``global`` runs ``concurrency`` queries at once and queues the rest. With ``auth`` and ``tls`` every node
    authenticates and serves HTTPS with that certificate, as a Trino cluster with password authentication."""

    def __init__(
        self,
        *,
        concurrency: int = 2,
        workers: int = 2,
        auth: TrinoAuth | None = None,
        tls: SelfSigned | None = None,
    ) -> None:
        self._auth = auth
        self._tls = tls
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopping: asyncio.Event | None = None
        self._sandbox: TrinoSandbox | None = None
        self.url = ""
        groups = [ResourceGroupSpec("global", hard_concurrency_limit=concurrency, max_queued=10_000)]
        self._thread = threading.Thread(
            target=self._run, args=(groups, workers), name="trino-sandbox", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the Trino sandbox did not start within 30 s")
        if self._error is not None:
            raise RuntimeError(f"the Trino sandbox did not start: {self._error!r}") from self._error

    def _run(self, groups: Sequence[ResourceGroupSpec], workers: int) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main(groups, workers))
        except BaseException as exc:  # reported to the constructor or to stop()
            self._error = exc
        finally:
            self._ready.set()
            self._loop.close()

    async def _main(self, groups: Sequence[ResourceGroupSpec], workers: int) -> None:
        self._stopping = asyncio.Event()
        async with trino_sandbox(
            478, workers=workers, groups=groups, tick_seconds=None, auth=self._auth, tls=self._tls
        ) as sandbox:
            self._sandbox = sandbox
            self.url = sandbox.coordinator_url
            self._ready.set()
            await self._stopping.wait()

    def call(self, fn: Callable[[TrinoSandbox], T]) -> T:
        """Runs ``fn(sandbox)`` on the sandbox's loop (the model is not thread-safe) and returns its result."""
        sandbox = self._sandbox
        assert sandbox is not None, "the sandbox is stopped"

        async def run() -> T:
            return fn(sandbox)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def run(self, fn: Callable[[TrinoSandbox], Coroutine[Any, Any, T]], timeout: float = 30) -> T:
        """Awaits ``fn(sandbox)`` on the sandbox's loop and returns its result."""
        sandbox = self._sandbox
        assert sandbox is not None, "the sandbox is stopped"
        return asyncio.run_coroutine_threadsafe(fn(sandbox), self._loop).result(timeout)

    def set_queued(self, queued: int) -> None:
        """Makes the coordinator report ``queued`` queued queries (and its group's concurrency running)."""

        def change(sb: TrinoSandbox) -> None:
            cluster = sb.cluster
            # Finish everything there is (time jumps ahead), then submit afresh: running fill the group's
            # concurrency, the rest queue.
            cluster.advance(cluster.now + 1_000_000)
            if queued:
                limit = cluster.root_groups()[0].hard_concurrency_limit
                cluster.submit_many("global", limit + queued, work_seconds=1.0)

        self.call(change)
        got = self.call(lambda sb: sb.cluster.queued_queries())
        assert got == queued, f"the sandbox queues {got} queries, not {queued}"

    def stop(self) -> None:
        """Stops every server of the sandbox (the coordinator then refuses connections)."""
        if self._thread.is_alive() and self._stopping is not None:
            stopping = self._stopping
            self._loop.call_soon_threadsafe(stopping.set)
            self._thread.join(30)
        self._sandbox = None
        if self._error is not None:
            raise RuntimeError(f"the Trino sandbox failed: {self._error!r}") from self._error


def render_base(cluster: KubeCluster) -> list[dict[str, Any]]:
    """``deploy/base`` rendered by the cluster's kubectl (kustomize needs no certificates for the base)."""
    done = cluster.kubectl("kustomize", str(ROOT / "deploy" / "base"))
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _adapter_objects(rendered: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The adapter's RBAC from the rendered base: everything of RBAC_KINDS whose name is the adapter's."""
    return [
        o
        for o in rendered
        if o["kind"] in RBAC_KINDS
        and (o["kind"] == "Namespace" or o["metadata"]["name"].startswith("queuescale-adapter"))
    ]


def apply_objects(cluster: KubeCluster, workdir: Path, name: str, objs: Sequence[Mapping[str, Any]]) -> None:
    """Server-side apply of ``objs`` as admin; a refusal fails with kubectl's message."""
    manifest = workdir / f"{name}.yaml"
    manifest.write_text(yaml.safe_dump_all([dict(o) for o in objs]))
    done = cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=queuescale-tests",
        "-f",
        str(manifest),
        check=False,
    )
    assert done.returncode == 0, f"kubectl apply of {name} refused:\n{done.stderr}"


def service_account_token(cluster: KubeCluster, namespace: str, name: str) -> str:
    """A token of the ServiceAccount from the TokenRequest API (``kubectl create token``)."""
    done = cluster.kubectl("create", "token", name, "-n", namespace, "--duration=2h")
    return done.stdout.strip()


def token_kubeconfig(cluster: KubeCluster, path: Path, token: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "real",
                "cluster": {"server": cluster.server, "certificate-authority": str(cluster.ca_file)},
            }
        ],
        "users": [{"name": "token", "user": {"token": token}}],
        "contexts": [{"name": "real", "context": {"cluster": "real", "user": "token"}}],
        "current-context": "real",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def https_get(
    url: str,
    ca: Path,
    *,
    headers: Mapping[str, str] | None = None,
    client: KeyPair | Issued | None = None,
    timeout: float = 5,
) -> Response:
    """One GET over HTTPS verifying the server against ``ca``; any HTTP status is returned, not raised."""
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(str(client.cert_file), str(client.key_file))
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, context=context, timeout=timeout) as answer:
            return Response(answer.status, answer.read())
    except urllib.error.HTTPError as err:
        return Response(err.code, err.read())


@dataclass
class AggregatedAdapter:
    """The adapter process, its addresses and the certificates a test needs to talk to it directly."""

    cluster: KubeCluster
    process: subprocess.Popen[bytes]
    port: int
    ca: Issued
    log: Path
    config_file: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def get(self, path: str, **kwargs: Any) -> Response:
        """GET straight from the adapter (not through kube-apiserver)."""
        return https_get(self.url + path, self.ca.cert_file, **kwargs)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)

    def __enter__(self) -> AggregatedAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @classmethod
    def start(
        cls,
        cluster: KubeCluster,
        workdir: Path,
        trino_url: str,
        *,
        name: str = "adapter",
        max_age_seconds: float | None = 3.0,
        poll_interval_seconds: float = 0.25,
        extra_sources: Sequence[Mapping[str, Any]] = (),
        source: Mapping[str, Any] | None = None,
        register: bool = True,
        timeout: float = 90,
    ) -> AggregatedAdapter:
        """Installs the adapter's RBAC, starts it with a token of its ServiceAccount, registers our APIService
        (``register``) and waits until it is Available. The Trino source ``adhoc`` polls ``trino_url``
        (``max_age_seconds`` None: the adapter's default bound), with the fields of ``source`` over those;
        ``extra_sources`` are more ``trino[]`` entries."""
        workdir.mkdir(parents=True, exist_ok=True)
        apply_objects(cluster, workdir, "adapter-rbac", _adapter_objects(render_base(cluster)))
        token = service_account_token(cluster, NAMESPACE, SERVICE_ACCOUNT)
        kubeconfig = token_kubeconfig(cluster, workdir / "adapter.kubeconfig", token)
        certs = CertFactory(workdir / "certs")
        ca = certs.ca("adapter-ca")
        serving = certs.serving(ca, service=SERVICE, namespace=NAMESPACE)
        port = free_port()
        settings = {
            "server": {
                "listen": f"127.0.0.1:{port}",
                "tls_cert_file": str(serving.cert_file),
                "tls_key_file": str(serving.key_file),
            },
            "auth": {"mode": "front-proxy"},
            "kube": {"kubeconfig": str(kubeconfig)},
            "trino": [
                {
                    "name": "adhoc",
                    "endpoint": {"url": trino_url},
                    "poll_interval_seconds": poll_interval_seconds,
                    "timeout_seconds": 1.0,
                    "backoff_max_seconds": 1.0,
                    **({"max_age_seconds": max_age_seconds} if max_age_seconds is not None else {}),
                    **(source or {}),
                },
                *[dict(source) for source in extra_sources],
            ],
        }
        config_file = workdir / f"{name}.yaml"
        config_file.write_text(yaml.safe_dump(settings))
        log = workdir / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUEUESCALE_")}
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "queuescale", "adapter", "--config", str(config_file)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=env,
            )
        adapter = cls(cluster, process, port, ca, log, config_file)
        try:

            def ready() -> bool:
                if process.poll() is not None:
                    raise AssertionError(
                        f"the adapter exited with {process.returncode}:\n{adapter.log_tail()}"
                    )
                with contextlib.suppress(OSError):
                    return adapter.get("/readyz", timeout=2).status == 200
                return False

            wait_for("the adapter's /readyz", ready, timeout)
            if register:
                adapter.register(workdir, timeout=timeout)
        except BaseException:
            adapter.stop()
            raise
        return adapter

    def register(self, workdir: Path, *, timeout: float = 90) -> None:
        """Our APIService (caBundle: the test CA, port: the adapter's) and its ExternalName Service."""
        cluster = self.cluster
        apiservice = yaml.safe_load((ROOT / "deploy" / "base" / "adapter" / "apiservice.yaml").read_text())
        assert apiservice["spec"]["service"] == {"name": SERVICE, "namespace": NAMESPACE, "port": 443}
        apiservice["spec"]["service"]["port"] = self.port
        apiservice["spec"]["caBundle"] = base64.b64encode(self.ca.cert_pem).decode()
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE},
            "spec": {
                "type": "ExternalName",
                "externalName": "localhost",
                "ports": [{"name": "https", "port": self.port}],
            },
        }
        # A ClusterIP Service of the same name (the overlay's) cannot turn into an ExternalName by apply.
        cluster.kubectl("delete", "service", SERVICE, "-n", NAMESPACE, "--ignore-not-found")
        apply_objects(cluster, workdir, "adapter-apiservice", [service, apiservice])

        def available() -> bool:
            got = json.loads(cluster.kubectl("get", "apiservice", APISERVICE, "-o", "json").stdout)
            return any(
                c["type"] == "Available" and c["status"] == "True"
                for c in got.get("status", {}).get("conditions", [])
            )

        wait_for(f"the APIService {APISERVICE} Available", available, timeout)

    def unregister(self) -> None:
        self.cluster.kubectl("delete", "apiservice", APISERVICE, "--ignore-not-found")
