"""The one explicit table of source kinds: settings list on ``Settings`` -> source class."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import kubernetes.client

from adapter.sources.base import Source
from adapter.sources.prometheus import PrometheusSettings, PrometheusSource
from adapter.sources.spark import SparkSettings, SparkSource
from adapter.sources.trino import TrinoSettings, TrinoSource
from core.catalog import DEFAULT_CATALOG, Catalog


class Settings(Protocol):
    """What the table reads of the adapter's settings (``adapter.settings.Settings``, which imports the
    sources' settings: a Protocol here keeps the import one-way)."""

    @property
    def prometheus(self) -> Sequence[PrometheusSettings]: ...

    @property
    def spark(self) -> Sequence[SparkSettings]: ...

    @property
    def trino(self) -> Sequence[TrinoSettings]: ...


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
