"""Authentication of kube-apiserver's proxied requests by its front-proxy client certificate.

kube-apiserver forwards a caller's identity in ``X-Remote-User``, ``X-Remote-Group`` and
``X-Remote-Extra-*`` headers. Those headers are trusted only on a connection whose client certificate
verifies against the request-header CA bundle (with the clientAuth usage) and whose common name is in
the allowed list (empty: any). Anything else is 401: trusting the headers from anyone would let anyone
impersonate ``system:masters``.

The certificate is checked again here against the bundle current at request time, because a kept-alive
connection may have been verified by the TLS layer against a bundle that has rotated since.
"""

from __future__ import annotations

import _ssl
import asyncio
import contextlib
import datetime as dt
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import kubernetes.client
from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes.client.exceptions import ApiException
from multidict import MultiMapping

from adapter.auth import UserInfo
from adapter.auth.settings import AuthSettings
from core.errors import ConfigError, Unauthorized

log = logging.getLogger(__name__)

# Keys of the ConfigMap kube-apiserver maintains; list values are JSON arrays of strings.
CM_CLIENT_CA = "requestheader-client-ca-file"
CM_ALLOWED_NAMES = "requestheader-allowed-names"
CM_USERNAME_HEADERS = "requestheader-username-headers"
CM_GROUP_HEADERS = "requestheader-group-headers"
CM_EXTRA_PREFIXES = "requestheader-extra-headers-prefix"


@dataclass(frozen=True)
class FrontProxyConfig:
    """What a front-proxy request must satisfy. Defaults are kube-apiserver's flag defaults."""

    client_ca: bytes
    allowed_names: tuple[str, ...] = ()
    username_headers: tuple[str, ...] = ("X-Remote-User",)
    group_headers: tuple[str, ...] = ("X-Remote-Group",)
    extra_header_prefixes: tuple[str, ...] = ("X-Remote-Extra-",)
    ca_certificates: tuple[x509.Certificate, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            certs = tuple(x509.load_pem_x509_certificates(self.client_ca))
        except ValueError as exc:
            raise ConfigError(f"the request-header client CA bundle is not PEM certificates: {exc}") from exc
        object.__setattr__(self, "ca_certificates", certs)


def _json_strings(data: Mapping[str, str], key: str) -> tuple[str, ...]:
    raw = data.get(key, "")
    if not raw:
        # kube-apiserver leaves a key out when the list is empty; upstream reads that as no entries.
        return ()
    try:
        value: Any = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"ConfigMap key {key} is not a JSON array: {exc}") from exc
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"ConfigMap key {key} is not a JSON array of strings")
    return tuple(value)


def parse_configmap(data: Mapping[str, str]) -> FrontProxyConfig:
    """Read ``kube-system/extension-apiserver-authentication`` as kube-apiserver writes it."""
    ca = data.get(CM_CLIENT_CA, "")
    if not ca.strip():
        raise ConfigError(
            f"ConfigMap has no {CM_CLIENT_CA}: kube-apiserver runs without --requestheader-client-ca-file, "
            "so API aggregation is not set up"
        )
    return FrontProxyConfig(
        client_ca=ca.encode(),
        allowed_names=_json_strings(data, CM_ALLOWED_NAMES),
        username_headers=_json_strings(data, CM_USERNAME_HEADERS),
        group_headers=_json_strings(data, CM_GROUP_HEADERS),
        extra_header_prefixes=_json_strings(data, CM_EXTRA_PREFIXES),
    )


