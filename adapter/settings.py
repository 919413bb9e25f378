"""The adapter's one settings object: a YAML file, then ``QUEUESCALE_*`` environment variables on top.

Nested fields use ``__`` in environment names (``QUEUESCALE_SERVER__LISTEN=0.0.0.0:6443``). A bad value
stops the adapter at start with the file, line and field named.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from adapter.auth.settings import AuthSettings
from adapter.connections import ConnectionLimits
from adapter.kube import KubeSettings
from adapter.sources.prometheus import PrometheusSettings
from adapter.sources.spark import SparkSettings
from adapter.sources.trino import TrinoSettings
from core.errors import ConfigError
from core.yamlfile import YamlDoc, explain, load_file


def split_host_port(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{listen!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    listen: str = Field("0.0.0.0:6443", description="host:port the API server listens on.")
    tls_cert_file: Path | None = Field(None, description="PEM serving certificate; reloaded on change.")
    tls_key_file: Path | None = Field(None, description="PEM key of the serving certificate.")
    insecure_http: bool = Field(
        False,
        description="Plain HTTP with no authentication. Development only: refused unless listening on loopback.",
    )
    max_request_line_bytes: int = Field(
        65536,
        ge=32768,
        le=1048576,
        description="Longest request line (path and query) accepted, in bytes; at least room for the "
        "longest label selector (10,000 characters) percent-encoded.",
    )
    max_header_bytes: int = Field(
        1 << 20,
        ge=16384,
        le=16 << 20,
        description="Most bytes of request line and headers one request may send (kube-apiserver: 1 MiB); "
        "past it the client gets 431 and the connection closes.",
    )
    max_header_fields: int = Field(
        4096,
        ge=128,
        le=65536,
        description="Most header fields in one request: kube-apiserver sends one X-Remote-Group per group.",
    )
    header_read_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds a connection has for its TLS handshake and the headers of a request, "
        "counted from the accept or from the first byte of the next request.",
    )
    idle_timeout_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Seconds a kept-alive connection may wait for its next request before it is closed.",
    )
    max_connections: int = Field(
        512,
        ge=1,
        le=100_000,
        description="Most connections open at once, counted from the accept (TLS handshakes included); at "
        "the limit the oldest idle one is closed for a new one, or the new one refused if all are busy.",
    )
    selector_cache_bytes: int = Field(
        8 << 20,
        ge=0,
        description="Memory, in bytes, kept for parsed label selectors (least recently used go).",
    )
    response_cache_bytes: int = Field(
        16 << 20,
        ge=0,
        description="Memory, in bytes, kept for encoded metric answers (least recently used go).",
    )

    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(
            max_connections=self.max_connections,
            header_read_timeout=self.header_read_timeout_seconds,
            idle_timeout=self.idle_timeout_seconds,
            max_header_bytes=self.max_header_bytes,
        )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        split_host_port(value)
        return value

    @model_validator(mode="after")
    def _loopback_when_insecure(self) -> ServerSettings:
        host, _ = split_host_port(self.listen)
        if self.insecure_http and not is_loopback(host):
            raise ValueError("insecure_http serves without TLS or authentication: listen on loopback only")
        return self


class KedaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        False, description="Serve /keda/v1/namespaces/{ns}/{metric} for KEDA's metrics-api trigger."
    )
    bearer_token_file: Path | None = Field(
        None, description="File holding the bearer token KEDA must send; required with TLS."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="QUEUESCALE_",
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    server: ServerSettings = Field(
        default_factory=ServerSettings, description="Where and how the API server listens."
    )
    auth: AuthSettings = Field(
        default_factory=AuthSettings, description="Who may call: front-proxy authentication and SAR."
    )
    kube: KubeSettings = Field(
        default_factory=KubeSettings,
        description="How to reach the Kubernetes API (SubjectAccessReview, ConfigMap, Spark discovery).",
    )
    keda: KedaSettings = Field(
        default_factory=KedaSettings, description="The KEDA metrics-api JSON endpoint."
    )
    trino: list[TrinoSettings] = Field(default_factory=list, description="Trino coordinators to poll.")
    spark: list[SparkSettings] = Field(default_factory=list, description="Spark pools to poll.")
    prometheus: list[PrometheusSettings] = Field(
        default_factory=list, description="Prometheus servers to query with PromQL."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log verbosity.")

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        names = [s.name for s in (*self.trino, *self.spark, *self.prometheus)]
        if not names:
            raise ValueError("configure at least one source under trino, spark or prometheus")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        if not self.server.insecure_http and (
            self.server.tls_cert_file is None or self.server.tls_key_file is None
        ):
            raise ValueError(
                "server.tls_cert_file and server.tls_key_file are required unless server.insecure_http is set"
            )
        if self.server.insecure_http and self.auth.mode != "none":
            raise ValueError("server.insecure_http needs auth.mode: none (there is no client certificate)")
        if not self.server.insecure_http and self.auth.mode == "none":
            raise ValueError("auth.mode: none is only allowed with server.insecure_http on loopback")
        if self.keda.enabled and not self.server.insecure_http and self.keda.bearer_token_file is None:
            raise ValueError("keda.bearer_token_file is required when the KEDA endpoint is served over TLS")
        return self


class _Layer(PydanticBaseSettingsSource):
    """A fixed dict as a settings source (the file below the environment, CLI flags above it)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self.data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self.data


def load_settings(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """File, then environment, then ``overrides`` (command-line flags); errors name where and what."""
    doc: YamlDoc | None = None
    file_data: dict[str, Any] = {}
    if path is not None:
        docs = load_file(path)
        if len(docs) != 1 or not isinstance(docs[0].data, dict):
            raise ConfigError(f"{path}: expected one YAML document holding a mapping")
        doc = docs[0]
        file_data = doc.data
    top = overrides or {}

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (_Layer(settings_cls, top), env_settings, _Layer(settings_cls, file_data))

    try:
        loaded = _Loaded()
    except ValidationError as exc:
        raise ConfigError("invalid configuration:\n" + explain(exc, doc)) from exc
    return Settings.model_construct(**{name: getattr(loaded, name) for name in Settings.model_fields})
