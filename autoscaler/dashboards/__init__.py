"""Grafana dashboards generated from the metric catalog with grafana-foundation-sdk.

``queuescale dashboards`` writes them to ``dashboards/``; ``queuescale dashboards export`` writes JSON
files or ConfigMaps for Grafana's dashboard sidecar.
"""
