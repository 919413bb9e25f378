"""The serving TLS context: certificate and client-CA changes apply to new handshakes without a restart.

aiohttp takes one ``SSLContext`` for the listening socket. Its ``sni_callback`` runs at the start of
every handshake (CPython calls it with ``None`` when the client sends no SNI, as kube-apiserver does when
it dials a Service IP) and swaps in a context built from the files and client-CA bundle as they are now.
A rotated file that does not load keeps the previous good context; the failure is logged once per change.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from core.errors import ConfigError

log = logging.getLogger(__name__)

_Stat = tuple[int, int, int, int]


@dataclass(frozen=True)
class _Loaded:
    context: ssl.SSLContext
    files: tuple[_Stat, _Stat]
    cert_pem: bytes
    key_pem: bytes
    client_ca: bytes | None


def _stat(path: Path) -> _Stat:
    # A Secret mount swaps a symlink: stat follows it, so the inode changes with every update.
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


class ServingTLS:
    """Serving certificate and key reloaded from disk, client certificates checked against ``client_ca()``.

    Client certificates are requested, not required: a request without one still reaches the
    application, which answers 401 as a ``metav1.Status``. A certificate that is presented but does not
    verify against the current bundle (other CA, expired, no clientAuth usage) fails the handshake: a
    TLS server cannot accept a certificate it failed to verify.
    """

    def __init__(
        self,
        cert_file: Path,
        key_file: Path,
        client_ca: Callable[[], bytes | None] = lambda: None,
    ) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.client_ca = client_ca
        self._loaded: _Loaded | None = None
        self._listening: ssl.SSLContext | None = None
        self._failed_files: tuple[_Stat, _Stat] | None = None
        self._failed_ca: bytes | None = None

    def context(self) -> ssl.SSLContext:
        """The context for ``web.TCPSite(ssl_context=...)``; a bad certificate or key is a ConfigError."""
        if self._listening is None:
            files = self._stat_files()
            cert_pem, key_pem = self._read_pair()
            ca = self.client_ca()
            ctx = self._build(ca)
            ctx.sni_callback = self._on_handshake
            self._loaded = _Loaded(ctx, files, cert_pem, key_pem, ca)
            self._listening = ctx
        return self._listening

    def current(self) -> ssl.SSLContext:
        """The context a handshake starting now gets, reloading what changed since the last one."""
        loaded = self._loaded
        if loaded is None:
            return self.context()
        try:
            files = self._stat_files()
        except ConfigError as exc:
            # Mid-rotation a file can be briefly missing: keep serving the last good pair.
            log.warning("serving certificate not reloaded: %s", exc)
            return loaded.context
        ca = self.client_ca()
        if files == loaded.files and ca == loaded.client_ca:
            return loaded.context
        if files == self._failed_files and ca == self._failed_ca:
            return loaded.context
        try:
            cert_pem, key_pem = self._read_pair()
            if cert_pem == loaded.cert_pem and key_pem == loaded.key_pem and ca == loaded.client_ca:
                self._loaded = _Loaded(loaded.context, files, cert_pem, key_pem, ca)
                return loaded.context
            ctx = self._build(ca)
        except ConfigError as exc:
            self._failed_files, self._failed_ca = files, ca
            log.error("keeping the previous serving TLS context: %s", exc)
            return loaded.context
        if cert_pem != loaded.cert_pem:
            log.info("serving certificate reloaded from %s", self.cert_file)
        if ca != loaded.client_ca:
            log.info("client CA bundle for TLS verification updated")
        self._loaded = _Loaded(ctx, files, cert_pem, key_pem, ca)
        return ctx

    def _on_handshake(self, sslobj: ssl.SSLObject, server_name: str | None, ctx: ssl.SSLContext) -> None:
        # An exception escaping here aborts the handshake with an opaque alert: log it instead.
        try:
            fresh = self.current()
            if fresh is not sslobj.context:
                sslobj.context = fresh
        except Exception:
            log.exception("serving TLS reload failed; handshake continues with the previous context")

    def _stat_files(self) -> tuple[_Stat, _Stat]:
        try:
            return (_stat(self.cert_file), _stat(self.key_file))
        except OSError as exc:
            raise ConfigError(f"cannot read {exc.filename}: {exc.strerror}") from exc

    def _read_pair(self) -> tuple[bytes, bytes]:
        """Read and check both files so the error names the one at fault."""
        cert_pem = _read(self.cert_file)
        try:
            x509.load_pem_x509_certificates(cert_pem)
        except ValueError as exc:
            raise ConfigError(f"{self.cert_file}: not a PEM certificate ({exc})") from exc
        key_pem = _read(self.key_file)
        try:
            load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{self.key_file}: not an unencrypted PEM private key ({exc})") from exc
        return cert_pem, key_pem

    def _build(self, client_ca: bytes | None) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"{self.cert_file} / {self.key_file}: certificate and key do not load together ({exc})"
            ) from exc
        # With no bundle yet, a presented certificate cannot verify and fails the handshake; callers
        # without one still reach the application and get a 401.
        ctx.verify_mode = ssl.CERT_OPTIONAL
        if client_ca:
            try:
                ctx.load_verify_locations(cadata=client_ca.decode("ascii", errors="replace"))
            except ssl.SSLError as exc:
                raise ConfigError(f"client CA bundle does not load: {exc}") from exc
        return ctx


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
