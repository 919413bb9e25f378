"""Throw-away PKI for tests: CAs, serving certificates and front-proxy client certificates.

EC P-256 keys keep generation instant. Every certificate is also written to a directory so servers
and clients can load it by path, the way they do in a cluster.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Usage = Literal["client", "server", "none"]


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path
    key_file: Path

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_atomically(path: Path, data: bytes) -> None:
    """Replace a file the way kubelet updates a mounted Secret: a new inode swapped in by rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class CertFactory:
    """Issues certificates into ``directory``; file names come from the ``name`` of each call."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def ca(self, name: str, *, expired: bool = False, parent: Issued | None = None) -> Issued:
        """A self-signed CA, or with ``parent`` an intermediate CA that ``parent`` signed."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        issuer = parent.cert.subject if parent is not None else subject
        builder = (
            self._builder(subject, issuer, key, expired=expired)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if parent is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()), critical=False
            )
        return self._save(name, builder.sign(parent.key if parent else key, hashes.SHA256()), key)

    def serving(
        self,
        ca: Issued,
        name: str = "serving",
        *,
        service: str = "queuescale",
        namespace: str = "queuescale",
    ) -> Issued:
        """A serving certificate valid for loopback and for ``<service>.<namespace>.svc``."""
        sans: list[x509.GeneralName] = [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.DNSName("localhost"),
            x509.DNSName(f"{service}.{namespace}.svc"),
        ]
        return self.leaf(ca, name, cn=f"{service}.{namespace}.svc", usage="server", sans=sans)

    def client(
        self,
        ca: Issued,
        name: str,
        *,
        cn: str = "front-proxy-client",
        usage: Usage = "client",
        expired: bool = False,
    ) -> Issued:
        """A front-proxy client certificate; ``usage`` picks the ExtendedKeyUsage ("none": no extension)."""
        return self.leaf(ca, name, cn=cn, usage=usage, expired=expired)

    def leaf(
        self,
        ca: Issued,
        name: str,
        *,
        cn: str,
        usage: Usage,
        sans: list[x509.GeneralName] | None = None,
        expired: bool = False,
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        builder = (
            self._builder(subject, ca.cert.subject, key, expired=expired)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
            )
        )
        if usage != "none":
            oid = ExtendedKeyUsageOID.CLIENT_AUTH if usage == "client" else ExtendedKeyUsageOID.SERVER_AUTH
            builder = builder.add_extension(x509.ExtendedKeyUsage([oid]), critical=False)
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return self._save(name, builder.sign(ca.key, hashes.SHA256()), key)

    def _builder(
        self, subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, *, expired: bool
    ) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.UTC)
        if expired:
            start, end = now - dt.timedelta(days=30), now - dt.timedelta(days=1)
        else:
            start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=7)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
        )

    def _save(self, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Issued:
        cert_file = self.directory / f"{name}.crt"
        key_file = self.directory / f"{name}.key"
        write_atomically(cert_file, cert.public_bytes(serialization.Encoding.PEM))
        write_atomically(key_file, _key_pem(key))
        return Issued(cert=cert, key=key, cert_file=cert_file, key_file=key_file)
