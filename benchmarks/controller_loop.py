"""Controller benchmark: the CPU, wall time, API requests and memory of one reconcile pass over 1,000
ScalingPolicies, against the engine alone deciding for the same policies in the same run.

    python -m benchmarks.controller_loop [--scale 1.0] [--steady 3] [--no-scaling] [--profile FILE]

Three processes, so only the controller's own work is measured:

- the world (``benchmarks/controller_world.py``): the Kubernetes API sandbox holding 1,000 ScalingPolicy
  custom resources (800 TrinoWorkers over 50 emulated Trino clusters, 16 per cluster and namespace, a
  quarter of them with a Holt-Winters forecast and a quarter with a business-hours schedule; 150
  SparkWorkerPool over 10 emulated standalone masters; 25 SparkApplication and 25
  ScheduledSparkApplication), one Deployment (3 in 4) or StatefulSet of 3 pods per workload policy
  (2,400 Trino worker pods, 450 Spark worker pods) and the spark-operator applications; behind every
  running Trino pod its own emulated Trino 478 worker on a loopback port (``/v1/info/state`` GET and
  PUT, ``/metrics``; password authentication with the Secret each policy names), behind each Spark
  pool an emulated standalone master (``/json/``, decommissioning) whose workers are the pods. The
  world counts every request it answers. Emulated, not real: kube-apiserver, Trino, the Spark master;
- the real adapter (``python -m queuescale adapter``) polling the 50 coordinators and 10 masters every 2 s and
  serving ``external.metrics.k8s.io`` over plain HTTP: the controller reads it as with
  ``--metrics-url``, the request the HPA makes (production's default, ``--metrics external-api``, sends
  the same request through kube-apiserver's aggregation); the adapter counts the reads;
- this process: the controller wired as ``queuescale controller --policies crd`` wires it (policy
  watch, watch caches of pods and workloads, actuator factory, status writer, Event recorder, HPA
  index, GC thresholds, JSON logs at info written to ``--log``), driven pass by pass with
  ``Controller.reconcile(time.time())``.

Per pass: CPU seconds of this process during ``reconcile`` (``time.process_time``: every thread, so the
official client's worker threads count), the part spent in the garbage collector, CPU until 1 s after
the pass (the policy watch digesting the statuses it wrote), wall seconds, the requests the world and
the adapter answered, and this process's RSS (``/proc/self/statm``; the peak from ``getrusage``).
Passes: a cold one (actuators built, watch caches filled, every status written), steady ones (nothing
to change); then the world moves every other workload two replicas over its policy's minimum, the rest
down to one, and every spark-operator application over its policy's maximum, and once the watch caches
hold the moved world (how long that took is reported): a pass that starts 950 drains (800 Trino
workers, 150 Spark workers decommissioned) and scales 475 workloads up and 50 applications down, the
passes that finish the drains; steady passes at the controller's 15 s period for 105 s, in which every
target makes its once-a-minute checks (a pool's master, a cluster's credentials), spread over the
passes as in a cluster (status refreshes, every 5-7.5 min, fall outside them); last, steady passes reading the metrics in-process
(``StoreReader`` on a store holding the figures the adapter served). Baseline: ``engine.decide`` for the same 1,000 policies
and observations (warm engine states, no I/O). ``--profile`` writes a pstats file of the last steady pass
(yappi, every thread, when installed; else cProfile, the event loop's thread only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes.client
import yaml
from prometheus_client.parser import text_string_to_metric_families

from adapter.kube import KubeSettings, api_client
from adapter.runtime import tune_gc
from adapter.samples import Collection, Sample
from adapter.store import SampleStore
from autoscaler.controller.factory import ActuatorFactoryImpl
from autoscaler.controller.loop import Controller, PassReport
from autoscaler.controller.metrics import ControllerMetrics
from autoscaler.controller.observe import observe
from autoscaler.controller.policies import CrdPolicySource, PolicyKey
from autoscaler.controller.readings import ExternalApiReader, StoreReader
from autoscaler.controller.runtime import cluster_controller
from autoscaler.decision.engine import EngineState, decide
from autoscaler.decision.signals import Observation
from autoscaler.policy.models import ScalingPolicy
from benchmarks.controller_world import WorldSpec
from core.catalog import DEFAULT_CATALOG
from queuescale.logs import configure_json_logging

TARGET_CPU_SECONDS = 1.0
#: ``queuescale controller --period`` default.
PERIOD_SECONDS = 15.0
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------- processes


@contextlib.contextmanager
def process(args: list[str], log: Path) -> Iterator[subprocess.Popen[str]]:
    with log.open("w") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def read_ready(proc: subprocess.Popen[str], log: Path) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        raise SystemExit(f"the world did not start:\n{log.read_text()[-3000:]}")
    doc: dict[str, Any] = json.loads(line[len("READY ") :])
    return doc


def adapter_config(world: Mapping[str, Any], folder: Path, port: int) -> Path:
    password = folder / "trino-password"
    password.write_text(world["trino_password"])
    doc = {
        "server": {"listen": f"127.0.0.1:{port}", "insecure_http": True},
        "auth": {"mode": "none"},
        "log_level": "warning",
        "trino": [
            {
                "name": name,
                "endpoint": {"url": url, "username": world["trino_user"], "password_file": str(password)},
                "user": world["trino_user"],
                "resource_groups": ["global"],
            }
            for name, url in world["trino"].items()
        ],
        "spark": [{"name": name, "master": {"url": url}} for name, url in world["spark"].items()],
    }
    path = folder / "adapter.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# ---------------------------------------------------------------------- counting


@dataclass
class Counts:
    world: dict[str, int]
    adapter_reads: int

    def minus(self, other: Counts) -> Counts:
        keys = set(self.world) | set(other.world)
        return Counts(
            {k: self.world.get(k, 0) - other.world.get(k, 0) for k in keys},
            self.adapter_reads - other.adapter_reads,
        )

    @property
    def kube_reads(self) -> int:
        return self.world.get("kube GET", 0)

    @property
    def kube_writes(self) -> int:
        return sum(v for k, v in self.world.items() if k.startswith("kube ") and k != "kube GET")

    @property
    def trino_workers(self) -> int:
        return self.world.get("trino worker", 0)

    @property
    def spark_masters(self) -> int:
        return self.world.get("spark master", 0)


def adapter_metric_reads(text: str) -> int:
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "queuescale_adapter_request_duration_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_count") and sample.labels.get("route") == "metric":
                total += sample.value
    return int(total)


class Observer:
    """Reads the world's and the adapter's request counters (outside the measured windows)."""

    def __init__(self, session: aiohttp.ClientSession, control: str, adapter: str) -> None:
        self.session, self.control, self.adapter = session, control, adapter

    async def counts(self) -> Counts:
        async with self.session.get(self.control + "/counts") as resp:
            world = await resp.json()
        async with self.session.get(self.adapter + "/metrics") as resp:
            text = await resp.text()
        return Counts(world, adapter_metric_reads(text))

    async def settle(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            async with self.session.get(self.control + "/settled") as resp:
                doc = await resp.json()
            if doc["settled"]:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"the world did not settle: {doc['detail']}")
            await asyncio.sleep(0.2)

    async def adapter_figures(self) -> str:
        async with self.session.get(self.adapter + "/metrics") as resp:
            return await resp.text()


# ---------------------------------------------------------------------- measuring


class GcClock:
    """CPU seconds spent in the cyclic garbage collector (every generation), from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._began = 0.0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, _: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.process_time()
        else:
            self.seconds += time.process_time() - self._began


