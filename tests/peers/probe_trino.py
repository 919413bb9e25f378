"""Ask a real Trino 476 cluster what it does, and write the answers down verbatim.

    python -m tests.peers.probe_trino http|https|required OUTDIR

Each scenario starts its own cluster (tests/peers/trino_cluster.py) under OUTDIR, writes a readable log
(OUTDIR/<scenario>.log) and the raw /metrics expositions (OUTDIR/<scenario>-*.metrics). TRINO_FACTS.md
beside this file is written from these logs. Not a test: it only observes and takes a few minutes.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.peers.trino_cluster import (
    ADMIN,
    MONITOR,
    PASSWORDS,
    SERIAL_SOURCE,
    USER,
    Response,
    TrinoCluster,
    TrinoNode,
    basic_auth,
    free_port,
    http,
    start_trino_cluster,
)

INTERESTING = re.compile(
    r"QueryManager|ClusterSizeMonitor|ClusterMemoryManager|DiscoveryNodeManager|NodeCount|TaskExecutor"
    r"|ThreadPerDriver|executor|ResourceGroup|SqlTaskManager|TaskManager"
)


class Log:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.t0 = time.monotonic()
        self.f = path.open("w")

    def __call__(self, *parts: object) -> None:
        line = f"[{time.monotonic() - self.t0:7.2f}] " + " ".join(str(p) for p in parts)
        print(line, flush=True)
        self.f.write(line + "\n")
        self.f.flush()

    def section(self, title: str) -> None:
        self("")
        self("###", title)


def short(resp: Response, n: int = 600) -> str:
    ct = resp.headers.get("Content-Type", "")
    body = resp.text.strip().replace("\n", "\\n")
    if len(body) > n:
        body = body[:n] + f"...({len(resp.body)} bytes)"
    extra = (
        f" WWW-Authenticate={resp.headers['WWW-Authenticate']!r}"
        if "WWW-Authenticate" in resp.headers
        else ""
    )
    return f"HTTP {resp.status} [{ct}]{extra} {body}"


def metric_lines(text: str, rx: re.Pattern[str] = INTERESTING) -> list[str]:
    out = []
    for line in text.splitlines():
        name = (
            line.split(" ")[2] if line.startswith("# ") and len(line.split(" ")) > 2 else line.split(" ")[0]
        )
        if rx.search(name):
            out.append(line)
    return out


def values(c: TrinoCluster, node: TrinoNode, pattern: str) -> dict[str, float]:
    return c.metric_values(node, pattern)


def wait_until(cond: Callable[[], bool], timeout: float, step: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def nodes_table(c: TrinoCluster) -> list[list[Any]]:
    return c.query(
        "SELECT node_id, coordinator, state FROM system.runtime.nodes ORDER BY node_id", user=ADMIN
    )


WORKER_NOW = r"ThreadPerDriver|TaskExecutor|SqlTaskManager_(Running|Queued|Blocked)|executor"
COORD_NOW = (
    r"QueryManager_(Running|Queued|FullyBlocked|Progressing)Queries$|ClusterMemoryManager_ClusterMemoryBytes"
    r"|NodeCount$|ClusterSizeMonitor_RequiredWorkers"
)


def snapshot(log: Log, c: TrinoCluster, label: str) -> None:
    log(label, "coordinator:", json.dumps(values(c, c.coordinator, COORD_NOW), sort_keys=True))
    for w in c.workers:
        if w.alive():
            nonzero = {k: v for k, v in values(c, w, WORKER_NOW).items() if v}
            log(label, w.name, "nonzero executor/task metrics:", json.dumps(nonzero, sort_keys=True))


def state_timeline(log: Log, c: TrinoCluster, node: TrinoNode, until: set[str], timeout: float) -> float:
    """Log every change of GET /v1/info/state on node until it reaches one of ``until``; return the time."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        try:
            s = c.get_state(node)
        except OSError as e:
            s = f"<{type(e).__name__}>"
        if s != last:
            log(f"  {node.name} state {s} at +{time.monotonic() - t0:.2f}s")
            last = s
        if s in until or not node.alive():
            break
        time.sleep(0.2)
    if not node.alive():
        log(f"  {node.name} process exited with {node.process.returncode if node.process else None}")
    return time.monotonic() - t0


# --------------------------------------------------------------------------------------------------- http


