"""How the adapter reaches the Kubernetes API: settings and an official-client ``kubernetes`` library."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import kubernetes.client
import kubernetes.config
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import ConfigError

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeSettings(BaseModel):
    """Where the Kubernetes API is.

    With nothing set: the pod's service account when mounted, else ``$KUBECONFIG`` or ``~/.kube/config``.
    """

    model_config = ConfigDict(extra="forbid")

    kubeconfig: Path | None = Field(None, description="kubeconfig file to use (its current context).")
    in_cluster: bool = Field(
        False, description="Use the pod's service account (token, CA and KUBERNETES_SERVICE_HOST)."
    )
    host: str | None = Field(
        None,
        pattern=r"^https?://",
        description="Explicit API server URL, e.g. the sandbox's http://127.0.0.1:PORT.",
    )
    ca_file: Path | None = Field(None, description="PEM bundle that signs the API server's cert (with host).")
    token_file: Path | None = Field(
        None, description="File holding a bearer token (with host); re-read when it rotates."
    )
    insecure_skip_tls_verify: bool = Field(
        False, description="Skip TLS verification (with host; testing only)."
    )

    @model_validator(mode="after")
    def _one_way(self) -> KubeSettings:
        chosen = [
            n
            for n, on in (
                ("kubeconfig", self.kubeconfig),
                ("in_cluster", self.in_cluster),
                ("host", self.host),
            )
            if on
        ]
        if len(chosen) > 1:
            raise ValueError(f"set only one of kubeconfig, in_cluster, host (got {', '.join(chosen)})")
        if self.host is None and (self.ca_file or self.token_file or self.insecure_skip_tls_verify):
            raise ValueError("ca_file, token_file and insecure_skip_tls_verify only apply with host")
        return self


def in_cluster_available() -> bool:
    """True inside a pod with a service account mounted."""
    return "KUBERNETES_SERVICE_HOST" in os.environ and (SERVICE_ACCOUNT_DIR / "token").exists()


def api_client(settings: KubeSettings) -> kubernetes.client.ApiClient:
    """A client for ``settings``; a missing or unreadable configuration is a ConfigError."""
    cfg = kubernetes.client.Configuration()
    try:
        if settings.host is not None:
            _explicit(cfg, settings)
        elif settings.in_cluster or (settings.kubeconfig is None and in_cluster_available()):
            # The loader installs a hook that re-reads the projected token before it expires.
            kubernetes.config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        else:
            path = str(settings.kubeconfig) if settings.kubeconfig else None
            kubernetes.config.load_kube_config(config_file=path, client_configuration=cfg)  # type: ignore[no-untyped-call]
    except (kubernetes.config.ConfigException, OSError) as exc:
        raise ConfigError(f"kube: cannot load the Kubernetes client configuration: {exc}") from exc
    return kubernetes.client.ApiClient(configuration=cfg)


def _explicit(cfg: kubernetes.client.Configuration, settings: KubeSettings) -> None:
    assert settings.host is not None
    cfg.host = settings.host.rstrip("/")
    cfg.verify_ssl = not settings.insecure_skip_tls_verify
    if settings.ca_file is not None:
        if not settings.ca_file.is_file():
            raise ConfigError(f"kube.ca_file: {settings.ca_file} does not exist")
        cfg.ssl_ca_cert = str(settings.ca_file)
    token_file = settings.token_file
    if token_file is not None:
        token = _read_token(token_file)
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}

        def _refresh(c: kubernetes.client.Configuration) -> None:
            # Projected service-account tokens rotate on disk; pick up the new one on every call.
            with contextlib.suppress(ConfigError):
                c.api_key = {"authorization": _read_token(token_file)}

        cfg.refresh_api_key_hook = _refresh  # type: ignore[assignment]


def _read_token(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"kube.token_file: cannot read {path}: {exc.strerror}") from exc