GC = GcClock()


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Row:
    label: str
    happened: str
    cpu: float
    gc: float
    cpu_after: float
    wall: float
    counts: Counts | None
    rss: float


def summary(reports: Mapping[PolicyKey, PassReport]) -> str:
    scaled = drains = errors = skipped = 0
    for r in reports.values():
        if r.skipped:
            skipped += 1
        if r.outcome is None:
            continue
        if (
            r.outcome.replicas is not None
            and r.target is not None
            and r.outcome.replicas != r.target.replicas
        ):
            scaled += 1
        drains += r.outcome.drains_started
        errors += len(r.outcome.errors)
    parts = [f"{scaled} scaled", f"{drains} drains started"]
    if errors:
        parts.append(f"{errors} actuator errors")
    if skipped:
        parts.append(f"{skipped} skipped")
    return ", ".join(parts)


@contextlib.contextmanager
def profiled(path: Path | None) -> Iterator[None]:
    """yappi (every thread, CPU time) when installed, else cProfile (the event loop's thread only)."""
    if path is None:
        yield
        return
    try:
        import yappi  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
        try:
            yield
        finally:
            profile.disable()
            profile.dump_stats(str(path))
        return
    yappi.set_clock_type("cpu")
    yappi.start(builtins=True)
    try:
        yield
    finally:
        yappi.stop()
        yappi.get_func_stats().save(str(path), type="pstat")
        threads = sorted(yappi.get_thread_stats(), key=lambda t: -t.ttot)
        print(
            "profiled CPU s by thread: " + ", ".join(f"{t.name} {t.ttot:.2f}" for t in threads),
            file=sys.stderr,
        )
        yappi.clear_stats()


