"""A real Trino cluster on loopback: one coordinator and N workers, each its own JVM.

    cluster = start_trino_cluster(tmp_path, workers=2)
    try:
        cluster.query("SELECT count(*) FROM tpch.tiny.nation")         # [[25]]
        slow = cluster.submit("SELECT count(*) FROM blackhole.default.slow")
        cluster.set_state(cluster.workers[0], "DRAINING")
    finally:
        cluster.stop()

The server comes from ``tests/peers/fetch_trino.sh`` (Maven Central, cached outside the repository);
``QUEUESCALE_TRINO_HOME`` points at an unpacked server instead. Java is ``QUEUESCALE_JAVA`` (a ``java``
binary or a JDK home), else the Temurin 25 JDK beside the default Java, else any JDK >= 24 under
``/usr/lib/jvm``, ``JAVA_HOME`` or ``PATH``.

Every node gets the catalogs tpch, memory, blackhole and jmx, file-based system access control (user
``admin`` reads and writes system information, ``monitor`` reads it, everybody runs queries) and
``shutdown.grace-period`` (3 s by default). The coordinator schedules no work
(``node-scheduler.include-coordinator=false``) and runs the file resource-group manager: ``global``
(``hardConcurrencyLimit`` 100) over ``global.serial`` (limit 1, chosen by source ``serial``) and
``global.adhoc`` (everything else). With ``https=True`` every node also serves HTTPS with a self-signed
certificate and PASSWORD authentication from a password file (PBKDF2 hashes), and the nodes share an
internal-communication secret; internal traffic (discovery, tasks) stays on plain HTTP.

Only the standard library and ``cryptography``: the module is used from synchronous test code and from
threads, so it speaks HTTP with ``urllib``.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.sandbox.tls import self_signed

TRINO_VERSION = 476
FETCH_SCRIPT = Path(__file__).with_name("fetch_trino.sh")
TEMURIN_25 = Path("/usr/lib/jvm/temurin-25-jdk-amd64/bin/java")
MIN_JAVA = 24  # Trino 476 needs 24.0.1+

ADMIN = "admin"  # reads and writes system information (PUT /v1/info/state)
MONITOR = "monitor"  # reads system information (/metrics, /v1/node, resource groups)
USER = "alice"  # runs queries, nothing else
#: Passwords of the password file (HTTPS clusters only).
PASSWORDS: dict[str, str] = {ADMIN: "admin-pw", MONITOR: "monitor-pw", USER: "alice-pw"}
SERIAL_SOURCE = "serial"  # queries with this X-Trino-Source land in global.serial (hardConcurrencyLimit 1)
LAZY_SOURCE = "lazy"  # ... in global.lazy, which only one test selects

NODE_STATES = ("ACTIVE", "DRAINING", "DRAINED", "SHUTTING_DOWN", "INACTIVE")


class TrinoClusterError(RuntimeError):
    """The cluster could not be set up, or a node died or never became ready."""


# --------------------------------------------------------------------------------------------------- locate


def java_major(java: Path) -> int | None:
    """The feature release of ``java`` (``25`` for 25.0.3), or None when it does not run."""
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def find_java() -> Path:
    """A ``java`` new enough for Trino 476 (see the module docstring for the order)."""
    candidates: list[Path] = []
    explicit = os.environ.get("QUEUESCALE_JAVA")
    if explicit:
        p = Path(explicit)
        p = p / "bin" / "java" if p.is_dir() else p
        if java_major(p) is None:
            raise TrinoClusterError(f"QUEUESCALE_JAVA={explicit} is not a runnable java")
        return p
    candidates.append(TEMURIN_25)
    candidates.extend(sorted(Path("/usr/lib/jvm").glob("*/bin/java"), reverse=True))
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(on_path))
    seen: list[str] = []
    for c in candidates:
        if not c.exists():
            continue
        major = java_major(c)
        seen.append(f"{c} ({major})")
        if major is not None and major >= MIN_JAVA:
            return c
    raise TrinoClusterError(
        f"Trino {TRINO_VERSION} needs Java >= {MIN_JAVA}; set QUEUESCALE_JAVA. Found: {', '.join(seen) or 'none'}"
    )


def find_trino(version: int = TRINO_VERSION) -> Path:
    """The unpacked server: ``QUEUESCALE_TRINO_HOME``, else what ``fetch_trino.sh`` fetches (or has)."""
    home = os.environ.get("QUEUESCALE_TRINO_HOME")
    if home:
        return Path(home)
    done = subprocess.run(
        ["bash", str(FETCH_SCRIPT)],
        env={**os.environ, "TRINO_VERSION": str(version)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise TrinoClusterError(f"fetch_trino.sh failed ({done.returncode}): {done.stderr.strip()}")
    return Path(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------------- security


def self_signed_pem(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (key+cert PEM for Trino, cert PEM for clients)."""
    pair = self_signed(directory, "queuescale-trino-test")
    keystore = directory / "keystore.pem"
    keystore.write_bytes(pair.key_file.read_bytes() + pair.cert_file.read_bytes())
    return keystore, pair.cert_file


