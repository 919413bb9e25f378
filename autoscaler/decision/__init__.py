"""Deciding a replica count: pure functions of what was observed, with ``now`` passed in.

``engine`` turns a policy and an :class:`~autoscaler.decision.signals.Observation` into a decision: one
proposal per metric (``queueing`` and ``work_sizing`` for Trino's queue wait, ``spark_sizing`` for Spark
executors, ``hpa`` for HPA-style targets), the seasonal ``forecast`` as a floor, then the HPA's
``hpa_behavior`` (stabilization windows and rate policies) and the bounds. Nothing here does I/O: no
Kubernetes client, no HTTP.
"""
