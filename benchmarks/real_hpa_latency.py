"""Real HPA latency: from a change at the (emulated) Trino coordinator to the REAL HPA's new desiredReplicas,
through our adapter behind kube-apiserver's aggregation layer, against the same path with a Prometheus-style
15 s scrape in between, both measured in the same run.

    python -m benchmarks.real_hpa_latency [--rounds 6] [--hpa-sync 15] [--scrape 15] [--poll 2] [--seed 0]

One control plane (tests/peers/kube_cluster.py; built from the Go module proxy by tests/peers/build_kube.sh if
missing) runs kube-controller-manager with ``--horizontal-pod-autoscaler-sync-period`` = ``--hpa-sync``
(Kubernetes' default: 15 s). One adapter process (tests/peers/kube_adapter.py: front-proxy mode, our APIService,
a token bound only by our RBAC) polls two Trino sources every ``--poll`` seconds (the adapter's default 2 s):

- ``cluster=adhoc``: the coordinator itself (our path);
- ``cluster=scraped``: the same coordinator behind a scrape proxy that refreshes its copy of every answer on a
  fixed ``--scrape`` tick and serves that copy in between: what an HPA sees through prometheus-adapter when
  Prometheus scrapes every 15 s (the adapter's own poll stands for prometheus-adapter's query).

Two HPAs (each on a kwok-backed Deployment) scale on ``trino_queued_queries`` (AverageValue 4, no stabilization
window) of one source each. Each round waits a random part of the HPA sync period, then moves the queue between
4 and 12 queued queries (1 <-> 3 replicas) and times, for both HPAs, the moment their status shows the new
desiredReplicas (read every 50 ms). The scrape's phase is drawn afresh each round (its next tick falls a random
part of the scrape interval after the change): with one fixed phase for the run, its relation to the HPA's own
15 s sync would decide the result.
"""

from __future__ import annotations

import argparse
import http.server
import random
import statistics
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from core.metric_names import TRINO_QUEUED_QUERIES
from tests.peers.kube_adapter import AggregatedAdapter, SandboxThread, apply_objects, wait_for
from tests.peers.kube_cluster import KubeCluster, ensure_built, start_cluster

NAMESPACE = "bench"
ARMS = ("adhoc", "scraped")  # the Trino source (cluster label) each HPA reads
LOW, HIGH = 4, 12  # queued queries: 1 and 3 replicas at AverageValue 4
FORWARDED = ("Accept", "X-Trino-User", "Authorization")


class ScrapeProxy:
    """Serves a copy of the coordinator's answers taken on a fixed tick (every ``interval`` seconds), as a
    Prometheus scrape does: a change becomes visible at the next tick, not before."""

    def __init__(self, upstream: str, interval: float) -> None:
        self.upstream = upstream
        self.interval = interval
        self._copies: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[int, str, bytes]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._schedule = threading.Condition()
        self._next_tick = time.monotonic() + interval
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                key = (self.path, tuple((h, self.headers[h]) for h in FORWARDED if self.headers.get(h)))
                with proxy._lock:
                    copy = proxy._copies.get(key)
                if copy is None:  # first sight of this request: scrape it now, then on every tick
                    copy = proxy._fetch(key)
                    with proxy._lock:
                        proxy._copies[key] = copy
                status, content_type, body = copy
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._threads = [
            threading.Thread(target=self._server.serve_forever, name="scrape-proxy", daemon=True),
            threading.Thread(target=self._ticker, name="scrape-ticker", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _fetch(self, key: tuple[str, tuple[tuple[str, str], ...]]) -> tuple[int, str, bytes]:
        path, headers = key
        request = urllib.request.Request(self.upstream + path, headers=dict(headers))
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, answer.headers.get("Content-Type", ""), answer.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type", ""), err.read()

    def rephase(self, first_tick: float) -> None:
        """Moves the tick schedule: the next refresh at ``first_tick`` (time.monotonic()), then every interval.
        Where a scrape falls relative to the HPA's sync is a matter of chance in a real cluster (and fixed
        for its life); a new random phase each round averages over it."""
        with self._schedule:
            self._next_tick = first_tick
            self._schedule.notify_all()

    def _ticker(self) -> None:
        while True:
            with self._schedule:
                while not self._stop.is_set() and time.monotonic() < self._next_tick:
                    self._schedule.wait(self._next_tick - time.monotonic())
                if self._stop.is_set():
                    return
                self._next_tick += self.interval
            with self._lock:
                keys = list(self._copies)
            fresh = {key: self._fetch(key) for key in keys}
            with self._lock:
                self._copies.update(fresh)

    def stop(self) -> None:
        with self._schedule:
            self._stop.set()
            self._schedule.notify_all()
        self._server.shutdown()
        self._server.server_close()


def _objects(arm: str) -> list[dict[str, Any]]:
    name = f"workers-{arm}"
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "worker", "image": "trino:478"}]},
            },
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": TRINO_QUEUED_QUERIES,
                            "selector": {"matchLabels": {"cluster": arm}},
                        },
                        "target": {"type": "AverageValue", "averageValue": "4"},
                    },
                }
            ],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0},
                "scaleDown": {
                    "stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
                },
            },
        },
    }
    return [deployment, hpa]