class FrontProxyProvider:
    """Keeps the current :class:`FrontProxyConfig`, re-read every ``reload_seconds`` in the background.

    A failed read keeps the previous configuration. ``load`` blocks (file or API I/O) and runs in a thread.
    """

    def __init__(
        self, load: Callable[[], FrontProxyConfig], reload_seconds: float, source: str, *, required: bool
    ) -> None:
        self._load = load
        self.reload_seconds = reload_seconds
        self.source = source
        self._required = required
        self._current: FrontProxyConfig | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        allowed_names: tuple[str, ...] = (),
        username_headers: tuple[str, ...] = ("X-Remote-User",),
        group_headers: tuple[str, ...] = ("X-Remote-Group",),
        extra_header_prefixes: tuple[str, ...] = ("X-Remote-Extra-",),
        reload_seconds: float = 30.0,
    ) -> FrontProxyProvider:
        def load() -> FrontProxyConfig:
            try:
                pem = path.read_bytes()
            except OSError as exc:
                raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
            try:
                return FrontProxyConfig(
                    client_ca=pem,
                    allowed_names=allowed_names,
                    username_headers=username_headers,
                    group_headers=group_headers,
                    extra_header_prefixes=extra_header_prefixes,
                )
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from exc

        return cls(load, reload_seconds, str(path), required=True)

    @classmethod
    def from_configmap(
        cls,
        api_client: kubernetes.client.ApiClient,
        namespace: str = "kube-system",
        name: str = "extension-apiserver-authentication",
        *,
        reload_seconds: float = 30.0,
        timeout_seconds: float = 10.0,
    ) -> FrontProxyProvider:
        core = kubernetes.client.CoreV1Api(api_client)
        where = f"ConfigMap {namespace}/{name}"

        def load() -> FrontProxyConfig:
            try:
                cm = core.read_namespaced_config_map(name, namespace, _request_timeout=timeout_seconds)
            except ApiException as exc:
                hint = ""
                if exc.status == 403:
                    hint = (
                        " (bind the adapter's service account to the Role "
                        "kube-system/extension-apiserver-authentication-reader)"
                    )
                raise ConfigError(f"cannot read {where}: HTTP {exc.status} {exc.reason}{hint}") from exc
            except Exception as exc:
                raise ConfigError(f"cannot read {where}: {exc.__class__.__name__}: {exc}") from exc
            return parse_configmap(cm.data or {})

        return cls(load, reload_seconds, where, required=False)

    @classmethod
    def from_settings(
        cls, settings: AuthSettings, api_client: kubernetes.client.ApiClient | None
    ) -> FrontProxyProvider:
        """From ``requestheader_client_ca_file`` when set, else from the ConfigMap through ``api_client``."""
        if settings.requestheader_client_ca_file is not None:
            return cls.from_file(
                settings.requestheader_client_ca_file,
                allowed_names=tuple(settings.requestheader_allowed_names),
                username_headers=tuple(settings.requestheader_username_headers),
                group_headers=tuple(settings.requestheader_group_headers),
                extra_header_prefixes=tuple(settings.requestheader_extra_headers_prefix),
                reload_seconds=settings.reload_seconds,
            )
        if api_client is None:
            raise ConfigError("auth: a Kubernetes client is needed to read the authentication ConfigMap")
        return cls.from_configmap(
            api_client,
            settings.configmap_namespace,
            settings.configmap_name,
            reload_seconds=settings.reload_seconds,
        )

    def current(self) -> FrontProxyConfig | None:
        """The configuration in force; None until the first successful read."""
        return self._current

    def client_ca(self) -> bytes | None:
        """The CA bundle for the TLS layer (``ServingTLS(client_ca=provider.client_ca)``)."""
        return self._current.client_ca if self._current is not None else None

    async def refresh(self) -> bool:
        """Read once; True if the configuration changed. Failures are logged and keep the previous one."""
        try:
            fresh = await asyncio.to_thread(self._load)
        except ConfigError as exc:
            log.error(
                "front-proxy trust not refreshed from %s, keeping the previous one: %s", self.source, exc
            )
            return False
        if fresh == self._current:
            return False
        if not fresh.username_headers:
            log.warning(
                "front-proxy trust from %s names no username header: every request will be 401", self.source
            )
        if self._current is not None:
            log.info("front-proxy trust updated from %s", self.source)
        self._current = fresh
        return True

    async def start(self) -> None:
        """First read, then background refreshes. A bad CA file stops the start; the ConfigMap is retried."""
        if self._task is not None:
            return
        if self._required:
            self._current = await asyncio.to_thread(self._load)
        else:
            await self.refresh()
        self._task = asyncio.create_task(self._loop(), name=f"front-proxy trust from {self.source}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def cleanup_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx.append(provider.cleanup_ctx)``."""
        await self.start()
        yield
        await self.stop()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.reload_seconds)
            await self.refresh()


_UNESCAPE_OK = re.compile(r"^(?:[^%]|%[0-9A-Fa-f]{2})*$")


def _unescape_extra_key(key: str) -> str:
    # Go's url.PathUnescape: malformed escapes keep the key as sent rather than dropping the value.
    if not _UNESCAPE_OK.match(key):
        return key
    return unquote(key, errors="replace")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _allows_client_auth(cert: x509.Certificate, *, required: bool) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return not required
    return ExtendedKeyUsageOID.CLIENT_AUTH in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku


