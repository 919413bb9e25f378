"""queuescale adapter: Trino and Spark backlog metrics on external.metrics.k8s.io."""

__version__ = "0.1.0"