async def measured_pass(
    label: str,
    controller: Controller,
    observer: Observer | None,
    settle_seconds: float = 1.0,
    profile: Path | None = None,
) -> tuple[Row, dict[PolicyKey, PassReport]]:
    before = await observer.counts() if observer is not None else None
    gc0 = GC.seconds
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with profiled(profile):
        reports = await controller.reconcile(time.time())
    cpu1, wall1 = time.process_time(), time.perf_counter()
    await asyncio.sleep(settle_seconds)
    cpu2 = time.process_time()
    after = await observer.counts() if observer is not None else None
    counts = after.minus(before) if after is not None and before is not None else None
    gc_seconds = GC.seconds - gc0
    row = Row(label, summary(reports), cpu1 - cpu0, gc_seconds, cpu2 - cpu0, wall1 - wall0, counts, rss_mb())
    return row, reports


async def caches_caught_up(controller: Controller, since: float, timeout: float = 120.0) -> float:
    """Wait until the controller's watch caches hold what the API server lists (names and
    resourceVersions); the seconds from ``since``. The comparison LISTs run outside any measured pass."""
    factory = controller.make_actuator
    assert isinstance(factory, ActuatorFactoryImpl)
    caches = factory.ops.caches
    apps = kubernetes.client.AppsV1Api(factory.ops.api)
    core = kubernetes.client.CoreV1Api(factory.ops.api)
    lists = {
        "pods": core.list_namespaced_pod,
        "Deployment": apps.list_namespaced_deployment,
        "StatefulSet": apps.list_namespaced_stateful_set,
    }

    def versions(items: list[dict[str, Any]]) -> dict[str, str]:
        return {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in items}

    deadline = time.monotonic() + timeout
    for what, cache in caches.items():
        for namespace in cache.namespaces():
            while True:
                response: Any = await asyncio.to_thread(lists[what], namespace, _preload_content=False)
                listed = versions(json.loads(response.data)["items"])
                if versions(cache.list(namespace)) == listed:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"the {what} cache of {namespace} did not catch up in {timeout:g} s")
                await asyncio.sleep(0.1)
    return time.monotonic() - since


