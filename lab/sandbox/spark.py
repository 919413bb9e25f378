"""The emulated Spark standalone pool and its drivers: one import for users of the sandbox.

The model lives in :mod:`lab.sandbox.spark_model`, the HTTP faces and the wall-clock runner in
:mod:`lab.sandbox.spark_http`.
"""

from __future__ import annotations

from lab.sandbox.spark_http import (
    SparkSandbox,
    driver_app,
    master_app,
    master_json,
)
from lab.sandbox.spark_model import (
    ALIVE,
    DEAD,
    DECOMMISSIONED,
    FINISHED,
    RUNNING,
    WAITING,
    Application,
    AppSpec,
    DynamicAllocation,
    Executor,
    MovingLoad,
    SparkPool,
    Stage,
    StageSpec,
    Worker,
    demo_pool,
)

__all__ = [
    "ALIVE",
    "DEAD",
    "DECOMMISSIONED",
    "FINISHED",
    "RUNNING",
    "WAITING",
    "AppSpec",
    "Application",
    "DynamicAllocation",
    "Executor",
    "MovingLoad",
    "SparkPool",
    "SparkSandbox",
    "Stage",
    "StageSpec",
    "Worker",
    "demo_pool",
    "driver_app",
    "master_app",
    "master_json",
]
