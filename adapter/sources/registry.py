"""The one explicit table of source kinds: settings list on ``Settings`` -> source class."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import kubernetes.client

from adapter.sources.base import Source
from adapter.sources.prometheus import PrometheusSource
from adapter.sources.spark import SparkSource
from adapter.sources.trino import TrinoSource
from core.catalog import DEFAULT_CATALOG, Catalog

if TYPE_CHECKING:
    from adapter.settings import Settings


def catalog_for(settings: Settings) -> Catalog:
    """The built-in catalog plus the metrics operators define through Prometheus queries."""
    custom = [spec for prom in settings.prometheus for spec in prom.custom_specs()]
    return DEFAULT_CATALOG.extended(custom)


def build_sources(settings: Settings, kube: Callable[[], kubernetes.client.ApiClient]) -> list[Source]:
    """Sorted by kind, then in configuration order, so the table reads the same as the file."""
    sources: list[Source] = []
    sources.extend(PrometheusSource(s) for s in settings.prometheus)
    sources.extend(SparkSource(s, kube() if s.kubernetes is not None else None) for s in settings.spark)
    sources.extend(TrinoSource(s) for s in settings.trino)
    return sources