def probe_http(out: Path) -> None:
    log = Log(out / "http.log")
    c = start_trino_cluster(out / "http-cluster", workers=2)
    try:
        log("startup seconds", round(c.startup_seconds, 1), "rss", c.rss())
        coord, w1, w2 = c.coordinator, c.workers[0], c.workers[1]

        log.section("GET /v1/info and /v1/info/state")
        for n in c.nodes:
            log(n.name, "/v1/info", short(c.request(n, "GET", "/v1/info")))
            log(n.name, "/v1/info/state", short(c.request(n, "GET", "/v1/info/state")))
        log("coordinator /v1/status", short(c.request(coord, "GET", "/v1/status", user=ADMIN), 300))

        log.section("/metrics access (user x Accept)")
        for n in (coord, w1):
            for user in (None, USER, MONITOR, ADMIN):
                for accept in (
                    None,
                    "text/plain",
                    "application/openmetrics-text; version=1.0.0",
                    "application/json",
                ):
                    r = c.metrics(n, user=user, accept=accept)
                    lines = r.text.rstrip("\n").splitlines()
                    log(
                        n.name,
                        f"user={user} accept={accept!r}:",
                        f"HTTP {r.status} [{r.headers.get('Content-Type')}]",
                        f"{len(r.body)} bytes, first={lines[0][:100] if lines else ''!r}, last={lines[-1][:100] if lines else ''!r}",
                    )
        for n in (coord, w1):
            text = c.metrics(n).text
            (out / f"http-{n.name}-rest.metrics").write_text(text)
            log.section(f"{n.name}: /metrics lines matching {INTERESTING.pattern} at rest")
            for line in metric_lines(text):
                log("  ", line)

        log.section("/v1/node and system.runtime.nodes")
        for user in (None, USER, MONITOR, ADMIN):
            log(f"/v1/node user={user}", short(c.request(coord, "GET", "/v1/node", user=user), 400))
        log("/v1/node/failed admin", short(c.request(coord, "GET", "/v1/node/failed", user=ADMIN), 300))
        log("worker-1 /v1/node admin", short(c.request(w1, "GET", "/v1/node", user=ADMIN), 200))
        log("system.runtime.nodes", nodes_table(c))

        log.section("resource groups before any query selected them")
        for path in ("global", "global/serial", "global/adhoc", "nosuch"):
            for user in (None, USER, MONITOR):
                log(
                    f"/v1/resourceGroupState/{path} user={user}",
                    short(c.request(coord, "GET", f"/v1/resourceGroupState/{path}", user=user)),
                )

        log.section("counters before/after one query")
        log(
            "before",
            metric_lines(
                c.metrics(coord).text, re.compile(r"QueryManager_(Started|Completed|Failed|Submitted)Queries")
            ),
        )
        log("tpch.tiny", c.query("SELECT count(*) FROM tpch.tiny.lineitem"))
        log(
            "after",
            metric_lines(
                c.metrics(coord).text, re.compile(r"QueryManager_(Started|Completed|Failed|Submitted)Queries")
            ),
        )
        for path in ("global", "global/adhoc", "global/serial"):
            log(
                f"/v1/resourceGroupState/{path} monitor (after an adhoc query)",
                short(c.request(coord, "GET", f"/v1/resourceGroupState/{path}", user=MONITOR), 2000),
            )

        log.section("serial group: 3 idle (blackhole) queries, limit 1")
        slow = c.create_slow_table("slow", splits=4, pages_per_split=1, delay="25s")
        qs = [c.submit(f"SELECT count(*) FROM {slow}", source=SERIAL_SOURCE) for _ in range(3)]
        wait_until(lambda: qs[0].state == "RUNNING", 30)
        time.sleep(3)
        log("states", [(q.query_id, q.state) for q in qs])
        log(
            "/v1/resourceGroupState/global/serial",
            short(c.request(coord, "GET", "/v1/resourceGroupState/global/serial", user=MONITOR), 3000),
        )
        log(
            "/v1/resourceGroupState/global",
            short(c.request(coord, "GET", "/v1/resourceGroupState/global", user=MONITOR), 3000),
        )
        r = c.request(coord, "GET", "/v1/query?state=QUEUED", user=ADMIN)
        log("/v1/query?state=QUEUED admin", f"HTTP {r.status}", json.dumps(r.json()[:1])[:1500])
        r = c.request(coord, "GET", "/v1/query", user=USER)
        log("/v1/query alice: count", len(r.json()) if r.status == 200 else short(r))
        r = c.request(coord, "GET", "/v1/query", user=None)
        log("/v1/query anonymous:", short(r, 200))
        info = c.query_info(qs[0].query_id or "")
        log(
            "running query: state",
            info.get("state"),
            "fullyBlocked",
            info.get("queryStats", {}).get("fullyBlocked"),
            "blockedReasons",
            info.get("queryStats", {}).get("blockedReasons"),
        )
        snapshot(log, c, "3 serial blackhole queries (1 running, 2 queued)")
        for n in (coord, w1):
            text = c.metrics(n).text
            (out / f"http-{n.name}-blackhole.metrics").write_text(text)
        for q in qs:
            q.cancel()
        time.sleep(2)
        snapshot(log, c, "after cancel")

        log.section("CPU-bound query (tpch sf10 lineitem) running")
        cpu = c.submit("SELECT sum(extendedprice * discount), count(*) FROM tpch.sf10.lineitem")
        wait_until(lambda: cpu.state == "RUNNING" or cpu.done, 60)
        time.sleep(4)
        for i in range(3):
            snapshot(log, c, f"cpu query sample {i}")
            info = c.query_info(cpu.query_id or "")
            qs_ = info.get("queryStats", {})
            log(
                "  query",
                info.get("state"),
                "fullyBlocked",
                qs_.get("fullyBlocked"),
                "runningDrivers",
                qs_.get("runningDrivers"),
                "queuedDrivers",
                qs_.get("queuedDrivers"),
                "blockedDrivers",
                qs_.get("blockedDrivers"),
            )
            time.sleep(2)
        (out / "http-worker-1-cpu.metrics").write_text(c.metrics(w1).text)
        (out / "http-coordinator-cpu.metrics").write_text(c.metrics(coord).text)
        log("cpu query state before cancel", cpu.state, cpu.error and cpu.error.get("message"))
        cpu.cancel()
        time.sleep(2)
        snapshot(log, c, "after cancelling the cpu query")

        log.section("fully blocked query: the client stops fetching a large result")
        fb = c.submit("SELECT * FROM tpch.sf1.lineitem")
        fb.pause()

        def fully_blocked() -> bool:
            i = c.query_info(fb.query_id or "")
            return bool(i.get("state") == "RUNNING" and i.get("queryStats", {}).get("fullyBlocked"))

        ok = wait_until(fully_blocked, 90, 1.0)
        info = c.query_info(fb.query_id or "")
        qs_ = info.get("queryStats", {})
        log(
            "fully blocked reached?",
            ok,
            "state",
            info.get("state"),
            "fullyBlocked",
            qs_.get("fullyBlocked"),
            "blockedReasons",
            qs_.get("blockedReasons"),
            "runningDrivers",
            qs_.get("runningDrivers"),
            "blockedDrivers",
            qs_.get("blockedDrivers"),
        )
        snapshot(log, c, "fully blocked query")
        (out / "http-worker-1-fullyblocked.metrics").write_text(c.metrics(w1).text)
        fb.cancel()
        time.sleep(2)

        log.section("Accept headers scrapers send")
        for accept in (
            "*/*",
            "text/plain;version=0.0.4",
            "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
            "application/openmetrics-text; version=1.0.0, text/plain; version=0.0.4; q=0.5, */*; q=0.1",
            "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "application/json, */*;q=0.1",
        ):
            r = c.metrics(coord, user=MONITOR, accept=accept)
            log(
                f"Accept {accept!r}:",
                f"HTTP {r.status} [{r.headers.get('Content-Type')}] {len(r.body)} bytes",
            )

        log.section("PUT /v1/info/state on an idle worker (worker-2)")

        def put(
            label: str,
            node: TrinoNode,
            body: str,
            user: str | None = ADMIN,
            headers: dict[str, str] | None = None,
        ) -> Response:
            r = c.request(
                node,
                "PUT",
                "/v1/info/state",
                user=user,
                body=body,
                headers={"Content-Type": "application/json", **(headers or {})},
            )
            try:
                now = c.get_state(node)
            except OSError as e:
                now = f"<{type(e).__name__}>"
            log(f"PUT {body} {label}:", short(r, 400), "-> now", now)
            return r

        put("as admin (same state)", w2, '"ACTIVE"')
        put("as admin", w2, '"DRAINED"')
        put("as admin", w2, '"INACTIVE"')
        put("as admin", w2, '"FOO"')
        put("as admin (unquoted)", w2, "DRAINING", headers={"Content-Type": "text/plain"})
        put("as alice", w2, '"DRAINING"', user=USER)
        put("as monitor", w2, '"DRAINING"', user=MONITOR)
        put("anonymous", w2, '"DRAINING"', user=None)
        put(
            "Basic admin over plain HTTP",
            w2,
            '"DRAINING"',
            user=None,
            headers={"Authorization": basic_auth(ADMIN, "whatever")},
        )
        put(
            "X-Trino-User admin + Basic over plain HTTP",
            w2,
            '"DRAINING"',
            user=ADMIN,
            headers={"Authorization": basic_auth(ADMIN, "whatever")},
        )
        log("state now", c.get_state(w2))

        log.section("drain an idle worker: DRAINING -> DRAINED timeline (grace 3s)")
        before_mem = values(c, coord, "ClusterMemoryBytes|NodeCount$")
        log("before", before_mem)
        t_put = time.monotonic()
        put("as admin", w2, '"DRAINING"')
        seen = wait_until(
            lambda: (
                values(c, coord, "DrainingNodeCount|DrainedNodeCount").get(
                    "trino_metadata_name_DiscoveryNodeManager_ActiveNodeCount", 0
                )
                >= 0
                and sum(values(c, coord, "DrainingNodeCount$|DrainedNodeCount$").values()) >= 1
            ),
            30,
            0.2,
        )
        log(f"coordinator counts worker-2 as draining/drained: {seen} after {time.monotonic() - t_put:.1f}s")
        log("system.runtime.nodes right after", nodes_table(c))
        log("metrics right after", values(c, coord, "ClusterMemoryBytes|NodeCount$"))
        state_timeline(log, c, w2, {"DRAINED"}, 60)
        log("/v1/info worker-2 drained", short(c.request(w2, "GET", "/v1/info")))
        time.sleep(6)  # the coordinator re-reads node states periodically
        log("system.runtime.nodes at DRAINED (+6s)", nodes_table(c))
        log("metrics at DRAINED (+6s)", values(c, coord, "ClusterMemoryBytes|NodeCount$"))
        log("worker-2 own metrics at DRAINED", values(c, w2, "NodeCount$|ClusterMemoryBytes"))
        log("/v1/node admin", short(c.request(coord, "GET", "/v1/node", user=ADMIN), 300))
        log("a query with worker-2 drained", c.query("SELECT count(*) FROM tpch.tiny.orders"))
        put("on DRAINED", w2, '"DRAINING"')
        put("on DRAINED", w2, '"DRAINED"')
        t_put = time.monotonic()
        put("on DRAINED", w2, '"ACTIVE"')
        seen = wait_until(
            lambda: (
                values(c, coord, "ActiveNodeCount$").get(
                    "trino_metadata_name_DiscoveryNodeManager_ActiveNodeCount", 0
                )
                >= 3
            ),
            60,
            0.2,
        )
        log(f"coordinator counts worker-2 active again: {seen} after {time.monotonic() - t_put:.1f}s")
        time.sleep(6)
        log("system.runtime.nodes after ACTIVE (+6s)", nodes_table(c))
        log("metrics after ACTIVE (+6s)", values(c, coord, "ClusterMemoryBytes|NodeCount$"))

        log.section("DRAINING then ACTIVE within the grace period")
        put("", w2, '"DRAINING"')
        time.sleep(1)
        put("1s later", w2, '"ACTIVE"')
        state_timeline(log, c, w2, {"ACTIVE", "DRAINED"}, 15)
        time.sleep(8)
        log("state 8s later", c.get_state(w2))

        log.section("drain worker-1 while a query has running tasks on it")
        slow2 = c.create_slow_table("slow2", splits=4, pages_per_split=1, delay="20s")
        q = c.submit(f"SELECT count(*) FROM {slow2}")
        wait_until(lambda: q.state == "RUNNING", 30)
        time.sleep(3)
        snapshot(log, c, "before drain")
        t_put = time.monotonic()
        put("worker-1 with tasks", w1, '"DRAINING"')
        wait_until(lambda: sum(values(c, coord, "DrainingNodeCount$").values()) >= 1, 30, 0.2)
        created = "trino_execution_name_SqlTaskManager_CreatedTasks"
        before = values(c, w1, created).get(created)
        log(
            "coordinator sees worker-1 DRAINING; a new query now:",
            c.query("SELECT count(*) FROM tpch.tiny.orders"),
            f"worker-1 CreatedTasks {before} -> {values(c, w1, created).get(created)}",
        )
        elapsed = state_timeline(log, c, w1, {"DRAINED"}, 90)
        log(f"worker-1 DRAINED {elapsed:.1f}s after the PUT; query done? {q.done} state {q.state}")
        q.wait(60)
        log(
            "query ended",
            q.state,
            "rows",
            q.rows,
            "error",
            q.error,
            f"{time.monotonic() - t_put:.1f}s after PUT",
        )
        log("query states seen", q.states)
        put("back", w1, '"ACTIVE"')

        log.section("SHUTTING_DOWN / DRAINING on the coordinator")
        put("coordinator as admin", coord, '"DRAINING"')
        put("coordinator as admin", coord, '"ACTIVE"')

        log.section("SHUTTING_DOWN on idle worker-2")
        log("metrics before", values(c, coord, "ClusterMemoryBytes|NodeCount$"))
        put("worker-2", w2, '"SHUTTING_DOWN"')
        state_timeline(log, c, w2, set(), 60)
        for i in range(4):
            time.sleep(5)
            log(
                f"+{5 * (i + 1)}s after exit: nodes",
                nodes_table(c),
                "metrics",
                values(c, coord, "ClusterMemoryBytes|NodeCount$"),
            )
        log("rss at end", c.rss())
        log.section("SHUTTING_DOWN on the coordinator (last)")
        put("coordinator as admin", coord, '"SHUTTING_DOWN"')
        time.sleep(2)
        log("coordinator alive?", coord.alive())
    finally:
        c.stop()


# --------------------------------------------------------------------------------------------------- https


def probe_https(out: Path) -> None:
    log = Log(out / "https.log")
    c = start_trino_cluster(out / "https-cluster", workers=2, https=True)
    try:
        log("startup seconds", round(c.startup_seconds, 1), "rss", c.rss())
        coord, w1 = c.coordinator, c.workers[0]
        ctx = c.ssl_context

        def raw(
            label: str, method: str, url: str, headers: dict[str, str], body: str | None = None
        ) -> Response:
            r = http(
                method, url, body=body, headers=headers, context=ctx if url.startswith("https") else None
            )
            log(label, short(r, 300))
            return r

        log.section("GET /v1/info over HTTPS and HTTP, anonymous")
        for n in (coord, w1):
            raw(f"{n.name} https /v1/info", "GET", f"{n.https_url}/v1/info", {})
            raw(f"{n.name} http /v1/info", "GET", f"{n.http_url}/v1/info", {})
            raw(f"{n.name} https /v1/info/state", "GET", f"{n.https_url}/v1/info/state", {})
            raw(f"{n.name} http /v1/info/state", "GET", f"{n.http_url}/v1/info/state", {})

        log.section("a query over HTTPS with Basic")
        log("alice tpch.tiny", c.query("SELECT count(*) FROM tpch.tiny.nation"))
        raw(
            "POST /v1/statement over HTTP, X-Trino-User only",
            "POST",
            f"{coord.http_url}/v1/statement",
            {"X-Trino-User": USER},
            "SELECT 1",
        )
        raw(
            "POST /v1/statement over HTTPS, no credentials",
            "POST",
            f"{coord.https_url}/v1/statement",
            {"X-Trino-User": USER},
            "SELECT 1",
        )

        log.section("PUT /v1/info/state matrix on worker-1")
        state_json = {"Content-Type": "application/json"}
        for n in (w1, coord):
            b = n.https_url
            raw(
                f"{n.name} https admin right password ACTIVE",
                "PUT",
                f"{b}/v1/info/state",
                {**state_json, "Authorization": basic_auth(ADMIN, PASSWORDS[ADMIN])},
                '"ACTIVE"',
            )
            raw(
                f"{n.name} https admin wrong password",
                "PUT",
                f"{b}/v1/info/state",
                {**state_json, "Authorization": basic_auth(ADMIN, "wrong")},
                '"DRAINING"',
            )
            raw(
                f"{n.name} https alice right password",
                "PUT",
                f"{b}/v1/info/state",
                {**state_json, "Authorization": basic_auth(USER, PASSWORDS[USER])},
                '"DRAINING"',
            )
            raw(f"{n.name} https no credentials", "PUT", f"{b}/v1/info/state", state_json, '"DRAINING"')
            raw(
                f"{n.name} https X-Trino-User admin only",
                "PUT",
                f"{b}/v1/info/state",
                {**state_json, "X-Trino-User": ADMIN},
                '"DRAINING"',
            )
            raw(
                f"{n.name} http Basic admin right password",
                "PUT",
                f"{n.http_url}/v1/info/state",
                {**state_json, "Authorization": basic_auth(ADMIN, PASSWORDS[ADMIN])},
                '"DRAINING"',
            )
            raw(
                f"{n.name} http X-Trino-User admin",
                "PUT",
                f"{n.http_url}/v1/info/state",
                {**state_json, "X-Trino-User": ADMIN},
                '"DRAINING"',
            )
            raw(f"{n.name} http anonymous", "PUT", f"{n.http_url}/v1/info/state", state_json, '"DRAINING"')
            log(f"{n.name} state now", c.get_state(n))
        raw(
            "worker-1 https admin DRAINING",
            "PUT",
            f"{w1.https_url}/v1/info/state",
            {**state_json, "Authorization": basic_auth(ADMIN, PASSWORDS[ADMIN])},
            '"DRAINING"',
        )
        state_timeline(log, c, w1, {"DRAINED"}, 30)
        raw(
            "worker-1 https admin ACTIVE",
            "PUT",
            f"{w1.https_url}/v1/info/state",
            {**state_json, "Authorization": basic_auth(ADMIN, PASSWORDS[ADMIN])},
            '"ACTIVE"',
        )
        log("worker-1 state", c.get_state(w1))

        log.section("/metrics and resource groups with authentication")
        for n in (coord, w1):
            raw(
                f"{n.name} https /metrics monitor Basic",
                "GET",
                f"{n.https_url}/metrics",
                {"Authorization": basic_auth(MONITOR, PASSWORDS[MONITOR])},
            )
            raw(f"{n.name} https /metrics no credentials", "GET", f"{n.https_url}/metrics", {})
            raw(
                f"{n.name} http /metrics X-Trino-User monitor",
                "GET",
                f"{n.http_url}/metrics",
                {"X-Trino-User": MONITOR},
            )
            raw(f"{n.name} http /metrics anonymous", "GET", f"{n.http_url}/metrics", {})
        raw(
            "coordinator https /v1/resourceGroupState/global monitor",
            "GET",
            f"{coord.https_url}/v1/resourceGroupState/global",
            {"Authorization": basic_auth(MONITOR, PASSWORDS[MONITOR])},
        )
        raw(
            "coordinator http /v1/resourceGroupState/global X-Trino-User monitor",
            "GET",
            f"{coord.http_url}/v1/resourceGroupState/global",
            {"X-Trino-User": MONITOR},
        )
        log("rss at end", c.rss())
        scrape_with_prometheus(log, c, out)
    finally:
        c.stop()


def scrape_with_prometheus(log: Log, c: TrinoCluster, out: Path) -> None:
    """A real Prometheus (Debian's) scrapes the coordinator and a worker over HTTPS with Basic credentials."""
    binary = shutil.which("prometheus")
    if binary is None or c.ca_file is None:
        log("no prometheus binary: skipped")
        return
    log.section(
        f"a real Prometheus ({subprocess.run([binary, '--version'], capture_output=True, text=True).stdout.splitlines()[0]}) scrapes /metrics"
    )
    port = free_port()
    cfg = out / "prometheus.yml"
    targets = [f"127.0.0.1:{c.coordinator.https_port}", f"127.0.0.1:{c.workers[0].https_port}"]
    cfg.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "2s", "scrape_timeout": "2s"},
                "scrape_configs": [
                    {
                        "job_name": "trino",
                        "scheme": "https",
                        "metrics_path": "/metrics",
                        "basic_auth": {"username": MONITOR, "password": PASSWORDS[MONITOR]},
                        "tls_config": {"ca_file": str(c.ca_file)},
                        "static_configs": [{"targets": targets}],
                    }
                ],
            }
        )
    )
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={out / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(out / "prometheus.log").open("w"),
    )
    try:
        api = f"http://127.0.0.1:{port}/api/v1"

        def targets_scraped() -> bool:
            try:
                t = http("GET", f"{api}/targets").json()["data"]["activeTargets"]
            except (OSError, ValueError, KeyError):
                return False
            return len(t) == 2 and all(x.get("lastScrape", "").startswith("20") for x in t)

        wait_until(targets_scraped, 60, 0.5)
        time.sleep(5)
        for t in http("GET", f"{api}/targets").json()["data"]["activeTargets"]:
            log("target", t["scrapeUrl"], "health", t["health"], "lastError", repr(t["lastError"]))
        c.query("SELECT 1")
        time.sleep(5)
        for expr in (
            "up",
            "trino_execution_name_QueryManager_StartedQueries",
            "trino_execution_name_QueryManager_StartedQueries_total",
            "trino_execution_name_QueryManager_RunningQueries",
            "trino_execution_executor_dedicated_name_ThreadPerDriverTaskExecutor_TotalRunningSplits",
            'count({__name__=~"trino_.*"})',
        ):
            r = http("GET", f"{api}/query?" + urllib.parse.urlencode({"query": expr}))
            res = r.json().get("data", {}).get("result", [])
            log(f"PromQL {expr}:", json.dumps([(x["metric"], x["value"][1]) for x in res])[:600])
        r = http(
            "GET",
            f"{api}/metadata?"
            + urllib.parse.urlencode({"metric": "trino_execution_name_QueryManager_StartedQueries"}),
        )
        log("metadata StartedQueries", r.text[:300])
    finally:
        proc.terminate()
        proc.wait(20)


# ------------------------------------------------------------------------------------------------ required


def probe_required(out: Path) -> None:
    log = Log(out / "required.log")
    c = start_trino_cluster(
        out / "required-cluster",
        workers=2,
        required_workers=3,
        required_workers_max_wait="40s",
        wait_for_workers=False,
    )
    try:
        coord = c.coordinator
        log("started (not waiting for workers) in", round(c.startup_seconds, 1))
        for path in ("global", "global/adhoc"):
            log(
                f"before any query: /v1/resourceGroupState/{path}",
                short(c.request(coord, "GET", f"/v1/resourceGroupState/{path}", user=MONITOR), 600),
            )
        wait_until(lambda: len(c.known_nodes()) >= 2, 120, 0.5)
        time.sleep(5)
        log("idle, 2 of 3 required workers:", values(c, coord, COORD_NOW))
        log("/v1/node count", len(c.known_nodes()))
        q = c.submit("SELECT node_id, state FROM system.runtime.nodes", user=ADMIN)
        time.sleep(5)
        log("system.runtime.nodes query after 5s:", q.state, q.states, q.rows)
        q2 = c.submit("SELECT count(*) FROM tpch.tiny.nation")
        time.sleep(5)
        log("tpch query after 5s:", q2.state, q2.states)
        log("metrics while 2 queries wait:", values(c, coord, COORD_NOW))
        info = c.query_info(q2.query_id or "")
        log("query info state", info.get("state"), "errorCode", info.get("errorCode"))
        r = c.request(coord, "GET", "/v1/query", user=ADMIN)
        log("/v1/query states", [(x["queryId"], x["state"]) for x in r.json()])
        log(
            "resourceGroupState/global",
            short(c.request(coord, "GET", "/v1/resourceGroupState/global", user=MONITOR), 1500),
        )
        q.wait(120)
        q2.wait(120)
        log("after max-wait: system query", q.states, q.rows, q.error and q.error.get("message"))
        log(
            "after max-wait: tpch query",
            q2.states,
            q2.error and {k: q2.error.get(k) for k in ("message", "errorName", "errorType", "errorCode")},
        )
        log(
            "metrics after the failures:",
            values(c, coord, COORD_NOW + "|QueryManager_(Started|Completed|Failed)Queries$"),
        )
        q3 = c.submit("SELECT count(*) FROM tpch.tiny.nation")
        time.sleep(3)
        log("third query waiting:", q3.state, "RequiredWorkers", values(c, coord, "RequiredWorkers"))
        t = time.monotonic()
        w3 = c.add_worker(wait=False)
        q3.wait(240)
        log(
            f"third worker {w3.name} started; query ended {time.monotonic() - t:.1f}s after starting it:",
            q3.states,
            q3.rows,
            q3.error,
        )
        time.sleep(2)
        log("metrics with 3 workers:", values(c, coord, COORD_NOW))
    finally:
        c.stop()


def probe_extra(out: Path) -> None:
    """The coordinator's view during a long drain; SIGTERM and SIGKILL of a worker with running tasks."""
    log = Log(out / "extra.log")
    c = start_trino_cluster(out / "extra-cluster", workers=3)
    try:
        coord, w1, w2, _w3 = c.coordinator, *c.workers
        log("startup seconds", round(c.startup_seconds, 1), "rss", c.rss())
        log.section("the coordinator's view while a worker stays DRAINING (its tasks run 30s)")
        slow = c.create_slow_table("slow", splits=6, pages_per_split=1, delay="30s")
        q = c.submit(f"SELECT count(*) FROM {slow}")
        wait_until(lambda: q.state == "RUNNING", 30)
        time.sleep(2)
        t = time.monotonic()
        log("PUT DRAINING worker-1:", short(c.set_state(w1, "DRAINING")))
        wait_until(lambda: sum(values(c, coord, "DrainingNodeCount$").values()) >= 1, 30, 0.2)
        log(f"coordinator counts it DRAINING after {time.monotonic() - t:.1f}s")
        log("system.runtime.nodes", nodes_table(c))
        log("metrics", values(c, coord, COORD_NOW))
        log(
            "worker-1 executor",
            values(c, w1, "ThreadPerDriverTaskExecutor_(Tasks|TotalRunningSplits)$"),
        )
        state_timeline(log, c, w1, {"DRAINED"}, 90)
        q.wait(60)
        log(
            "query",
            q.states,
            q.rows,
            q.error and q.error.get("message"),
            f"{time.monotonic() - t:.1f}s after PUT",
        )
        time.sleep(8)
        log("at DRAINED: system.runtime.nodes", nodes_table(c), "metrics", values(c, coord, COORD_NOW))

        log.section("SIGTERM to worker-2 while a query has tasks on it")
        slow2 = c.create_slow_table("slow2", splits=6, pages_per_split=1, delay="30s")
        q2 = c.submit(f"SELECT count(*) FROM {slow2}")
        wait_until(lambda: q2.state == "RUNNING", 30)
        time.sleep(2)
        log("worker-2 executor", values(c, w2, "ThreadPerDriverTaskExecutor_(Tasks|TotalRunningSplits)$"))
        t = time.monotonic()
        code = c.kill(w2, signal.SIGTERM)
        log(f"worker-2 exited with {code} {time.monotonic() - t:.1f}s after SIGTERM")
        q2.wait(120)
        log(
            "query",
            q2.states,
            q2.error and {k: q2.error.get(k) for k in ("message", "errorName", "errorType")},
            f"{time.monotonic() - t:.1f}s after SIGTERM",
        )
        for i in range(6):
            log(
                f"+{5 * i}s: nodes",
                nodes_table(c),
                "metrics",
                values(c, coord, "ActiveNodeCount$|ClusterMemoryBytes"),
            )
            time.sleep(5)

    finally:
        c.stop()


def probe_kill(out: Path) -> None:
    """SHUTTING_DOWN from DRAINED; how long the coordinator keeps a SIGKILLed worker."""
    log = Log(out / "kill.log")
    c = start_trino_cluster(out / "kill-cluster", workers=3)
    try:
        coord, w1, w2, _w3 = c.coordinator, *c.workers
        log("startup seconds", round(c.startup_seconds, 1))
        log.section("SHUTTING_DOWN on a DRAINED worker")
        log("PUT DRAINING worker-1:", short(c.set_state(w1, "DRAINING")))
        state_timeline(log, c, w1, {"DRAINED"}, 60)
        t = time.monotonic()
        log("PUT SHUTTING_DOWN worker-1:", short(c.set_state(w1, "SHUTTING_DOWN")))
        state_timeline(log, c, w1, set(), 60)
        log(f"worker-1 gone {time.monotonic() - t:.1f}s after the PUT")

        log.section("SIGKILL to an idle worker-2: when does the coordinator stop counting it?")
        active = "trino_metadata_name_DiscoveryNodeManager_ActiveNodeCount"
        time.sleep(12)
        log("before", values(c, coord, "NodeCount$|ClusterMemoryBytes"))
        t = time.monotonic()
        c.kill(w2, signal.SIGKILL)
        last = None
        while time.monotonic() - t < 180:
            v = values(c, coord, "NodeCount$|ClusterMemoryBytes")
            failed = [
                (n["uri"], round(n["recentFailureRatio"], 2))
                for n in c.known_nodes()
                if n["recentFailureRatio"] > 0
            ]
            snap = (
                v.get(active),
                v.get("trino_memory_name_ClusterMemoryManager_ClusterMemoryBytes"),
                bool(failed),
            )
            if snap != last:
                log(
                    f"+{time.monotonic() - t:.1f}s ActiveNodeCount {snap[0]} ClusterMemoryBytes {snap[1]} failing in /v1/node {failed}"
                )
                last = snap
            if v.get(active) == 2.0:  # coordinator + worker-3
                break
            time.sleep(0.5)
        log(f"ActiveNodeCount back to 2 after {time.monotonic() - t:.1f}s")
        log("/v1/node/failed", short(c.request(coord, "GET", "/v1/node/failed", user=ADMIN), 600))
        log("a query now:", c.query("SELECT count(*) FROM tpch.tiny.nation"))
    finally:
        c.stop()


def main() -> None:
    scenario, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    {
        "http": probe_http,
        "https": probe_https,
        "required": probe_required,
        "extra": probe_extra,
        "kill": probe_kill,
    }[scenario](out)


if __name__ == "__main__":
    main()
