"""The actuator of spark-operator targets: the executors of a ``SparkApplication``'s or a
``ScheduledSparkApplication``'s next run.

No external API resizes a running application, and spark-operator kills and resubmits a running
``SparkApplication`` whose spec changes, so this actuator only ever writes what a *future* run reads
(:mod:`autoscaler.controller.targets.spark_application.plan`): a ``ScheduledSparkApplication``'s ``spec.template`` at any
time, a ``SparkApplication`` only while no run of it exists. The engine gives the count (the peak the
previous runs needed); a write is a merge patch guarded by ``metadata.resourceVersion``, and a conflict is
decided again on a fresh read, so an application the operator submitted in between is left alone.
"""

from __future__ import annotations

from autoscaler.controller.actuator import ActuatorError, Outcome, TargetState
from autoscaler.controller.kube_ops import KubeOps
from autoscaler.controller.targets.spark_application.plan import (
    INT32_MAX,
    application_patch,
    application_state,
    edit_refusal,
    next_run_executors,
    scheduled_patch,
)
from autoscaler.policy.models import ScalingPolicy

__all__ = ["OPERATOR_GROUP", "OPERATOR_VERSION", "PLURALS", "SparkApplicationActuator"]

OPERATOR_GROUP = "sparkoperator.k8s.io"
OPERATOR_VERSION = "v1beta2"
PLURALS = {
    "SparkApplication": "sparkapplications",
    "ScheduledSparkApplication": "scheduledsparkapplications",
}
_CONFLICT_RETRIES = 5


class SparkApplicationActuator:
    def __init__(self, policy: ScalingPolicy, ops: KubeOps) -> None:
        target = policy.spec.target
        if target.kind not in PLURALS or target.application is None:
            raise ValueError("SparkApplicationActuator needs a SparkApplication or ScheduledSparkApplication")
        self.ops = ops
        self.kind = target.kind
        self.plural = PLURALS[target.kind]
        self.namespace = policy.metadata.namespace or "default"
        self.name = target.application.name
        self._observed: tuple[float, dict[str, object]] | None = None

    @property
    def where(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    async def close(self) -> None:
        return None

    async def _read(self) -> dict[str, object] | None:
        return await self.ops.get_custom(
            OPERATOR_GROUP, OPERATOR_VERSION, self.plural, self.namespace, self.name
        )

    def _spec(self, obj: dict[str, object]) -> dict[str, object]:
        spec = obj.get("spec")
        spec = spec if isinstance(spec, dict) else {}
        if self.kind == "ScheduledSparkApplication":
            template = spec.get("template")
            return template if isinstance(template, dict) else {}
        return spec

    async def observe(self, now: float) -> TargetState:
        obj = await self._read()
        self._observed = (now, obj) if obj is not None else None
        if obj is None:
            return TargetState(0, 0, found=False, reason=f"{self.where} not found")
        executors = next_run_executors(self._spec(obj))
        return TargetState(executors, executors)

    async def apply(self, desired: int, now: float, *, dry_run: bool = False) -> Outcome:
        observed, self._observed = self._observed, None
        # The object observe() read in this pass is used first: the patch carries its resourceVersion,
        # so a change made since is a 409 and a fresh read, never an edit of something unseen.
        first = observed[1] if observed is not None and observed[0] == now else None
        try:
            return await self._apply(desired, dry_run, first)
        except ActuatorError as exc:
            return Outcome(errors=(exc,), detail=f"nothing changed: {exc}")

    async def _apply(self, desired: int, dry_run: bool, first: dict[str, object] | None) -> Outcome:
        n = min(max(1, desired), INT32_MAX)
        floor = " (Spark needs at least 1 executor)" if desired < 1 else ""
        for attempt in range(_CONFLICT_RETRIES):
            obj = first if attempt == 0 and first is not None else await self._read()
            if obj is None:
                raise ActuatorError("get_application", f"{self.where} not found")
            if self.kind == "SparkApplication":
                refusal = edit_refusal(obj)
                if refusal is not None:
                    return Outcome(
                        detail=f"{self.where} left unchanged: {refusal}; its next run is sized on its next "
                        f"creation or resubmission: {n} executors{floor}"
                    )
                patch = application_patch(obj, n)
            else:
                patch = scheduled_patch(obj, n)
            if patch is None:
                return Outcome(detail=f"{self.where}: its next run already gets {n} executors{floor}")
            if dry_run:
                return Outcome(detail=f"dry run, would size the next run of {self.where} to {n} executors")
            written = await self.ops.patch_custom(
                OPERATOR_GROUP, OPERATOR_VERSION, self.plural, self.namespace, self.name, patch
            )
            if written is None:
                continue
            state = application_state(obj) if self.kind == "SparkApplication" else ""
            before = f" ({state or 'not submitted'})" if self.kind == "SparkApplication" else ""
            return Outcome(
                replicas=n,
                detail=f"{self.where}{before}: next run sized to {n} executors{floor}",
                written={f"{self.plural}/{self.name}": patch},
            )
        raise ActuatorError(
            "patch_application", f"{self.where}: still conflicting after {_CONFLICT_RETRIES} tries"
        )
