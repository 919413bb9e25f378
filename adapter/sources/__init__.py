"""Backends the adapter polls; the registry lives in adapter.sources.registry."""
