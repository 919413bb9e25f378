"""Settings of the adapter's authentication (front-proxy) and authorization (SubjectAccessReview)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_FILE_ONLY = (
    "requestheader_allowed_names",
    "requestheader_username_headers",
    "requestheader_group_headers",
    "requestheader_extra_headers_prefix",
)


class AuthSettings(BaseModel):
    """Who may call the adapter.

    ``front-proxy`` trusts kube-apiserver's identity headers only behind its verified front-proxy client
    certificate. The trust settings come from ``requestheader_client_ca_file`` and the
    ``requestheader_*`` fields when the file is set, else from the ConfigMap kube-apiserver publishes
    (``kube-system/extension-apiserver-authentication``), re-read every ``reload_seconds``.
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["front-proxy", "none"] = Field(
        "front-proxy", description="front-proxy: kube-apiserver aggregation; none: loopback development only."
    )
    requestheader_client_ca_file: Path | None = Field(
        None,
        description="PEM bundle that signs the front-proxy client certificate. Unset: read the ConfigMap.",
    )
    requestheader_allowed_names: list[str] = Field(
        default_factory=list,
        description="Common names allowed for the front-proxy certificate; empty allows any (file mode).",
    )
    requestheader_username_headers: list[str] = Field(
        default_factory=lambda: ["X-Remote-User"],
        description="Headers holding the user name, first non-empty wins (file mode).",
    )
    requestheader_group_headers: list[str] = Field(
        default_factory=lambda: ["X-Remote-Group"],
        description="Headers holding groups; every value of each is one group (file mode).",
    )
    requestheader_extra_headers_prefix: list[str] = Field(
        default_factory=lambda: ["X-Remote-Extra-"],
        description="Header prefixes carrying extra user attributes (file mode).",
    )
    configmap_namespace: str = Field("kube-system", description="Namespace of the authentication ConfigMap.")
    configmap_name: str = Field(
        "extension-apiserver-authentication", description="Name of the authentication ConfigMap."
    )
    reload_seconds: float = Field(
        30.0, gt=0, le=3600, description="Seconds between two reads of the CA file or the ConfigMap."
    )
    sar_cache_seconds: float = Field(
        10.0, ge=0, le=3600, description="Seconds an allow or deny SubjectAccessReview answer is reused."
    )
    sar_cache_entries: int = Field(
        4096, ge=1, le=1_000_000, description="Most (user, metric, namespace) decisions kept in the cache."
    )
    sar_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="Seconds one SubjectAccessReview call may take before it fails."
    )

    @field_validator(*_FILE_ONLY)
    @classmethod
    def _no_blank(cls, values: list[str]) -> list[str]:
        if any(not v.strip() for v in values):
            raise ValueError("entries must not be empty or blank")
        return [v.strip() for v in values]

    @model_validator(mode="after")
    def _file_mode_fields(self) -> AuthSettings:
        if self.requestheader_client_ca_file is None:
            given = sorted(self.model_fields_set.intersection(_FILE_ONLY))
            if given:
                raise ValueError(
                    f"{', '.join(given)} only apply with requestheader_client_ca_file; "
                    "otherwise they come from the ConfigMap"
                )
        return self