def _desired(api: Any) -> dict[str, int | None]:
    from kubernetes import client

    autoscaling = client.AutoscalingV2Api(api)
    got: dict[str, int | None] = {}
    for arm in ARMS:
        status = autoscaling.read_namespaced_horizontal_pod_autoscaler(f"workers-{arm}", NAMESPACE).status
        got[arm] = status.desired_replicas if status is not None else None
    return got


def _measure(
    cluster: KubeCluster, trino: SandboxThread, proxy: ScrapeProxy, args: argparse.Namespace
) -> list[dict[str, Any]]:
    rng = random.Random(args.seed)
    rows: list[dict[str, Any]] = []
    with cluster.api_client() as api:
        trino.set_queued(LOW)
        wait_for("both HPAs at 1 replica", lambda: set(_desired(api).values()) == {1}, 4 * args.hpa_sync + 60)
        for n in range(args.rounds):
            queued, want = (HIGH, 3) if n % 2 == 0 else (LOW, 1)
            time.sleep(rng.uniform(0, args.hpa_sync))
            t0 = time.monotonic()
            proxy.rephase(t0 + rng.uniform(0, args.scrape))
            trino.set_queued(queued)
            seen: dict[str, float] = {}
            deadline = t0 + 4 * (args.hpa_sync + args.scrape + args.poll) + 30
            while len(seen) < len(ARMS):
                if time.monotonic() > deadline:
                    raise SystemExit(f"round {n + 1}: no new desiredReplicas within the deadline ({seen})")
                desired = _desired(api)
                now = time.monotonic()
                for arm in ARMS:
                    if arm not in seen and desired[arm] == want:
                        seen[arm] = now - t0
                time.sleep(0.05)
            row = {"round": n + 1, "change": f"{LOW if queued == HIGH else HIGH} -> {queued}", **seen}
            rows.append(row)
            print(
                f"round {row['round']}: queued {row['change']}: direct {seen['adhoc']:.1f} s,"
                f" scraped {seen['scraped']:.1f} s",
                flush=True,
            )
    return rows


def _table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    direct = [r["adhoc"] for r in rows]
    scraped = [r["scraped"] for r in rows]
    lines = [
        f"Real HPA (kube-controller-manager v1.37.2, HPA sync {args.hpa_sync:g} s), adapter poll {args.poll:g} s,"
        f" scrape {args.scrape:g} s, {len(rows)} rounds",
        "",
        "| path | median s | mean s | min s | max s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, values in (
        ("queuescale adapter, direct", direct),
        (f"same, behind a {args.scrape:g} s scrape", scraped),
    ):
        lines.append(
            f"| {label} | {statistics.median(values):.1f} | {statistics.mean(values):.1f} |"
            f" {min(values):.1f} | {max(values):.1f} |"
        )
    lines.append("")
    lines.append(
        f"ratio scraped/direct: median {statistics.median(scraped) / statistics.median(direct):.2f}x,"
        f" mean {statistics.mean(scraped) / statistics.mean(direct):.2f}x"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--hpa-sync", type=float, default=15.0, help="HPA sync period, seconds (default 15)")
    parser.add_argument("--scrape", type=float, default=15.0, help="scrape interval, seconds (default 15)")
    parser.add_argument("--poll", type=float, default=2.0, help="the adapter's poll interval, seconds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    bin_dir = ensure_built()
    with tempfile.TemporaryDirectory(prefix="real-hpa-latency-") as tmp:
        work = Path(tmp)
        with start_cluster(work / "kube", bin_dir=bin_dir, hpa_sync_period=f"{args.hpa_sync:g}s") as cluster:
            cluster.add_node("kwok-node-0")
            trino = SandboxThread(concurrency=2)
            proxy = ScrapeProxy(trino.url, args.scrape)
            try:
                scraped = {
                    "name": "scraped",
                    "endpoint": {"url": proxy.url},
                    "poll_interval_seconds": args.poll,
                    "max_age_seconds": 4 * args.scrape,
                }
                with AggregatedAdapter.start(
                    cluster,
                    work / "adapter",
                    trino.url,
                    poll_interval_seconds=args.poll,
                    max_age_seconds=None,
                    extra_sources=[scraped],
                ):
                    cluster.kubectl("create", "namespace", NAMESPACE)
                    apply_objects(cluster, work, "bench", [o for arm in ARMS for o in _objects(arm)])
                    rows = _measure(cluster, trino, proxy, args)
            finally:
                proxy.stop()
                trino.stop()
    print()
    print(_table(rows, args))


if __name__ == "__main__":
    main()
