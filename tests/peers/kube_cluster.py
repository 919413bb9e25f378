"""A real Kubernetes control plane on loopback, for tests: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (fake nodes whose pods become Running and Ready with pod IPs), built from the Go
module proxy by ``build_kube.sh`` (see README.md beside this file).

    bin_dir = ensure_built()                      # builds once (tens of minutes), then instant
    cluster = start_cluster(tmp_path / "kube")    # a few seconds
    cluster.add_node("kwok-node-0")
    api = cluster.api_client()                    # kubernetes.client.ApiClient as cluster-admin
    ...
    cluster.stop()                                # ends only the processes it started, by pid

Everything lives under the work directory: certificates and keys (``pki/``), kubeconfigs, etcd's data and one
log per process (``logs/``). Every port is picked free on 127.0.0.1 at start (``cluster.ports``).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build_kube.sh"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubectl")

# kwok manages the nodes that carry this annotation (the convention of kwok's own docs and kwokctl).
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"  # the first address of the range: the `kubernetes` Service
# Pod IPs that kwok hands out. Data only: nothing here dials them (a test must not either).
POD_CIDR = "10.244.0.1/16"
FRONT_PROXY_CLIENT_CN = "front-proxy-client"


class ClusterError(RuntimeError):
    """The build or a component failed; the message names it and quotes the end of its log."""


# --------------------------------------------------------------------------------------------------- build


def cache_bin_dir_if_built() -> Path | None:
    """The cached bin directory if build_kube.sh finds it complete (no build), else None."""
    proc = subprocess.run(["bash", str(BUILD_SCRIPT), "--check"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return None
    return Path(proc.stdout.strip().splitlines()[-1])


def ensure_built(*, log_file: Path | None = None) -> Path:
    """The bin directory with every binary, running build_kube.sh (a cold build: tens of minutes) if needed."""
    found = cache_bin_dir_if_built()
    if found is not None:
        return found
    with contextlib.ExitStack() as stack:
        stderr: Any = None
        if log_file is not None:
            stderr = stack.enter_context(log_file.open("ab"))
        proc = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, stderr=stderr, check=False)
    if proc.returncode != 0:
        where = f" (log: {log_file})" if log_file is not None else ""
        raise ClusterError(f"{BUILD_SCRIPT} failed with exit code {proc.returncode}{where}")
    return Path(proc.stdout.decode().strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------------- PKI


@dataclass(frozen=True)
class KeyPair:
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class _CA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    pair: KeyPair


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    os.replace(tmp, path)


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return builder.not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))


def _new_ca(directory: Path, name: str) -> _CA:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        _validity(x509.CertificateBuilder())
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    _write(pair.cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(pair.key_file, _pem_key(key))
    return _CA(cert, key, pair)


def _issue(
    ca: _CA,
    directory: Path,
    name: str,
    *,
    cn: str,
    organizations: Iterable[str] = (),
    server: bool = False,
    dns_names: Sequence[str] = (),
    ips: Sequence[str] = (),
) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(x509.Name(attributes))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    _write(pair.cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(pair.key_file, _pem_key(key))
    return pair


def _serving(ca: _CA, directory: Path, name: str) -> KeyPair:
    return _issue(
        ca,
        directory,
        name,
        cn=name,
        server=True,
        dns_names=[
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
        ips=["127.0.0.1", KUBERNETES_SERVICE_IP],
    )


# --------------------------------------------------------------------------------------------- the cluster


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS's pick; the usual small race before it is bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kubeconfig(path: Path, server: str, ca_file: Path, client: KeyPair, user: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "queuescale", "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate": str(client.cert_file), "client-key": str(client.key_file)},
            }
        ],
        "contexts": [{"name": "queuescale", "context": {"cluster": "queuescale", "user": user}}],
        "current-context": "queuescale",
    }
    _write(path, json.dumps(config, indent=2).encode())
    return path


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class KubeCluster:
    """A running control plane. ``stop()`` (or leaving a ``with`` block) ends the processes it started."""

    workdir: Path
    bin_dir: Path
    ports: dict[str, int]
    server: str
    ca_file: Path  # the CA of every serving certificate here (apiserver, controller-manager, scheduler)
    client_ca: KeyPair  # --client-ca-file: signs the certificates of users (see client_cert)
    front_proxy_ca: KeyPair  # --requestheader-client-ca-file: an aggregated API server trusts this one
    front_proxy_client: KeyPair  # --proxy-client-cert-file/--proxy-client-key-file (CN front-proxy-client)
    service_account_key: Path  # signs service-account tokens (PEM private key; the public half is *.pub)
    admin_kubeconfig: Path  # user "admin" in group system:masters
    version: str
    _client_ca: _CA = field(repr=False)
    # SIGKILL to every component if the thread that started it dies (even by SIGKILL): no orphans when a test
    # run is killed. Not SIGTERM: all at once, etcd goes first and kube-apiserver's graceful shutdown then
    # hangs on it. Only when started from the main thread (a worker thread may end before the cluster).
    die_with_parent: bool = True
    _procs: list[_Proc] = field(default_factory=list, repr=False)

    # ----------------------------------------------------------------------------------- identities

    @property
    def pki_dir(self) -> Path:
        return self.workdir / "pki"

    def client_cert(self, user: str, groups: Sequence[str] = (), *, name: str | None = None) -> KeyPair:
        """A client certificate for ``user`` in ``groups`` (CN and O), signed by the client CA."""
        file_name = name or "user-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in user)
        return _issue(self._client_ca, self.pki_dir, file_name, cn=user, organizations=groups)

    def kubeconfig(self, user: str, groups: Sequence[str] = (), *, name: str | None = None) -> Path:
        """A kubeconfig that authenticates as ``user`` in ``groups`` with a client certificate."""
        pair = self.client_cert(user, groups, name=name)
        stem = pair.cert_file.stem
        return _kubeconfig(self.workdir / f"{stem}.kubeconfig", self.server, self.ca_file, pair, user)

    def api_client(self, kubeconfig: Path | None = None) -> Any:
        """A ``kubernetes.client.ApiClient`` (admin unless another kubeconfig is given)."""
        from kubernetes import config as kube_config

        new_client: Any = kube_config.new_client_from_config
        return new_client(config_file=str(kubeconfig or self.admin_kubeconfig))

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Runs the kubectl built with the cluster (same version) as admin."""
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.admin_kubeconfig}", *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    # ----------------------------------------------------------------------------------------- HTTP

    def get(self, path: str, *, client: KeyPair | None = None, timeout: float = 5) -> tuple[int, bytes]:
        """GET ``path`` from the apiserver (anonymous unless ``client`` is given): status and body."""
        return _https_get(self.server + path, self.ca_file, client, timeout)

    # ---------------------------------------------------------------------------------------- nodes

    def add_node(
        self,
        name: str,
        *,
        cpu: str = "32",
        memory: str = "256Gi",
        pods: str = "110",
        labels: Mapping[str, str] | None = None,
        taint: bool = False,
        pod_cidr: str | None = None,
        wait_ready: float | None = 60,
    ) -> dict[str, Any]:
        """Creates a Node that kwok manages (it becomes Ready, and its pods Running), then waits for Ready.

        With ``taint`` it carries kwok's usual ``kwok.x-k8s.io/node=fake:NoSchedule`` taint, so that only pods
        which tolerate it land there; by default it has none, so any Deployment's pods can. With ``pod_cidr`` (``spec.podCIDR``) kwok gives
        that node's pods IPs from it instead of its ``--cidr``: ``127.0.1.0/24`` gives loopback addresses."""
        key, value = KWOK_NODE_ANNOTATION
        node: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                    **(labels or {}),
                },
            },
            "spec": {},
            "status": {
                "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
                "capacity": {"cpu": cpu, "memory": memory, "pods": pods},
            },
        }
        if pod_cidr is not None:
            node["spec"]["podCIDR"] = pod_cidr
        if taint:
            node["spec"]["taints"] = [{"key": key, "value": value, "effect": "NoSchedule"}]
        from kubernetes import client as kube_client

        with self.api_client() as api:
            created: dict[str, Any] = api.sanitize_for_serialization(
                kube_client.CoreV1Api(api).create_node(body=cast(Any, node))
            )
        if wait_ready is not None:
            self.wait_node_ready(name, timeout=wait_ready)
        return created

    def wait_node_ready(self, name: str, *, timeout: float = 60) -> None:
        from kubernetes import client as kube_client

        with self.api_client() as api:
            core = kube_client.CoreV1Api(api)

            def ready() -> bool:
                node = core.read_node(name)
                conditions = (node.status.conditions if node.status else None) or []
                return any(c.type == "Ready" and c.status == "True" for c in conditions)

            self._wait(f"node {name} Ready", ready, timeout)

    # ------------------------------------------------------------------------------------ lifecycle

    def pids(self) -> dict[str, int]:
        return {p.name: p.popen.pid for p in self._procs}

    def rss_bytes(self) -> dict[str, int]:
        """Resident memory of each process (from /proc), for the record."""
        out: dict[str, int] = {}
        for p in self._procs:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{p.popen.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        out[p.name] = int(line.split()[1]) * 1024
        return out

    def check_running(self) -> None:
        """Raises if any component has exited."""
        for p in self._procs:
            if p.popen.poll() is not None:
                raise ClusterError(f"{p.name} exited with {p.popen.returncode}\n{_tail(p.log)}")

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM to each process this cluster started (by pid, newest first), SIGKILL after ``timeout``."""
        procs, self._procs = self._procs, []
        for p in reversed(procs):
            if p.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.popen.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            try:
                p.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.popen.kill()
                p.popen.wait(5)
        with contextlib.suppress(ValueError):
            atexit.unregister(self.stop)

    def __enter__(self) -> KubeCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------- internal

    def _start(self, name: str, args: list[str], env: Mapping[str, str] | None = None) -> _Proc:
        log = self.workdir / "logs" / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [str(self.bin_dir / name), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env={**os.environ, "GOMAXPROCS": "2", **(env or {})},
                start_new_session=True,  # a Ctrl-C in the terminal is not theirs: stop() ends them
                preexec_fn=_die_with_parent_thread() if self.die_with_parent else None,
            )
        proc = _Proc(name, popen, log)
        self._procs.append(proc)
        return proc

    def _wait(self, what: str, ok: Any, timeout: float, interval: float = 0.25) -> Any:
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while True:
            self.check_running()
            try:
                result = ok()
                if result:
                    return result
            except Exception as e:  # not up yet: remember why, for the timeout message
                last = e
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name}\n{_tail(p.log, 15)}" for p in self._procs)
                raise ClusterError(
                    f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})\n{logs}"
                )
            time.sleep(interval)


def _die_with_parent_thread() -> Any:
    """A preexec_fn asking Linux to SIGKILL the child when the thread that forked it dies (PR_SET_PDEATHSIG)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def set_pdeathsig() -> None:
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1

    return set_pdeathsig


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _https_get(url: str, ca_file: Path, client: KeyPair | None, timeout: float) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(ca_file))
    if client is not None:
        context.load_cert_chain(str(client.cert_file), str(client.key_file))
    try:
        with urllib.request.urlopen(url, context=context, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as e:
        return int(e.code), bytes(e.read())


def _http_ok(url: str, ca_file: Path | None = None, client: KeyPair | None = None) -> bool:
    if ca_file is None:
        with urllib.request.urlopen(url, timeout=3) as response:
            return int(response.status) == 200
    return _https_get(url, ca_file, client, 3)[0] == 200


def start_cluster(
    workdir: Path,
    *,
    bin_dir: Path | None = None,
    extra_args: Mapping[str, Sequence[str]] | None = None,
    hpa_sync_period: str = "2s",
    timeout: float = 120,
) -> KubeCluster:
    """Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on loopback.

    Returns once the apiserver's /readyz, both controllers' /healthz answer and the ``default`` namespace
    has its ``default`` ServiceAccount (so pods can be created). Add nodes with ``add_node``.
    ``extra_args`` appends flags per binary name (a later flag overrides an earlier one)."""
    bin_dir = bin_dir or ensure_built()
    for b in BINARIES:
        if not (bin_dir / b).is_file():
            raise ClusterError(f"{bin_dir / b} is missing: run {BUILD_SCRIPT}")
    workdir = workdir.resolve()
    pki = workdir / "pki"
    for d in (workdir, pki, workdir / "logs"):
        d.mkdir(parents=True, exist_ok=True)
    (workdir / "etcd").mkdir(mode=0o700, exist_ok=True)
    extra = {k: list(v) for k, v in (extra_args or {}).items()}

    # --- PKI: one CA for serving certificates, one for clients, one for the front proxy (aggregation layer).
    server_ca = _new_ca(pki, "ca")
    client_ca = _new_ca(pki, "client-ca")
    front_proxy_ca = _new_ca(pki, "front-proxy-ca")
    front_proxy_client = _issue(front_proxy_ca, pki, "front-proxy-client", cn=FRONT_PROXY_CLIENT_CN)
    apiserver_pair = _serving(server_ca, pki, "kube-apiserver")
    kcm_serving = _serving(server_ca, pki, "kube-controller-manager-serving")
    scheduler_serving = _serving(server_ca, pki, "kube-scheduler-serving")
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_key_file, sa_pub_file = pki / "sa.key", pki / "sa.pub"
    _write(sa_key_file, _pem_key(sa_key))
    _write(
        sa_pub_file,
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        0o644,
    )

    ports = {
        "etcd": free_port(),
        "etcd-peer": free_port(),
        "kube-apiserver": free_port(),
        "kube-controller-manager": free_port(),
        "kube-scheduler": free_port(),
    }
    server = f"https://127.0.0.1:{ports['kube-apiserver']}"

    def kubeconfig_for(name: str, user: str, groups: Sequence[str] = ()) -> Path:
        pair = _issue(client_ca, pki, name, cn=user, organizations=groups)
        return _kubeconfig(workdir / f"{name}.kubeconfig", server, server_ca.pair.cert_file, pair, user)

    admin = kubeconfig_for("admin", "admin", ["system:masters"])
    kcm_config = kubeconfig_for("kube-controller-manager", "system:kube-controller-manager")
    scheduler_config = kubeconfig_for("kube-scheduler", "system:kube-scheduler")
    kwok_config = kubeconfig_for("kwok", "kwok", ["system:masters"])

    cluster = KubeCluster(
        workdir=workdir,
        bin_dir=bin_dir,
        ports=ports,
        server=server,
        ca_file=server_ca.pair.cert_file,
        client_ca=client_ca.pair,
        front_proxy_ca=front_proxy_ca.pair,
        front_proxy_client=front_proxy_client,
        service_account_key=sa_key_file,
        admin_kubeconfig=admin,
        version="",
        _client_ca=client_ca,
        die_with_parent=threading.current_thread() is threading.main_thread(),
    )
    atexit.register(cluster.stop)
    try:
        _launch(
            cluster,
            extra,
            hpa_sync_period=hpa_sync_period,
            timeout=timeout,
            apiserver_pair=apiserver_pair,
            kcm_serving=kcm_serving,
            scheduler_serving=scheduler_serving,
            sa_pub_file=sa_pub_file,
            kcm_config=kcm_config,
            scheduler_config=scheduler_config,
            kwok_config=kwok_config,
        )
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _launch(
    cluster: KubeCluster,
    extra: dict[str, list[str]],
    *,
    hpa_sync_period: str,
    timeout: float,
    apiserver_pair: KeyPair,
    kcm_serving: KeyPair,
    scheduler_serving: KeyPair,
    sa_pub_file: Path,
    kcm_config: Path,
    scheduler_config: Path,
    kwok_config: Path,
) -> None:
    ports, workdir = cluster.ports, cluster.workdir
    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
    cluster._start(
        "etcd",
        [
            "--name=queuescale",
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=queuescale={peer_url}",
            "--initial-cluster-state=new",
            "--quota-backend-bytes=268435456",  # 256 MiB: plenty for a test cluster
            "--unsafe-no-fsync=true",  # a throw-away store: no fsync, much less I/O wait
            "--log-level=warn",
            *extra.get("etcd", []),
        ],
    )
    cluster._wait("etcd /health", lambda: _http_ok(f"{etcd_url}/health"), timeout)

    cluster._start(
        "kube-apiserver",
        [
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports['kube-apiserver']}",
            f"--tls-cert-file={apiserver_pair.cert_file}",
            f"--tls-private-key-file={apiserver_pair.key_file}",
            f"--client-ca-file={cluster.client_ca.cert_file}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-key-file={sa_pub_file}",
            f"--service-account-signing-key-file={cluster.service_account_key}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # The aggregation layer: how it authenticates to an aggregated API server (the adapter).
            f"--requestheader-client-ca-file={cluster.front_proxy_ca.cert_file}",
            f"--requestheader-allowed-names={FRONT_PROXY_CLIENT_CN}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={cluster.front_proxy_client.cert_file}",
            f"--proxy-client-key-file={cluster.front_proxy_client.key_file}",
            # The apiserver's own address is 127.0.0.1, which Endpoints refuse: no reconciler.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            *extra.get("kube-apiserver", []),
        ],
    )
    cluster._wait(
        "kube-apiserver /readyz",
        lambda: _http_ok(f"{cluster.server}/readyz", cluster.ca_file),
        timeout,
    )
    status, body = cluster.get("/version")
    cluster.version = str(json.loads(body)["gitVersion"]) if status == 200 else ""

    def delegated(config: Path, serving: KeyPair, port: int) -> list[str]:
        return [
            f"--kubeconfig={config}",
            f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={serving.cert_file}",
            f"--tls-private-key-file={serving.key_file}",
            "--leader-elect=false",
        ]

    cluster._start(
        "kube-controller-manager",
        [
            *delegated(kcm_config, kcm_serving, ports["kube-controller-manager"]),
            "--controllers=*",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={cluster.service_account_key}",
            f"--root-ca-file={cluster.ca_file}",
            f"--cluster-signing-cert-file={cluster.client_ca.cert_file}",
            f"--cluster-signing-key-file={cluster.client_ca.key_file}",
            f"--horizontal-pod-autoscaler-sync-period={hpa_sync_period}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--kube-api-qps=100",
            "--kube-api-burst=200",
            *extra.get("kube-controller-manager", []),
        ],
    )
    cluster._start(
        "kube-scheduler",
        [
            *delegated(scheduler_config, scheduler_serving, ports["kube-scheduler"]),
            *extra.get("kube-scheduler", []),
        ],
    )
    key, value = KWOK_NODE_ANNOTATION
    cluster._start(
        "kwok",
        [
            f"--kubeconfig={kwok_config}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={key}={value}",
            f"--cidr={POD_CIDR}",
            "--node-ip=10.243.0.1",
            *extra.get("kwok", []),
        ],
        # kwok reads ~/.kwok/kwok.yaml when present: a throw-away home keeps the user's out.
        env={"HOME": str(workdir)},
    )
    for name in ("kube-controller-manager", "kube-scheduler"):
        url = f"https://127.0.0.1:{ports[name]}/healthz"
        cluster._wait(f"{name} /healthz", lambda url=url: _http_ok(url, cluster.ca_file), timeout)

    from kubernetes import client as kube_client

    with cluster.api_client() as api:
        core = kube_client.CoreV1Api(api)
        cluster._wait(
            "the default ServiceAccount",
            lambda: core.read_namespaced_service_account("default", "default"),
            timeout,
        )