def store_from_adapter(text: str, now: float) -> SampleStore:
    """The figures the adapter served (its ``queuescale_<metric>`` gauges), in a store of our own."""
    by_source: dict[tuple[str, str], list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            metric = sample.name.removeprefix("queuescale_")
            if not sample.name.startswith("queuescale_") or metric not in DEFAULT_CATALOG:
                continue
            labels = dict(sample.labels)
            ident = (
                ("cluster", labels.pop("cluster")) if "cluster" in labels else ("pool", labels.pop("pool"))
            )
            by_source.setdefault(ident, []).append(Sample(metric, labels, sample.value))
    store = SampleStore(DEFAULT_CATALOG)
    trino_metrics = [m for m in DEFAULT_CATALOG.names() if m.startswith("trino_")]
    spark_metrics = [m for m in DEFAULT_CATALOG.names() if m.startswith("spark_")]
    for (label, value), samples in sorted(by_source.items()):
        metrics = trino_metrics if label == "cluster" else spark_metrics
        store.register(value, identity={label: value}, metrics=metrics, max_age=3600.0)
        store.put(Collection(value, now, tuple(samples)))
    return store


async def engine_alone(
    policies: Mapping[PolicyKey, ScalingPolicy],
    reports: Mapping[PolicyKey, PassReport],
    store: SampleStore,
    now: float,
    rounds: int = 3,
) -> tuple[float, list[float]]:
    """CPU seconds of ``decide`` for every policy (warm engine states, observations read beforehand)."""
    reader = StoreReader(store)
    observations: dict[PolicyKey, Observation] = {}
    for key, policy in policies.items():
        target = reports[key].target
        current, ready = (target.replicas, target.ready) if target is not None else (0, 0)
        observations[key] = (await observe(policy, reader, now, current, ready)).observation
    states = {key: EngineState() for key in policies}
    times: list[float] = []
    for i in range(rounds + 2):
        step = 15.0 * i
        began = time.process_time()
        for key, policy in policies.items():
            obs = observations[key]
            obs = Observation(
                now=obs.now + step,
                current_replicas=obs.current_replicas,
                values=obs.values,
                trino=obs.trino,
                spark=obs.spark,
                ready_replicas=obs.ready_replicas,
            )
            _, states[key] = decide(policy, obs, states[key])
        if i >= 2:  # the first two build the plans and the forecast's state
            times.append(time.process_time() - began)
    return statistics.median(times), times


# ---------------------------------------------------------------------- the run


@contextlib.asynccontextmanager
async def controller_for(
    kube_url: str, adapter_url: str
) -> AsyncIterator[tuple[Controller, CrdPolicySource]]:
    api = api_client(KubeSettings(host=kube_url))
    config = kubernetes.client.Configuration()
    config.host = adapter_url
    source = CrdPolicySource(api)
    reader = ExternalApiReader(kubernetes.client.ApiClient(config))
    controller = cluster_controller(api, source, reader, metrics=ControllerMetrics(), identity="bench")
    try:
        yield controller, source
    finally:
        await controller.close()
        await reader.close()
        api.close()  # type: ignore[no-untyped-call]


def world_spec(scale: float) -> WorldSpec:
    base = WorldSpec()
    return WorldSpec(
        trino_clusters=max(1, round(base.trino_clusters * scale)),
        trino_policies=round(base.trino_policies * scale),
        spark_pools=max(1, round(base.spark_pools * scale)),
        pool_policies=round(base.pool_policies * scale),
        app_policies=round(base.app_policies * scale),
    )


@dataclass
class Result:
    rows: list[Row]
    engine: float
    engine_rounds: list[float]


async def passes(
    args: argparse.Namespace,
    controller: Controller,
    source: CrdPolicySource,
    observer: Observer,
    control: str,
) -> Result:
    """Cold, steady, scaling, drains finishing, steady with in-process metrics; then the engine alone."""
    rows: list[Row] = []

    async def one(label: str, profile: Path | None = None) -> dict[PolicyKey, PassReport]:
        row, reports = await measured_pass(
            f"{len(rows) + 1} ({label})", controller, observer, profile=profile
        )
        rows.append(row)
        return reports

    reports = await one("cold")
    for i in range(args.steady):
        last = i == args.steady - 1
        reports = await one(
            "steady, profiled" if last and args.profile else "steady", args.profile if last else None
        )
    if not args.no_scaling:
        async with observer.session.post(control + "/perturb") as resp:
            moved = await resp.json()
        await observer.settle()
        settled = time.monotonic()
        await asyncio.sleep(2.5)  # the adapter polls the moved world once more
        lag = await caches_caught_up(controller, settled)
        reports = await one("scaling")
        rows[-1].happened += (
            f" (world moved: {', '.join(f'{v} {k}' for k, v in moved.items())}; the watch caches held "
            f"the moved world {lag:.1f} s after it settled)"
        )
        for _ in range(args.after):
            await observer.settle()
            await asyncio.sleep(0.5)
            reports = await one("drains finishing")
    # The passes above run back to back, so what a steady target does about once a minute (spread over
    # 60-90 s: check a pool's master or a cluster's credentials) falls outside them; these run at the
    # controller's own period, long enough for every target to do it once.
    began = time.monotonic()
    for i in range(args.paced):
        await asyncio.sleep(max(0.0, began + PERIOD_SECONDS * (i + 1) - time.monotonic()))
        reports = await one(f"steady, at the {PERIOD_SECONDS:g} s period")
    await observer.settle()
    now = time.time()
    store = store_from_adapter(await observer.adapter_figures(), now)
    policies = {k: e.policy for k, e in source.snapshot().items() if e.policy is not None}
    engine, engine_rounds = await engine_alone(policies, reports, store, now)
    if not args.no_scaling:
        controller.reader = StoreReader(store)
        for _ in range(args.steady):
            await one("steady, in-process metrics")
    return Result(rows, engine, engine_rounds)


async def run(args: argparse.Namespace, spec: WorldSpec, folder: Path) -> Result:
    world_log, adapter_log = folder / "world.log", folder / "adapter.log"
    if not args.default_gc:
        tune_gc()  # as running_controller does
    profile_world = ["-m", "cProfile", "-o", str(args.profile_world)] if args.profile_world else []
    world_args = [
        sys.executable,
        *profile_world,
        "-m",
        "benchmarks.controller_world",
        json.dumps(spec.__dict__),
    ]
    with process(world_args, world_log) as world:
        ready = await asyncio.to_thread(read_ready, world, world_log)
        port = free_port()
        config = adapter_config(ready, folder, port)
        with process([sys.executable, "-m", "queuescale", "adapter", "--config", str(config)], adapter_log):
            adapter_url = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as session:
                await wait_ready(session, adapter_url + "/readyz", adapter_log)
                observer = Observer(session, ready["control"], adapter_url)
                async with controller_for(ready["kube"], adapter_url) as (controller, source):
                    await wait_synced(source, total_policies(spec))
                    return await passes(args, controller, source, observer, ready["control"])


def total_policies(spec: WorldSpec) -> int:
    return spec.trino_policies + spec.pool_policies + spec.app_policies


async def wait_ready(session: aiohttp.ClientSession, url: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.2)
    text = await asyncio.to_thread(log.read_text)
    raise SystemExit(f"the adapter did not become ready:\n{text[-3000:]}")


async def wait_synced(source: CrdPolicySource, expected: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not (source.synced() and len(source.snapshot()) >= expected):
        if time.monotonic() > deadline:
            raise SystemExit(f"the policy watch saw {len(source.snapshot())} of {expected} policies")
        await asyncio.sleep(0.1)


def table(rows: list[Row], engine: float, spec: WorldSpec) -> str:
    lines = [
        f"{total_policies(spec):,} policies ({spec.trino_policies} TrinoWorkers over {spec.trino_clusters} "
        f"clusters, {spec.pool_policies} SparkWorkerPool, {spec.app_policies} spark-operator applications), "
        f"{spec.pods} pods per workload; target <= {TARGET_CPU_SECONDS:g} s CPU per pass",
        "",
        "| pass | what it did | CPU s | of it GC s | CPU s +1 s after | target | x engine | wall s "
        "| kube reads | kube writes | metric reads | Trino worker calls | Spark master calls | RSS MB |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| engine alone | `decide` x {total_policies(spec):,}, no I/O | {engine:.3f} | | | | 1.0x "
        "| | | | | | | |",
    ]
    for r in rows:
        c = r.counts
        met = "met" if r.cpu <= TARGET_CPU_SECONDS else "missed"
        counts = (
            f"{c.kube_reads:,} | {c.kube_writes:,} | {c.adapter_reads:,} | {c.trino_workers:,} "
            f"| {c.spark_masters:,}"
            if c is not None
            else "| | | |"
        )
        lines.append(
            f"| {r.label} | {r.happened} | {r.cpu:.2f} | {r.gc:.2f} | {r.cpu_after:.2f} | {met} "
            f"| {r.cpu / engine:.0f}x "
            f"| {r.wall:.2f} | {counts} | {r.rss:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of the 1,000 policies (quick runs)"
    )
    parser.add_argument("--steady", type=int, default=3, help="steady passes before and after the scaling")
    parser.add_argument("--after", type=int, default=2, help="passes after the scaling one")
    parser.add_argument("--no-scaling", action="store_true", help="cold and steady passes only")
    parser.add_argument(
        "--paced",
        type=int,
        default=7,
        help=f"steady passes {PERIOD_SECONDS:g} s apart (the controller's period) after the scaling",
    )
    parser.add_argument(
        "--default-gc", action="store_true", help="keep CPython's GC thresholds (the controller raises them)"
    )
    parser.add_argument("--profile", type=Path, help="write a pstats profile of the last steady pass here")
    parser.add_argument("--profile-world", type=Path, help="write a cProfile of the world process here")
    parser.add_argument("--log", type=Path, help="the controller's JSON log (default: a temporary file)")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", os.getcwd())
    spec = world_spec(args.scale)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="controller-bench-") as tmp:
        folder = Path(tmp)
        # The production log: JSON lines at info, formatted and written, to a file instead of stderr.
        configure_json_logging("info")
        handler = logging.getLogger().handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        with (args.log or folder / "controller.log").open("w") as log_file:
            handler.setStream(log_file)
            result = asyncio.run(run(args, spec, folder))
            handler.setStream(sys.stderr)
    print(table(result.rows, result.engine, spec))
    print()
    steady = [r.cpu for r in result.rows if "(steady)" in r.label]
    paced = [r.cpu for r in result.rows if "period)" in r.label]
    if steady:
        median = statistics.median(steady)
        print(
            f"steady pass, back to back: median {median:.2f} s CPU ({median / TARGET_CPU_SECONDS:.1f}x the "
            f"{TARGET_CPU_SECONDS:g} s target); the engine's decisions are {result.engine / median:.1%} of it"
        )
    if paced:
        print(
            f"steady pass at the {PERIOD_SECONDS:g} s period (once-a-minute checks included): mean "
            f"{statistics.mean(paced):.2f} s CPU, worst {max(paced):.2f} s"
        )
    print(
        f"engine alone: median of {', '.join(f'{t:.3f}' for t in result.engine_rounds)} s; controller RSS "
        f"now {rss_mb():.0f} MB, peak {peak_rss_mb():.0f} MB after {len(result.rows)} passes; whole run "
        f"{time.monotonic() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