def _valid_at(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


_MAX_CHAIN = 8


def _issuers(
    cert: x509.Certificate, candidates: tuple[x509.Certificate, ...], now: dt.datetime
) -> list[x509.Certificate]:
    """The certificates of ``candidates`` that signed ``cert`` and may sign client certificates now."""
    found = []
    for ca in candidates:
        if ca.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        if _valid_at(ca, now) and _allows_client_auth(ca, required=False):
            found.append(ca)
    return found


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _chains_to_anchor(
    cert: x509.Certificate,
    anchors: tuple[x509.Certificate, ...],
    intermediates: tuple[x509.Certificate, ...],
    now: dt.datetime,
    depth: int = 0,
) -> bool:
    if _issuers(cert, anchors, now):
        return True
    if depth >= _MAX_CHAIN:
        return False
    return any(
        _is_ca(ca) and _chains_to_anchor(ca, anchors, intermediates, now, depth + 1)
        for ca in _issuers(cert, intermediates, now)
        if ca != cert
    )


def verify_client_certificate(
    der: bytes, config: FrontProxyConfig, now: dt.datetime, intermediates: tuple[bytes, ...] = ()
) -> str:
    """Return the certificate's common name, or raise ValueError saying why it is not trusted.

    As Go's ``x509.Verify`` in kube-apiserver's request-header authenticator: every certificate of the
    bundle is a trust anchor, and the certificates the client sent after its leaf may link the leaf to
    one (an intermediate must be a CA, valid now and, if it restricts its usages, allow clientAuth).
    The leaf must carry the clientAuth usage: stricter than Go, which also accepts a leaf without the
    extension; kube-apiserver's front-proxy certificates always have it.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
        chain = tuple(x509.load_der_x509_certificate(c) for c in intermediates)
    except ValueError as exc:
        raise ValueError(f"unparsable certificate: {exc}") from exc
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else ""
    ident = f"cn={cn!r} serial={cert.serial_number}"
    if not _valid_at(cert, now):
        raise ValueError(f"certificate {ident} is outside its validity period")
    if not _allows_client_auth(cert, required=True):
        raise ValueError(f"certificate {ident} lacks the clientAuth extended key usage")
    if not _chains_to_anchor(cert, config.ca_certificates, chain, now):
        raise ValueError(f"certificate {ident} is not signed by the current request-header CA bundle")
    if config.allowed_names and cn not in config.allowed_names:
        raise ValueError(f"certificate {ident} is not among the allowed names {list(config.allowed_names)}")
    return cn


def _peer_certificates(request: web.Request) -> tuple[bytes, ...]:
    """The client's certificate and the chain it sent after it (DER), or () without one."""
    transport = request.transport
    if transport is None:
        return ()
    sslobj = transport.get_extra_info("ssl_object")
    if sslobj is None:
        return ()
    leaf: bytes | None = sslobj.getpeercert(binary_form=True)
    if leaf is None:
        return ()
    # Public from Python 3.13 (DER bytes); 3.11 and 3.12 have it on the inner object (certificates).
    unverified = getattr(sslobj, "get_unverified_chain", None) or sslobj._sslobj.get_unverified_chain
    sent = [c if isinstance(c, bytes) else c.public_bytes(_ssl.ENCODING_DER) for c in unverified() or ()]
    return (leaf, *(c for c in sent if c != leaf))


def user_from_headers(headers: MultiMapping[str], config: FrontProxyConfig) -> UserInfo | None:
    """The identity in the request headers, read as kube-apiserver's request-header authenticator does."""
    name = ""
    for header in config.username_headers:
        values = headers.getall(header, [])
        if values and values[0]:
            name = values[0]
            break
    if not name:
        return None
    groups = [v for header in config.group_headers for v in headers.getall(header, []) if v]
    extra: dict[str, list[str]] = {}
    for prefix in config.extra_header_prefixes:
        lowered = prefix.lower()
        for key, value in headers.items():
            if key.lower().startswith(lowered):
                extra.setdefault(_unescape_extra_key(key[len(prefix) :].lower()), []).append(value)
    return UserInfo(name=name, groups=tuple(groups), extra={k: tuple(v) for k, v in extra.items()})


class FrontProxyAuthenticator:
    """``adapter.auth.Authenticator`` for requests proxied by kube-apiserver."""

    def __init__(
        self,
        config: Callable[[], FrontProxyConfig | None],
        now: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._config = config
        self._now = now

    async def authenticate(self, request: web.Request) -> UserInfo:
        config = self._config()
        certificates = _peer_certificates(request)
        if not certificates:
            claimed = config.username_headers if config is not None else ("X-Remote-User",)
            if any(request.headers.get(h) for h in claimed):
                log.warning(
                    "ignored identity headers from %s: no verified front-proxy client certificate",
                    request.remote,
                )
            raise Unauthorized("Unauthorized")
        if config is None:
            log.error(
                "front-proxy request from %s refused: no request-header CA bundle loaded yet", request.remote
            )
            raise Unauthorized("Unauthorized")
        try:
            verify_client_certificate(certificates[0], config, self._now(), certificates[1:])
        except ValueError as exc:
            log.warning("front-proxy request from %s refused: %s", request.remote, exc)
            raise Unauthorized("Unauthorized") from exc
        user = user_from_headers(request.headers, config)
        if user is None:
            log.warning(
                "front-proxy request from %s refused: no user in %s", request.remote, config.username_headers
            )
            raise Unauthorized("Unauthorized")
        return user
