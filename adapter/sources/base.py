"""What every source is: a small class behind a three-method protocol, with its own typed settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapter.samples import Sample


class SourceSettings(BaseModel):
    """Settings every source shares. Times are in seconds."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$",
        description="Identity of the backend; becomes the `cluster` (Trino) or `pool` (Spark) label.",
    )
    poll_interval_seconds: float = Field(
        2.0, gt=0, le=3600, description="Seconds between two polls of this backend."
    )
    timeout_seconds: float = Field(
        5.0, gt=0, le=600, description="Seconds one poll may take before it counts as failed."
    )
    max_age_seconds: float | None = Field(
        None,
        gt=0,
        description="Freshness bound in seconds: older data answers 503. Default max(10, 5 x poll interval).",
    )
    backoff_max_seconds: float = Field(
        60.0, gt=0, description="Upper bound in seconds of the jittered exponential backoff after failures."
    )
    max_response_bytes: int = Field(
        8 << 20,
        ge=1024,
        le=1 << 30,
        description="Largest answer, in bytes, read from this backend in one request; a larger one fails "
        "the poll (its metrics answer 503) instead of filling the adapter's memory.",
    )
    namespaces: list[str] = Field(
        default_factory=list,
        description="Kubernetes namespaces in which this source's metrics are served; empty means all.",
    )

    @property
    def max_age(self) -> float:
        if self.max_age_seconds is not None:
            return self.max_age_seconds
        return max(10.0, 5 * self.poll_interval_seconds)

    @model_validator(mode="after")
    def _bound_after_interval(self) -> SourceSettings:
        if self.max_age_seconds is not None and self.max_age_seconds < self.poll_interval_seconds:
            raise ValueError("max_age_seconds must not be shorter than poll_interval_seconds")
        return self


class Source(Protocol):
    """A backend polled in the background. ``collect`` raises :class:`core.errors.SourceError`."""

    @property
    def settings(self) -> SourceSettings: ...

    def identity(self) -> Mapping[str, str]:
        """Labels every sample of this source carries (e.g. ``{"cluster": "adhoc"}``)."""
        ...

    def served_metrics(self) -> Sequence[str]:
        """Catalog names this source produces; a successful poll with no series for one means idle."""
        ...

    async def collect(self, now: float) -> list[Sample]:
        """Poll the backend once and return every series; raise SourceError on any failure."""
        ...

    async def close(self) -> None: ...