def pbkdf2_entry(user: str, password: str, *, iterations: int = 1000) -> str:
    """A password-file line Trino's file authenticator accepts: ``user:iterations:salt:hash`` (PBKDF2-SHA1, hex).

    Trino 476 (``EncryptionUtil``) checks PBKDF2WithHmacSHA1 with the key length of the stored hash and at
    least 1000 iterations; bcrypt (``$2y$``, cost >= 8) is the other accepted form.
    """
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, iterations, dklen=64)
    return f"{user}:{iterations}:{salt.hex()}:{digest.hex()}"


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ------------------------------------------------------------------------------------------------------ http


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str,
    url: str,
    *,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 30.0,
) -> Response:
    """One request; every HTTP status comes back as a Response (only transport errors raise)."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return Response(resp.status, dict(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, dict(e.headers.items()) if e.headers else {}, e.read())


# ------------------------------------------------------------------------------------------------------ node


@dataclass
class TrinoNode:
    name: str
    coordinator: bool
    http_port: int
    https_port: int | None
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    #: The loopback address the node binds and announces (a kwok pod's IP for a worker behind a pod).
    host: str = "127.0.0.1"

    @property
    def node_id(self) -> str:
        return self.name

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def https_url(self) -> str | None:
        return f"https://127.0.0.1:{self.https_port}" if self.https_port else None

    @property
    def url(self) -> str:
        """Where clients go: HTTPS when the node serves it, else HTTP."""
        return self.https_url or self.http_url

    @property
    def etc(self) -> Path:
        return self.directory / "etc"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss_bytes(self) -> int | None:
        """Resident memory of the JVM now (``VmRSS``), or None when it is not running."""
        if not self.alive() or self.pid is None:
            return None
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        return int(m.group(1)) * 1024 if m else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # PR_SET_PDEATHSIG: the JVM gets SIGKILL when the thread that started it goes away, so an aborted test
    # run leaves no orphan servers. Linux only; harmless to skip elsewhere.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


# --------------------------------------------------------------------------------------------------- queries


class RunningQuery:
    """A statement followed through the client protocol (POST /v1/statement, then nextUri) in a thread.

    ``query_id`` is known as soon as the first answer came; ``state`` is the latest ``stats.state``;
    ``rows``/``columns``/``error`` fill in as the query ends. ``wait()`` blocks until it ended.
    """

    def __init__(
        self,
        cluster: TrinoCluster,
        sql: str,
        *,
        user: str,
        source: str | None,
        catalog: str | None,
        schema: str | None,
        session: Mapping[str, str] | None,
    ) -> None:
        self.cluster = cluster
        self.sql = sql
        self.user = user
        self.source = source
        self.catalog = catalog
        self.schema = schema
        self.session = dict(session or {})
        self.query_id: str | None = None
        self.state: str | None = None
        self.states: list[str] = []  # every distinct state seen, in order
        self.columns: list[dict[str, Any]] = []
        self.rows: list[list[Any]] = []
        self.error: dict[str, Any] | None = None
        self.transport_error: BaseException | None = None
        self.last: dict[str, Any] = {}
        self._next_uri: str | None = None
        self._cancelled = threading.Event()
        self._go = threading.Event()  # cleared by pause(): the client stops fetching, as a slow client does
        self._go.set()
        self._started = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"trino-query-{id(self)}", daemon=True)

    def start(self) -> RunningQuery:
        self._thread.start()
        self._started.wait(60)
        return self

    def _headers(self) -> dict[str, str]:
        h = self.cluster.auth_headers(self.user)
        if self.source:
            h["X-Trino-Source"] = self.source
        if self.catalog:
            h["X-Trino-Catalog"] = self.catalog
        if self.schema:
            h["X-Trino-Schema"] = self.schema
        if self.session:
            h["X-Trino-Session"] = ",".join(f"{k}={v}" for k, v in self.session.items())
        return h

    def _absorb(self, doc: dict[str, Any]) -> None:
        self.last = doc
        self.query_id = doc.get("id", self.query_id)
        state = (doc.get("stats") or {}).get("state")
        if state:
            self.state = state
            if not self.states or self.states[-1] != state:
                self.states.append(state)
        if doc.get("columns"):
            self.columns = doc["columns"]
        if doc.get("data"):
            self.rows.extend(doc["data"])
        if doc.get("error"):
            self.error = doc["error"]
        self._next_uri = doc.get("nextUri")

    def _run(self) -> None:
        try:
            resp = http(
                "POST",
                f"{self.cluster.client_url}/v1/statement",
                body=self.sql,
                headers=self._headers(),
                context=self.cluster.ssl_context,
            )
            if resp.status != 200:
                self.error = {"message": f"HTTP {resp.status}: {resp.text[:500]}"}
                return
            self._absorb(resp.json())
            self._started.set()
            while self._next_uri and not self._cancelled.is_set():
                if not self._go.is_set():
                    self._go.wait(0.2)
                    continue
                resp = http("GET", self._next_uri, headers=self._headers(), context=self.cluster.ssl_context)
                if resp.status == 503:  # the protocol says: retry
                    time.sleep(0.1)
                    continue
                if resp.status != 200:
                    self.error = {"message": f"HTTP {resp.status}: {resp.text[:500]}"}
                    return
                self._absorb(resp.json())
        except BaseException as e:  # reported through the handle
            self.transport_error = e
        finally:
            self._started.set()
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float = 300.0) -> RunningQuery:
        if not self._done.wait(timeout):
            raise TimeoutError(f"query {self.query_id} still {self.state} after {timeout}s: {self.sql}")
        if self.transport_error is not None:
            raise TrinoClusterError(f"query {self.query_id} lost: {self.transport_error!r}")
        return self

    def result(self, timeout: float = 300.0) -> list[list[Any]]:
        """The rows; raises when the query failed."""
        self.wait(timeout)
        if self.error:
            raise TrinoClusterError(f"query {self.query_id} failed: {self.error.get('message')}")
        return self.rows

    def pause(self) -> None:
        """Stop fetching results: once the output buffers fill, every driver blocks (a fully blocked query).

        The coordinator abandons a query whose client stays away longer than ``query.client.timeout`` (5m).
        """
        self._go.clear()

    def resume(self) -> None:
        self._go.set()

    def cancel(self) -> None:
        """Cancel the way clients do: DELETE the current nextUri; then stop following."""
        uri = self._next_uri
        self._cancelled.set()
        if uri:
            http("DELETE", uri, headers=self._headers(), context=self.cluster.ssl_context)
        self._done.wait(30)


# --------------------------------------------------------------------------------------------------- cluster


@dataclass
class TrinoCluster:
    directory: Path
    trino_home: Path
    java: Path
    coordinator: TrinoNode
    workers: list[TrinoNode]
    https: bool
    required_workers: int | None
    shared_secret: str | None = None
    ca_file: Path | None = None
    keystore: Path | None = None
    jvm_options: list[str] = field(default_factory=list)
    worker_heap: str = "512m"
    extra_worker_config: dict[str, str] = field(default_factory=dict)
    startup_seconds: float = 0.0
    _ssl: ssl.SSLContext | None = None
    _queries: list[RunningQuery] = field(default_factory=list)

    # ---- addresses and credentials

    @property
    def nodes(self) -> list[TrinoNode]:
        return [self.coordinator, *self.workers]

    @property
    def client_url(self) -> str:
        """The coordinator URL clients use (HTTPS when enabled)."""
        return self.coordinator.url

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        if self.ca_file is None:
            return None
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=str(self.ca_file))
        return self._ssl

    def auth_headers(self, user: str | None, password: str | None = None) -> dict[str, str]:
        """Identity headers: ``X-Trino-User`` always, plus Basic credentials on an HTTPS cluster."""
        if user is None:
            return {}
        h = {"X-Trino-User": user}
        if self.https:
            h["Authorization"] = basic_auth(user, password if password is not None else PASSWORDS[user])
        return h

    # ---- raw REST

    def request(
        self,
        node: TrinoNode | str,
        method: str,
        path: str,
        *,
        user: str | None = None,
        password: str | None = None,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        scheme: str | None = None,
        timeout: float = 30.0,
    ) -> Response:
        """``method path`` on a node (its client URL, or ``scheme`` "http"/"https"), as ``user``."""
        if isinstance(node, str):
            base = node
        elif scheme == "http":
            base = node.http_url
        elif scheme == "https":
            if node.https_url is None:
                raise TrinoClusterError(f"{node.name} serves no HTTPS")
            base = node.https_url
        else:
            base = node.url
        h = (
            self.auth_headers(user, password)
            if base.startswith("https")
            else ({"X-Trino-User": user} if user else {})
        )
        if password is not None and not base.startswith("https"):
            h["Authorization"] = basic_auth(user or "", password)
        h.update(headers or {})
        return http(method, base + path, body=body, headers=h, context=self.ssl_context, timeout=timeout)

    def info(self, node: TrinoNode) -> dict[str, Any]:
        return dict(self.request(node, "GET", "/v1/info").json())

    def get_state(self, node: TrinoNode) -> str:
        return str(self.request(node, "GET", "/v1/info/state").json())

    def set_state(self, node: TrinoNode, state: str, *, user: str = ADMIN) -> Response:
        """PUT /v1/info/state with a JSON string body, as ``user`` (admin may)."""
        return self.request(
            node,
            "PUT",
            "/v1/info/state",
            user=user,
            body=json.dumps(state),
            headers={"Content-Type": "application/json"},
        )

    def metrics(self, node: TrinoNode, *, user: str | None = MONITOR, accept: str | None = None) -> Response:
        headers = {"Accept": accept} if accept else None
        return self.request(node, "GET", "/metrics", user=user, headers=headers)

    def metric_values(
        self, node: TrinoNode, pattern: str = "", *, user: str | None = MONITOR
    ) -> dict[str, float]:
        """``{sample name with labels: value}`` for lines of /metrics whose name matches ``pattern`` (regex)."""
        resp = self.metrics(node, user=user)
        if resp.status != 200:
            raise TrinoClusterError(f"/metrics on {node.name}: HTTP {resp.status} {resp.text[:200]}")
        out: dict[str, float] = {}
        rx = re.compile(pattern)
        for line in resp.text.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            if rx.search(name):
                with contextlib.suppress(ValueError):
                    out[name] = float(value)
        return out

    def active_workers(self) -> list[str]:
        """Worker node ids the coordinator counts as active (system.runtime.nodes needs no workers)."""
        rows = self.query(
            "SELECT node_id FROM system.runtime.nodes WHERE NOT coordinator AND state = 'active'", user=ADMIN
        )
        return sorted(r[0] for r in rows)

    def known_nodes(self) -> list[dict[str, Any]]:
        """GET /v1/node on the coordinator (nodes its failure detector watches), as admin."""
        resp = self.request(self.coordinator, "GET", "/v1/node", user=ADMIN)
        if resp.status != 200:
            raise TrinoClusterError(f"/v1/node: HTTP {resp.status} {resp.text[:200]}")
        return list(resp.json())

    # ---- queries

    def submit(
        self,
        sql: str,
        *,
        user: str = USER,
        source: str | None = None,
        catalog: str | None = None,
        schema: str | None = None,
        session: Mapping[str, str] | None = None,
    ) -> RunningQuery:
        """Start ``sql`` in a background thread; returns once the coordinator gave it an id."""
        q = RunningQuery(self, sql, user=user, source=source, catalog=catalog, schema=schema, session=session)
        self._queries.append(q)
        return q.start()

    def query(self, sql: str, *, user: str = USER, timeout: float = 300.0, **kw: Any) -> list[list[Any]]:
        """Run ``sql`` to its end and return its rows (raises on failure)."""
        return self.submit(sql, user=user, **kw).result(timeout)

    def query_info(self, query_id: str, *, user: str = ADMIN) -> dict[str, Any]:
        """GET /v1/query/{id} (QueryInfo); ``{}`` while the coordinator does not know the id (yet)."""
        resp = self.request(self.coordinator, "GET", f"/v1/query/{query_id}", user=user)
        return dict(resp.json()) if resp.status == 200 and resp.body else {}

    def create_slow_table(
        self, name: str = "slow", *, splits: int = 4, pages_per_split: int = 1, delay: str = "60s"
    ) -> str:
        """A blackhole table whose every page takes ``delay`` to produce: scans of it run long and idle.

        Returns the qualified name. A query over it holds ``splits`` drivers on the workers, each waiting
        on its delay (no CPU), and ends after about ``pages_per_split * delay``.
        """
        qualified = f"blackhole.default.{name}"
        self.query(f"DROP TABLE IF EXISTS {qualified}", user=ADMIN)
        self.query(
            f"CREATE TABLE {qualified} (x bigint) WITH (split_count = {splits}, "
            f"pages_per_split = {pages_per_split}, rows_per_page = 1, page_processing_delay = '{delay}')",
            user=ADMIN,
        )
        return qualified

    # ---- lifecycle

    def _node_config(self, node: TrinoNode) -> str:
        props: dict[str, str] = {
            "coordinator": str(node.coordinator).lower(),
            "node.environment": "queuescale",
            "node.id": node.node_id,
            "node.internal-address": node.host,
            "plugin.dir": str(self.trino_home / "plugin"),
            "catalog.config-dir": str(node.etc / "catalog"),
            "http-server.http.port": str(node.http_port),
            "http-server.log.path": str(node.directory / "http-request.log"),
            "discovery.uri": self.coordinator.http_url,
            "shutdown.grace-period": self._grace,
            "query.max-memory": "1GB",
            "query.max-memory-per-node": "100MB",
            "memory.heap-headroom-per-node": "64MB",
        }
        if node.host != "127.0.0.1":
            # Airlift binds every address (0.0.0.0) by default: two workers could not share a port.
            props["node.bind-ip"] = node.host
        if node.coordinator:
            props["node-scheduler.include-coordinator"] = "false"
            if self.required_workers is not None:
                props["query-manager.required-workers"] = str(self.required_workers)
                props["query-manager.required-workers-max-wait"] = self._required_wait
        if self.https:
            assert node.https_port is not None
            assert self.keystore is not None
            assert self.shared_secret is not None
            props.update(
                {
                    "http-server.https.enabled": "true",
                    "http-server.https.port": str(node.https_port),
                    "http-server.https.keystore.path": str(self.keystore),
                    "http-server.authentication.type": "PASSWORD",
                    "internal-communication.shared-secret": self.shared_secret,
                }
            )
        props.update(self._extra_coordinator if node.coordinator else self.extra_worker_config)
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _write_node(self, node: TrinoNode) -> None:
        etc = node.etc
        (etc / "catalog").mkdir(parents=True, exist_ok=True)
        (node.directory / "data").mkdir(parents=True, exist_ok=True)
        (etc / "config.properties").write_text(self._node_config(node))
        (etc / "log.properties").write_text("io.trino=INFO\n")
        catalogs = {
            "tpch": "connector.name=tpch\n",
            "memory": "connector.name=memory\nmemory.max-data-per-node=64MB\n",
            "blackhole": "connector.name=blackhole\n",
            "jmx": "connector.name=jmx\n",
        }
        for name, text in catalogs.items():
            (etc / "catalog" / f"{name}.properties").write_text(text)
        shared = self.directory / "shared"
        (etc / "access-control.properties").write_text(
            f"access-control.name=file\nsecurity.config-file={shared / 'rules.json'}\n"
        )
        if self.https:
            (etc / "password-authenticator.properties").write_text(
                f"password-authenticator.name=file\nfile.password-file={shared / 'password.db'}\n"
            )
        if node.coordinator:
            (etc / "resource-groups.properties").write_text(
                "resource-groups.configuration-manager=file\n"
                f"resource-groups.config-file={shared / 'resource-groups.json'}\n"
            )

    def _write_shared(self) -> None:
        shared = self.directory / "shared"
        shared.mkdir(parents=True, exist_ok=True)
        rules = {
            "catalogs": [{"allow": "all"}],
            "queries": [{"allow": ["execute", "view", "kill"]}],
            "system_information": [
                {"user": ADMIN, "allow": ["read", "write"]},
                {"user": MONITOR, "allow": ["read"]},
            ],
        }
        (shared / "rules.json").write_text(json.dumps(rules, indent=2) + "\n")
        groups = {
            "rootGroups": [
                {
                    "name": "global",
                    "jmxExport": True,  # per-group gauges on /metrics (InternalResourceGroup MBeans)
                    "softMemoryLimit": "100%",
                    "hardConcurrencyLimit": 100,
                    "maxQueued": 1000,
                    "subGroups": [
                        {
                            "name": "serial",
                            "jmxExport": True,
                            "softMemoryLimit": "100%",
                            "hardConcurrencyLimit": 1,
                            "maxQueued": 100,
                        },
                        {
                            "name": "adhoc",
                            "softMemoryLimit": "100%",
                            "hardConcurrencyLimit": 50,
                            "maxQueued": 1000,
                        },
                        # Selected only by the test that watches a group come into being.
                        {
                            "name": "lazy",
                            "softMemoryLimit": "100%",
                            "hardConcurrencyLimit": 10,
                            "maxQueued": 100,
                        },
                    ],
                }
            ],
            "selectors": [
                {"source": SERIAL_SOURCE, "group": "global.serial"},
                {"source": LAZY_SOURCE, "group": "global.lazy"},
                {"group": "global.adhoc"},
            ],
        }
        (shared / "resource-groups.json").write_text(json.dumps(groups, indent=2) + "\n")
        if self.https:
            (shared / "password.db").write_text(
                "".join(pbkdf2_entry(u, p) + "\n" for u, p in PASSWORDS.items())
            )

    def _command(self, node: TrinoNode) -> list[str]:
        heap = self._coordinator_heap if node.coordinator else self.worker_heap
        return [
            str(self.java),
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:+ExitOnOutOfMemoryError",
            "-XX:-OmitStackTraceInFastThrow",
            "-XX:ReservedCodeCacheSize=128M",
            "-XX:TieredStopAtLevel=1",  # C1 only: a much cheaper start on two shared cores
            "-XX:+EnableDynamicAgentLoading",
            "--sun-misc-unsafe-memory-access=allow",
            "--enable-native-access=ALL-UNNAMED",
            "-Djdk.attach.allowAttachSelf=true",
            "-Djdk.nio.maxCachedBufferSize=2000000",
            "-Dfile.encoding=UTF-8",
            *self.jvm_options,
            f"-Dconfig={node.etc / 'config.properties'}",
            f"-Dlog.levels-file={node.etc / 'log.properties'}",
            f"-Dnode.id={node.node_id}",  # also on the command line so `ps` tells the JVMs apart
            "-cp",
            str(self.trino_home / "lib" / "*"),
            "io.trino.server.TrinoServer",
        ]

    def _launch(self, node: TrinoNode) -> None:
        self._write_node(node)
        log = node.log_path.open("ab")
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS"))
        }
        node.process = subprocess.Popen(
            self._command(node),
            cwd=node.directory,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent if self._die_with_parent else None,
        )
        log.close()
        node.started_at = time.monotonic()

    def _new_node(
        self, name: str, coordinator: bool, *, host: str = "127.0.0.1", port: int | None = None
    ) -> TrinoNode:
        node = TrinoNode(
            name=name,
            coordinator=coordinator,
            http_port=port or free_port(),
            https_port=free_port() if self.https else None,
            directory=self.directory / name,
            host=host,
        )
        node.directory.mkdir(parents=True, exist_ok=True)
        return node

    def wait_started(self, nodes: Sequence[TrinoNode], timeout: float) -> None:
        """Until GET /v1/info says ``"starting": false`` on every node in ``nodes``."""
        deadline = time.monotonic() + timeout
        pending = list(nodes)
        while pending:
            for node in list(pending):
                if not node.alive():
                    raise TrinoClusterError(
                        f"{node.name} exited with {node.process.returncode if node.process else None}:\n"
                        f"{node.log_tail()}"
                    )
                try:
                    info = http("GET", node.http_url + "/v1/info", timeout=5).json()
                except (OSError, ValueError):
                    continue
                if info.get("starting") is False:
                    pending.remove(node)
            if pending and time.monotonic() > deadline:
                names = ", ".join(n.name for n in pending)
                raise TrinoClusterError(f"not started within {timeout}s: {names}\n{pending[0].log_tail()}")
            if pending:
                time.sleep(0.5)

    def wait_workers_active(self, expected: Sequence[str], timeout: float = 120.0) -> None:
        """Until the coordinator uses every worker in ``expected``.

        First ``GET /v1/node`` must list them (the failure detector found them through discovery), then
        ``system.runtime.nodes`` must say ``active``. While fewer live workers than
        ``query-manager.required-workers`` exist that query would itself wait for workers, so then the
        coordinator's ``DiscoveryNodeManager_ActiveNodeCount`` (coordinator included) is read instead.
        """
        deadline = time.monotonic() + timeout
        want = set(expected)
        # By address and port: workers behind pods share one port on addresses of their own.
        addresses = {(w.host, w.http_port) for w in self.workers if w.node_id in want}
        alive = [w for w in self.workers if w.alive()]
        by_sql = self.required_workers is None or len(alive) >= self.required_workers
        last: Any = None
        while True:
            try:
                uris = [urllib.parse.urlsplit(n.get("uri", "")) for n in self.known_nodes()]
                seen = {(u.hostname, u.port) for u in uris}
                last = f"/v1/node addresses {sorted(f'{h}:{p}' for h, p in seen if h and p)}"
                if addresses <= seen:
                    if by_sql:
                        active = set(self.active_workers())
                        last = f"active workers {sorted(active)}"
                        if want <= active:
                            return
                    else:
                        name = "trino_metadata_name_DiscoveryNodeManager_ActiveNodeCount"
                        count = self.metric_values(self.coordinator, name + "$").get(name, 0.0)
                        last = f"ActiveNodeCount {count}"
                        if count >= 1 + len(alive):
                            return
            except (OSError, TrinoClusterError, ValueError) as e:
                last = e
            if time.monotonic() > deadline:
                raise TrinoClusterError(f"workers {sorted(want)} not active within {timeout}s; last: {last}")
            time.sleep(0.5)

    def add_worker(self, *, wait: bool = True, timeout: float = 240.0) -> TrinoNode:
        """Start one more worker (named ``worker-<n>``); by default wait until the coordinator uses it."""
        node = self._new_node(f"worker-{len(self.workers) + 1}", coordinator=False)
        self.workers.append(node)
        self._launch(node)
        if wait:
            self.wait_started([node], timeout)
            self.wait_workers_active([node.node_id], timeout)
        return node

    def kill(self, node: TrinoNode, sig: int = signal.SIGKILL, timeout: float = 30.0) -> int | None:
        """Signal one of this cluster's JVMs (by its own pid) and reap it; returns its exit code."""
        if node.process is None:
            return None
        if node.process.poll() is None:
            node.process.send_signal(sig)
            try:
                node.process.wait(timeout)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(timeout)
        return node.process.returncode

    def stop(self) -> None:
        """Cancel the queries still followed, then end every JVM this cluster started (TERM, then KILL)."""
        for q in self._queries:
            if not q.done:
                q._cancelled.set()
        for node in self.nodes:
            if node.alive() and node.process is not None:
                node.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(10)

    def rss(self) -> dict[str, int | None]:
        return {n.name: n.rss_bytes() for n in self.nodes}

    def __enter__(self) -> TrinoCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Private settings filled in by start_trino_cluster.
    _grace: str = "3s"
    _required_wait: str = "5m"
    _coordinator_heap: str = "768m"
    _extra_coordinator: dict[str, str] = field(default_factory=dict)
    _die_with_parent: bool = True


