"""``scripts/make-serving-cert.sh`` with the machine's openssl: a CA and a serving certificate that a real TLS
client accepts for ``<service>.<namespace>.svc``, the Secret the adapter mounts, and the caBundle patch that
``deploy/overlays/self-signed`` applies."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import ssl
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from adapter.auth.tls import ServingTLS
from tests.helpers.deploy import KUBECTL, SELF_SIGNED_CERTS, one, render, run_cert_script, scratch_deploy

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )


async def _handshake(out: Path, server_hostname: str) -> str:
    """Serve with the adapter's own TLS context on loopback; a client trusting only ca.crt connects."""
    server_ctx = ServingTLS(out / "tls.crt", out / "tls.key").context()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cafile=out / "ca.crt")
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname=server_hostname
        )
        data = await reader.read()
        writer.close()
        return data.decode()
    finally:
        server.close()
        await server.wait_closed()


def test_serving_certificate_verifies_against_the_ca_for_the_service_name(tmp_path: Path) -> None:
    made = run_cert_script(tmp_path)
    assert made.returncode == 0, made.stderr
    ca, tls = _cert(tmp_path / "ca.crt"), _cert(tmp_path / "tls.crt")
    tls.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert tls.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usages = tls.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert "queuescale-adapter.queuescale.svc" in _sans(tls)
    assert "queuescale-adapter.queuescale.svc.cluster.local" in _sans(tls)
    for key in ("ca.key", "tls.key", "secret.yaml"):
        assert (tmp_path / key).stat().st_mode & 0o077 == 0, f"{key} is readable by others"


async def test_a_tls_client_trusting_the_ca_accepts_the_adapter(tmp_path: Path) -> None:
    assert run_cert_script(tmp_path).returncode == 0
    assert await _handshake(tmp_path, "queuescale-adapter.queuescale.svc") == "ok"
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(tmp_path, "other.queuescale.svc")


def test_secret_and_cabundle_patch_carry_the_files(tmp_path: Path) -> None:
    assert run_cert_script(tmp_path).returncode == 0
    secret = yaml.safe_load((tmp_path / "secret.yaml").read_text())
    assert (secret["kind"], secret["type"]) == ("Secret", "kubernetes.io/tls")
    assert secret["metadata"] == {
        "name": "queuescale-adapter-tls",
        "namespace": "queuescale",
        "labels": {"app.kubernetes.io/name": "queuescale", "app.kubernetes.io/component": "adapter"},
    }
    for key in ("tls.crt", "tls.key", "ca.crt"):
        assert base64.b64decode(secret["data"][key]) == (tmp_path / key).read_bytes()
    patch = yaml.safe_load((tmp_path / "apiservice-cabundle.yaml").read_text())
    assert patch["metadata"]["name"] == "v1beta1.external.metrics.k8s.io"
    assert base64.b64decode(patch["spec"]["caBundle"]) == (tmp_path / "ca.crt").read_bytes()


def test_a_second_run_keeps_the_ca_and_renews_the_certificate(tmp_path: Path) -> None:
    assert run_cert_script(tmp_path).returncode == 0
    ca, tls = (tmp_path / "ca.crt").read_bytes(), (tmp_path / "tls.crt").read_bytes()
    again = run_cert_script(tmp_path)
    assert again.returncode == 0
    assert "reusing CA" in again.stdout
    assert (tmp_path / "ca.crt").read_bytes() == ca
    assert (tmp_path / "tls.crt").read_bytes() != tls
    _cert(tmp_path / "tls.crt").verify_directly_issued_by(_cert(tmp_path / "ca.crt"))
    assert run_cert_script(tmp_path, "--new-ca").returncode == 0
    assert (tmp_path / "ca.crt").read_bytes() != ca


def test_names_follow_the_flags(tmp_path: Path) -> None:
    made = run_cert_script(
        tmp_path,
        "-n",
        "metrics",
        "-s",
        "qs",
        "--secret",
        "qs-tls",
        "--cluster-domain",
        "corp.internal",
        "-d",
        "30",
    )
    assert made.returncode == 0, made.stderr
    tls = _cert(tmp_path / "tls.crt")
    assert _sans(tls) == ["qs", "qs.metrics", "qs.metrics.svc", "qs.metrics.svc.corp.internal"]
    assert 29 <= (tls.not_valid_after_utc - tls.not_valid_before_utc).days <= 30
    secret = yaml.safe_load((tmp_path / "secret.yaml").read_text())
    assert (secret["metadata"]["name"], secret["metadata"]["namespace"]) == ("qs-tls", "metrics")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("-d", "0"), "positive whole number"),
        (("--ca-days", "ten"), "positive whole number"),
        (("--bogus",), "unknown argument"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    made = run_cert_script(tmp_path / "out", *args)
    assert made.returncode == 2
    assert says in made.stderr
    assert not (tmp_path / "out").exists()


def test_a_ca_expiring_before_the_new_certificate_is_refused(tmp_path: Path) -> None:
    assert run_cert_script(tmp_path, "--ca-days", "10", "-d", "5").returncode == 0
    refused = run_cert_script(tmp_path, "-d", "30")
    assert refused.returncode == 1
    assert "--new-ca" in refused.stderr


@pytest.mark.skipif(KUBECTL is None and not os.environ.get("CI"), reason="kubectl not installed")
def test_self_signed_overlay_applies_what_the_script_wrote(tmp_path: Path) -> None:
    deploy = scratch_deploy(tmp_path)
    objs = render(deploy / "overlays" / "self-signed")
    certs = deploy / SELF_SIGNED_CERTS
    api = one(objs, "APIService", "v1beta1.external.metrics.k8s.io")
    assert base64.b64decode(api["spec"]["caBundle"]) == (certs / "ca.crt").read_bytes()
    assert api["spec"]["service"]["name"] == "queuescale-adapter"
    secret = one(objs, "Secret", "queuescale-adapter-tls")
    assert base64.b64decode(secret["data"]["tls.crt"]) == (certs / "tls.crt").read_bytes()
