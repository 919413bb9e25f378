"""Every series name queuescale's processes can export, read from their real registries."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from adapter.exported import exported_name
from adapter.samples import Collection, Sample
from adapter.selfmetrics import SelfMetrics
from adapter.store import SampleStore
from autoscaler.controller.metrics import METRIC_NAMES, ControllerMetrics
from core.catalog import DEFAULT_CATALOG

SERIES_NAME = re.compile(r"\b(queuescale_[a-z0-9_]+)")


def adapter_names() -> set[str]:
    """The adapter's own /metrics, with a source, a request and a failed poll so every family appears."""
    store = SampleStore(DEFAULT_CATALOG)
    store.register("s", identity={"cluster": "s"}, metrics=["trino_queued_queries"], max_age=10.0)
    store.put(Collection(source="s", collected_at=0.0, samples=(Sample("trino_queued_queries", {}, 1),)))
    metrics = SelfMetrics()
    metrics.watch_store(store, clock=lambda: 1.0)
    metrics.observe_request("metric", 200, 0.001)
    metrics.poll_succeeded("s", 0.01)
    metrics.poll_failed("s", "error", 0.01)
    text = metrics.exposition().decode()
    own = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    return own | {exported_name(spec.name) for spec in DEFAULT_CATALOG}


def controller_names() -> set[str]:
    text = ControllerMetrics().exposition().decode()
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {n.removesuffix("_total") for n in METRIC_NAMES} <= families
    return {f"{name}{suffix}" for name in families for suffix in ("", "_total", "_bucket", "_count", "_sum")}


def known_names() -> set[str]:
    return adapter_names() | controller_names()