def start_trino_cluster(
    workdir: Path,
    *,
    workers: int = 2,
    https: bool = False,
    required_workers: int | None = None,
    required_workers_max_wait: str = "5m",
    grace_period: str = "3s",
    coordinator_heap: str = "768m",
    worker_heap: str = "512m",
    coordinator_config: Mapping[str, str] | None = None,
    worker_config: Mapping[str, str] | None = None,
    jvm_options: Sequence[str] = (),
    trino_home: Path | None = None,
    java: Path | None = None,
    timeout: float = 300.0,
    wait_for_workers: bool = True,
    die_with_parent: bool = True,
    worker_hosts: Sequence[str] = (),
    worker_port: int | None = None,
) -> TrinoCluster:
    """Start a coordinator and ``workers`` workers under ``workdir`` and wait until they are usable.

    Ready means: ``GET /v1/info`` says ``"starting": false`` on every node and the coordinator lists every
    worker as active. With ``required_workers`` above ``workers``, queries wait (WAITING_FOR_RESOURCES) until
    enough workers joined or ``required_workers_max_wait`` passed. On any failure the JVMs already started
    are ended before the error is raised. ``die_with_parent``: the JVMs are killed if the thread that
    started them exits (start from the main thread or a thread that outlives the cluster).

    ``worker_hosts`` (HTTP only): worker ``i`` binds and announces ``worker_hosts[i]`` (a loopback address
    other than 127.0.0.1, e.g. a kwok pod's IP), all on ``worker_port`` as the pods of one template.
    """
    if worker_hosts and (https or len(worker_hosts) != workers or worker_port is None):
        raise TrinoClusterError("worker_hosts needs plain HTTP, one address per worker and a worker_port")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    home = trino_home or find_trino()
    if not (home / "lib").is_dir():
        raise TrinoClusterError(f"no Trino server at {home}")
    cluster = TrinoCluster(
        directory=workdir,
        trino_home=home,
        java=java or find_java(),
        coordinator=TrinoNode("coordinator", True, 0, None, workdir / "coordinator"),  # replaced below
        workers=[],
        https=https,
        required_workers=required_workers,
        jvm_options=list(jvm_options),
        worker_heap=worker_heap,
        extra_worker_config=dict(worker_config or {}),
    )
    cluster._grace = grace_period
    cluster._required_wait = required_workers_max_wait
    cluster._coordinator_heap = coordinator_heap
    cluster._extra_coordinator = dict(coordinator_config or {})
    cluster._die_with_parent = die_with_parent
    if https:
        cluster.keystore, cluster.ca_file = self_signed_pem(workdir / "shared" / "tls")
        cluster.shared_secret = secrets.token_urlsafe(32)
    cluster._write_shared()
    cluster.coordinator = cluster._new_node("coordinator", coordinator=True)
    cluster.workers = [
        cluster._new_node(f"worker-{i + 1}", coordinator=False, host=worker_hosts[i], port=worker_port)
        if worker_hosts
        else cluster._new_node(f"worker-{i + 1}", coordinator=False)
        for i in range(workers)
    ]
    began = time.monotonic()
    try:
        for node in cluster.nodes:
            cluster._launch(node)
        cluster.wait_started(cluster.nodes, timeout)
        if wait_for_workers and workers:
            cluster.wait_workers_active([w.node_id for w in cluster.workers], timeout)
    except BaseException:
        cluster.stop()
        raise
    cluster.startup_seconds = time.monotonic() - began
    return cluster


@contextlib.contextmanager
def trino_cluster(workdir: Path, **kw: Any) -> Iterator[TrinoCluster]:
    """``start_trino_cluster`` as a context manager that always stops the JVMs."""
    cluster = start_trino_cluster(workdir, **kw)
    try:
        yield cluster
    finally:
        cluster.stop()
