"""The adapter's security over real HTTPS on loopback: front-proxy authentication, SubjectAccessReview
authorization, and certificate rotation.

The trust settings come from the Kubernetes sandbox's ``kube-system/extension-apiserver-authentication``
ConfigMap and the reviews go to its SubjectAccessReview endpoint, both through the official client.

Where a case says "tls", the TLS layer refuses the connection: a client certificate that is presented
but fails OpenSSL's verification (unknown CA, expired, an ExtendedKeyUsage without clientAuth) aborts the
handshake even with ``CERT_OPTIONAL``, which only tolerates the *absence* of a certificate. The cases
that reach the application and get a 401 Status are those OpenSSL accepts but the front-proxy rules do
not: no certificate, a leaf without any ExtendedKeyUsage extension, a CN outside the allowed names, no
user header, and a kept-alive connection whose CA has been rotated out since its handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes.client
import pytest
from aiohttp import web
from cryptography import x509
from multidict import CIMultiDict, CIMultiDictProxy
from pydantic import ValidationError

from adapter.app import AdapterParts, create_app
from adapter.auth import UserInfo
from adapter.auth.delegated import DelegatedPathAuth, TokenReviewAuthenticator
from adapter.auth.frontproxy import (
    FrontProxyAuthenticator,
    FrontProxyConfig,
    FrontProxyProvider,
    parse_configmap,
    user_from_headers,
)
from adapter.auth.sar import SubjectAccessReviewAuthorizer
from adapter.auth.settings import AuthSettings
from adapter.auth.tls import ServingTLS
from adapter.listen import Listening, listen
from adapter.poller import Poller
from adapter.samples import Sample
from adapter.selfmetrics import SelfMetrics
from adapter.store import SampleStore
from core.catalog import DEFAULT_CATALOG
from core.errors import ApiError, ConfigError, Forbidden, InternalError
from lab.sandbox.kube import client_for
from tests.helpers.certs import CertFactory, Issued, write_atomically
from tests.helpers.kube import RunningKube, running_kube
from tests.helpers.scripted import ScriptedSource
from tests.helpers.wait import eventually

CM_NS, CM_NAME = "kube-system", "extension-apiserver-authentication"
METRIC = "trino_queued_queries"
PATH = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/team-a/{METRIC}"
PROXY_CN = "front-proxy-client"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Pki:
    """Serving CA and certificate, two front-proxy CAs, and client certificates of every kind."""

    factory: CertFactory
    serving_ca: Issued
    serving: Issued
    proxy_ca: Issued
    other_ca: Issued
    clients: dict[str, Issued] = field(default_factory=dict)

    @classmethod
    def create(cls, directory: Path) -> Pki:
        f = CertFactory(directory)
        serving_ca = f.ca("serving-ca")
        proxy_ca = f.ca("front-proxy-ca")
        other_ca = f.ca("other-ca")
        pki = cls(f, serving_ca, f.serving(serving_ca), proxy_ca, other_ca)
        pki.clients = {
            "good": f.client(proxy_ca, "good", cn=PROXY_CN),
            "other-ca": f.client(other_ca, "other-ca", cn=PROXY_CN),
            "no-eku": f.client(proxy_ca, "no-eku", cn=PROXY_CN, usage="none"),
            "server-eku": f.client(proxy_ca, "server-eku", cn=PROXY_CN, usage="server"),
            "wrong-cn": f.client(proxy_ca, "wrong-cn", cn="someone-else"),
            "expired": f.client(proxy_ca, "expired", cn=PROXY_CN, expired=True),
        }
        # A front-proxy certificate issued by an intermediate CA of the bundle's root, with and without
        # the intermediate sent along (kube-apiserver's stack builds the chain from what is sent).
        intermediate = f.ca("front-proxy-intermediate", parent=proxy_ca)
        leaf = f.client(intermediate, "via-intermediate", cn=PROXY_CN)
        chain_file = directory / "via-intermediate-chain.crt"
        chain_file.write_bytes(leaf.cert_pem + intermediate.cert_pem)
        pki.clients["via-intermediate"] = dataclasses.replace(leaf, cert_file=chain_file)
        pki.clients["intermediate-no-chain"] = leaf
        return pki


def configmap(*cas: Issued, allowed: list[str] | None = None) -> dict[str, str]:
    """The ConfigMap as kube-apiserver writes it: PEM bundles and JSON-array strings."""
    return {
        "client-ca-file": "unused by the adapter",
        "requestheader-client-ca-file": "".join(ca.cert_pem.decode() for ca in cas),
        "requestheader-allowed-names": json.dumps([PROXY_CN] if allowed is None else allowed),
        "requestheader-username-headers": json.dumps(["X-Remote-User"]),
        "requestheader-group-headers": json.dumps(["X-Remote-Group"]),
        "requestheader-extra-headers-prefix": json.dumps(["X-Remote-Extra-"]),
    }


@web.middleware
async def _as_status(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": exc.code,
            "reason": exc.reason,
        }
        return web.json_response(body | {"message": exc.message}, status=exc.code)


def guarded_app(
    authn: FrontProxyAuthenticator, authz: SubjectAccessReviewAuthorizer, api: kubernetes.client.ApiClient
) -> web.Application:
    """Authenticate, authorize, and echo the identity so the header parsing is checked end to end."""

    async def handle(request: web.Request) -> web.Response:
        user = await authn.authenticate(request)
        await authz.authorize(user, request.match_info["metric"], request.match_info["namespace"])
        return web.json_response({"user": user.name, "groups": list(user.groups), "extra": dict(user.extra)})

    app = web.Application(middlewares=[_as_status])
    app.router.add_get("/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}", handle)
    return app


@dataclass
class World:
    pki: Pki
    kube: RunningKube
    provider: FrontProxyProvider
    tls: ServingTLS
    authz: SubjectAccessReviewAuthorizer
    clock: FakeClock
    server: Listening

    def client_context(self, client: str | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.pki.serving_ca.cert_file)
        if client is not None:
            cert = self.pki.clients[client]
            ctx.load_cert_chain(cert.cert_file, cert.key_file)
        return ctx

    async def call(
        self,
        client: str | None,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        path: str = PATH,
    ) -> tuple[int | str, Any]:
        """One request on a new connection: (status, body) or ("tls", error) when the TLS layer refuses."""
        connector = aiohttp.TCPConnector(ssl=self.client_context(client), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            return await request(session, self.server.url + path, headers)


async def request(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | list[tuple[str, str]] | None
) -> tuple[int | str, Any]:
    try:
        async with session.get(url, headers=CIMultiDict(headers or {})) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()
    except (aiohttp.ClientConnectionError, ssl.SSLError) as exc:
        return "tls", exc


@contextlib.asynccontextmanager
async def world(
    tmp_path: Path,
    app: Callable[
        [FrontProxyAuthenticator, SubjectAccessReviewAuthorizer, kubernetes.client.ApiClient], web.Application
    ],
    now: Callable[[], dt.datetime] | None = None,
) -> AsyncIterator[World]:
    pki = Pki.create(tmp_path / "pki")
    async with running_kube() as kube:
        kube.sandbox.set_configmap(CM_NS, CM_NAME, configmap(pki.proxy_ca))
        kube.sandbox.allow(user="hpa", resource=METRIC, namespace="team-a")
        provider = FrontProxyProvider.from_configmap(kube.api, CM_NS, CM_NAME, reload_seconds=0.05)
        await provider.start()
        clock = FakeClock()
        authz = SubjectAccessReviewAuthorizer(kube.api, ttl_seconds=10, clock=clock)
        tls = ServingTLS(pki.serving.cert_file, pki.serving.key_file, client_ca=provider.client_ca)
        server = await listen(
            app(FrontProxyAuthenticator(provider.current, **({"now": now} if now else {})), authz, kube.api),
            "127.0.0.1",
            0,
            ssl_context=tls.context(),
        )
        try:
            yield World(pki, kube, provider, tls, authz, clock, server)
        finally:
            await server.stop()
            await provider.stop()


@pytest.fixture
async def w(tmp_path: Path) -> AsyncIterator[World]:
    async with world(tmp_path, guarded_app) as built:
        yield built


def hpa_headers(user: str = "hpa", *groups: str) -> list[tuple[str, str]]:
    return [("X-Remote-User", user), *(("X-Remote-Group", g) for g in groups)]


MASTERS = [("X-Remote-User", "mallory"), ("X-Remote-Group", "system:masters")]


@pytest.mark.parametrize(
    ("client", "headers", "expected"),
    [
        # identity headers without a client certificate are not trusted, even for system:masters
        (None, MASTERS, 401),
        # no certificate, no headers
        (None, [], 401),
        # a verified front-proxy certificate and a user the SubjectAccessReview allows
        ("good", hpa_headers("hpa", "system:serviceaccounts"), 200),
        # a verified certificate and a user the SubjectAccessReview denies
        ("good", hpa_headers("alice", "devs"), 403),
        # system:masters is allowed without a review
        ("good", MASTERS, 200),
        # a verified certificate but no user header
        ("good", [("X-Remote-Group", "system:masters")], 401),
        # signed by a CA outside the bundle: OpenSSL refuses it during the handshake
        ("other-ca", MASTERS, "tls"),
        # clientAuth missing from an ExtendedKeyUsage: OpenSSL's ssl_client purpose check refuses it
        ("server-eku", MASTERS, "tls"),
        # no ExtendedKeyUsage at all: OpenSSL (like Go) accepts it, the front-proxy check does not
        ("no-eku", MASTERS, 401),
        # CN outside requestheader-allowed-names
        ("wrong-cn", MASTERS, 401),
        # expired: OpenSSL refuses it during the handshake
        ("expired", MASTERS, "tls"),
        # the probe: issued by an intermediate CA that the client sends along: 401 before, as upstream 200
        ("via-intermediate", hpa_headers("hpa"), 200),
        # the same leaf without its intermediate cannot be chained to the bundle
        ("intermediate-no-chain", MASTERS, "tls"),
    ],
)
async def test_front_proxy_authentication(
    w: World, client: str | None, headers: list[tuple[str, str]], expected: int | str
) -> None:
    before = len(w.kube.sandbox.reviews)
    status, body = await w.call(client, headers)
    assert status == expected, body
    if isinstance(status, int) and status != 200:
        assert body["kind"] == "Status"
        assert body["code"] == status
        assert body["reason"] == {401: "Unauthorized", 403: "Forbidden"}[status]
    if expected == 401 or headers == MASTERS:
        # Neither an unauthenticated request nor system:masters costs a SubjectAccessReview.
        assert len(w.kube.sandbox.reviews) == before


async def test_hundreds_of_groups_reach_the_review(w: World) -> None:
    # The probe: kube-apiserver sends one X-Remote-Group line per group, and more than ~128 header lines
    # were a plain-text 400, so a user in 130 groups could not read metrics.
    groups = [f"team-{i:03d}" for i in range(300)]
    status, body = await w.call("good", hpa_headers("hpa", *groups))
    assert status == 200, body
    assert body["groups"] == groups
    (review,) = w.kube.sandbox.reviews
    assert review["spec"]["groups"] == groups


@pytest.mark.parametrize(
    "shift",
    [
        # the certificate expired while its connection stayed open
        dt.timedelta(days=8),
        # not yet valid (a clock far behind)
        dt.timedelta(days=-1),
    ],
)
async def test_validity_is_checked_at_request_time(tmp_path: Path, shift: dt.timedelta) -> None:
    async with world(tmp_path, guarded_app, now=lambda: dt.datetime.now(dt.UTC) + shift) as shifted:
        status, body = await shifted.call("good", MASTERS)
        assert (status, body["reason"]) == (401, "Unauthorized")


async def test_identity_reaches_the_review(w: World) -> None:
    headers = [
        *hpa_headers("hpa", "system:serviceaccounts", "system:authenticated"),
        ("X-Remote-Extra-Scopes", "a"),
        ("X-Remote-Extra-Scopes", "b"),
        ("X-Remote-Extra-Acme.com%2Fproject", "p1"),
    ]
    status, body = await w.call("good", headers)
    assert status == 200
    assert body == {
        "user": "hpa",
        "groups": ["system:serviceaccounts", "system:authenticated"],
        "extra": {"scopes": ["a", "b"], "acme.com/project": ["p1"]},
    }
    (review,) = w.kube.sandbox.reviews
    assert review["spec"]["user"] == "hpa"
    assert review["spec"]["groups"] == ["system:serviceaccounts", "system:authenticated"]
    assert review["spec"]["extra"] == {"scopes": ["a", "b"], "acme.com/project": ["p1"]}
    assert review["spec"]["resourceAttributes"] == {
        "namespace": "team-a",
        "verb": "list",
        "group": "external.metrics.k8s.io",
        "version": "v1beta1",
        "resource": METRIC,
    }


async def test_second_identical_request_uses_the_cached_review(w: World) -> None:
    for _ in range(3):
        assert (await w.call("good", hpa_headers()))[0] == 200
        assert (await w.call("good", hpa_headers("alice")))[0] == 403
    assert [r["spec"]["user"] for r in w.kube.sandbox.reviews] == ["hpa", "alice"]


async def test_ca_rotation_through_the_configmap(w: World) -> None:
    f = w.pki.factory
    new_ca = f.ca("front-proxy-ca-2")
    w.pki.clients["new"] = f.client(new_ca, "new", cn=PROXY_CN)
    assert (await w.call("new", MASTERS))[0] == "tls"

    # kube-apiserver first publishes both CAs, then drops the old one.
    kept_alive = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=w.client_context("good")))
    try:
        assert (await request(kept_alive, w.server.url + PATH, MASTERS))[0] == 200
        w.kube.sandbox.set_configmap(CM_NS, CM_NAME, configmap(w.pki.proxy_ca, new_ca))
        await eventually(lambda: w.call("new", MASTERS), check=lambda r: r[0] == 200)
        assert (await w.call("good", MASTERS))[0] == 200

        w.kube.sandbox.set_configmap(CM_NS, CM_NAME, configmap(new_ca))
        await eventually(lambda: w.call("good", MASTERS), check=lambda r: r[0] == "tls")
        assert (await w.call("new", MASTERS))[0] == 200
        # A connection verified under the old bundle stays open, but the application checks the
        # certificate against the current bundle on every request.
        status, body = await request(kept_alive, w.server.url + PATH, MASTERS)
        assert status == 401, body
    finally:
        await kept_alive.close()


async def test_allowed_names_come_from_the_configmap(w: World) -> None:
    assert (await w.call("wrong-cn", MASTERS))[0] == 401
    # An empty list allows any CN signed by the bundle.
    w.kube.sandbox.set_configmap(CM_NS, CM_NAME, configmap(w.pki.proxy_ca, allowed=[]))
    await eventually(lambda: w.call("wrong-cn", MASTERS), check=lambda r: r[0] == 200)


async def test_a_broken_configmap_keeps_the_previous_trust(w: World) -> None:
    before = w.provider.current()
    broken = configmap(w.pki.proxy_ca) | {"requestheader-username-headers": "X-Remote-User"}
    w.kube.sandbox.set_configmap(CM_NS, CM_NAME, broken)
    assert not await w.provider.refresh()
    assert w.provider.current() is before
    assert (await w.call("good", MASTERS))[0] == 200


async def presented_serial(w: World) -> int:
    ctx = w.client_context(None)
    _, writer = await asyncio.open_connection("127.0.0.1", w.server.port, ssl=ctx)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return int(x509.load_der_x509_certificate(der).serial_number)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


async def test_serving_certificate_rotation(w: World) -> None:
    first = w.pki.serving.cert.serial_number
    assert await presented_serial(w) == first
    # cert-manager renews: same CA, new key and certificate, same file names.
    renewed = w.pki.factory.serving(w.pki.serving_ca, "renewed")
    write_atomically(w.pki.serving.key_file, renewed.key_pem)
    write_atomically(w.pki.serving.cert_file, renewed.cert_pem)
    assert await presented_serial(w) == renewed.cert.serial_number
    assert (await w.call("good", MASTERS))[0] == 200

    # A broken rotation keeps the last good pair.
    write_atomically(
        w.pki.serving.cert_file, b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"
    )
    assert await presented_serial(w) == renewed.cert.serial_number
    assert (await w.call("good", MASTERS))[0] == 200

    again = w.pki.factory.serving(w.pki.serving_ca, "again")
    write_atomically(w.pki.serving.key_file, again.key_pem)
    write_atomically(w.pki.serving.cert_file, again.cert_pem)
    assert await presented_serial(w) == again.cert.serial_number


async def test_handshake_without_sni_is_served(w: World) -> None:
    # kube-apiserver dials the Service IP and sends no SNI; the reload hook must still run.
    ctx = w.client_context("good")
    ctx.check_hostname = False
    reader, writer = await asyncio.open_connection("127.0.0.1", w.server.port, ssl=ctx, server_hostname="")
    try:
        writer.write(
            f"GET {PATH} HTTP/1.1\r\nHost: x\r\nX-Remote-User: a\r\n"
            "X-Remote-Group: system:masters\r\nConnection: close\r\n\r\n".encode()
        )
        head = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    assert head.split()[1] == b"200"


# ----- authorization cache, against the sandbox's SubjectAccessReview endpoint -----


async def test_review_cache_expiry_with_an_injected_clock() -> None:
    async with running_kube() as kube:
        clock = FakeClock()
        authz = SubjectAccessReviewAuthorizer(kube.api, ttl_seconds=10, clock=clock)
        alice = UserInfo("alice", ("devs",))
        with pytest.raises(Forbidden, match=r'User "alice" cannot list resource "trino_queued_queries"'):
            await authz.authorize(alice, METRIC, "team-a")
        kube.sandbox.allow(user="alice")
        clock.now += 9.9
        # the denial is still cached: no review, still forbidden
        with pytest.raises(Forbidden):
            await authz.authorize(alice, METRIC, "team-a")
        assert len(kube.sandbox.reviews) == 1
        clock.now += 0.2
        await authz.authorize(alice, METRIC, "team-a")
        assert len(kube.sandbox.reviews) == 2
        kube.sandbox.rules.clear()
        clock.now += 9.9
        # the allow is cached too
        await authz.authorize(alice, METRIC, "team-a")
        assert len(kube.sandbox.reviews) == 2
        clock.now += 0.2
        with pytest.raises(Forbidden):
            await authz.authorize(alice, METRIC, "team-a")
        assert len(kube.sandbox.reviews) == 3


@pytest.mark.parametrize(
    "other",
    [
        # another metric
        (UserInfo("alice", ("devs",)), "spark_pending_tasks", "team-a"),
        # another namespace
        (UserInfo("alice", ("devs",)), METRIC, "team-b"),
        # other groups
        (UserInfo("alice", ("admins",)), METRIC, "team-a"),
        # other extra attributes
        (UserInfo("alice", ("devs",), {"scopes": ("x",)}), METRIC, "team-a"),
        # another user
        (UserInfo("bob", ("devs",)), METRIC, "team-a"),
    ],
)
async def test_review_cache_key(other: tuple[UserInfo, str, str]) -> None:
    async with running_kube() as kube:
        kube.sandbox.allow()
        authz = SubjectAccessReviewAuthorizer(kube.api, ttl_seconds=10, clock=FakeClock())
        await authz.authorize(UserInfo("alice", ("devs",)), METRIC, "team-a")
        # group order does not matter
        await authz.authorize(UserInfo("alice", ("devs",)), METRIC, "team-a")
        assert len(kube.sandbox.reviews) == 1
        await authz.authorize(*other)
        assert len(kube.sandbox.reviews) == 2


async def test_review_cache_is_bounded_and_concurrent_reviews_are_shared() -> None:
    async with running_kube() as kube:
        kube.sandbox.allow()
        authz = SubjectAccessReviewAuthorizer(kube.api, ttl_seconds=10, clock=FakeClock(), max_entries=2)
        await asyncio.gather(*(authz.authorize(UserInfo("same"), METRIC, "a") for _ in range(8)))
        assert len(kube.sandbox.reviews) == 1
        for name in ("u1", "u2", "u3"):
            await authz.authorize(UserInfo(name), METRIC, "a")
        assert authz.cache_size() == 2
        # the oldest entry was evicted and costs a new review
        await authz.authorize(UserInfo("same"), METRIC, "a")
        assert len(kube.sandbox.reviews) == 5


async def test_a_failed_review_is_a_500_never_an_allow_and_is_not_cached() -> None:
    async with running_kube() as kube:
        kube.sandbox.allow()
        kube.sandbox.review_error = 503
        authz = SubjectAccessReviewAuthorizer(kube.api, ttl_seconds=10, clock=FakeClock())
        with pytest.raises(InternalError):
            await authz.authorize(UserInfo("alice"), METRIC, "a")
        kube.sandbox.review_error = None
        await authz.authorize(UserInfo("alice"), METRIC, "a")
        assert len(kube.sandbox.reviews) == 2


async def test_an_unreachable_api_fails_closed() -> None:
    async with running_kube() as kube:
        url = kube.url
    api = client_for(url)
    try:
        authz = SubjectAccessReviewAuthorizer(api, timeout_seconds=2)
        with pytest.raises(InternalError):
            await authz.authorize(UserInfo("alice"), METRIC, "a")
    finally:
        api.close()


# ----- pure parts: ConfigMap parsing and header reading -----


def test_parse_configmap_as_kube_apiserver_writes_it(tmp_path: Path) -> None:
    ca = CertFactory(tmp_path).ca("ca")
    data = configmap(ca, allowed=["front-proxy-client", "aggregator"])
    data["requestheader-group-headers"] = '["X-Remote-Group","X-Other-Group"]'
    cfg = parse_configmap(data)
    assert cfg.allowed_names == ("front-proxy-client", "aggregator")
    assert cfg.username_headers == ("X-Remote-User",)
    assert cfg.group_headers == ("X-Remote-Group", "X-Other-Group")
    assert cfg.extra_header_prefixes == ("X-Remote-Extra-",)
    assert [c.subject for c in cfg.ca_certificates] == [ca.cert.subject]
    # keys left out (or "null") mean empty lists, as upstream reads them
    sparse = parse_configmap(
        {"requestheader-client-ca-file": ca.cert_pem.decode(), "requestheader-allowed-names": "null"}
    )
    assert (sparse.allowed_names, sparse.username_headers, sparse.group_headers) == ((), (), ())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # aggregation not configured on the cluster
        ({"requestheader-client-ca-file": ""}, "requestheader-client-ca-file"),
        # not JSON
        ({"requestheader-allowed-names": "front-proxy-client"}, "requestheader-allowed-names"),
        # JSON, but not an array of strings
        ({"requestheader-group-headers": '{"a": 1}'}, "requestheader-group-headers"),
        ({"requestheader-username-headers": "[1]"}, "requestheader-username-headers"),
        # not a certificate
        (
            {"requestheader-client-ca-file": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"},
            "PEM",
        ),
    ],
)
def test_parse_configmap_errors(tmp_path: Path, change: dict[str, str], message: str) -> None:
    data = configmap(CertFactory(tmp_path).ca("ca")) | change
    with pytest.raises(ConfigError, match=message):
        parse_configmap(data)


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        # the first username header with a value wins; header names are case-insensitive
        ([("x-remote-user", "a"), ("X-Other-User", "b")], UserInfo("a")),
        ([("X-Remote-User", ""), ("X-Other-User", "b")], UserInfo("b")),
        # no user: not authenticated by headers
        ([("X-Remote-Group", "g")], None),
        # every value of every group header, as sent (no comma splitting), empty values dropped
        (
            [
                ("X-Remote-User", "u"),
                ("X-Remote-Group", "a,b"),
                ("X-Remote-Group", ""),
                ("X-Other-Group", "c"),
            ],
            UserInfo("u", ("a,b", "c")),
        ),
        # extra keys lower-cased then percent-decoded; values kept in order
        (
            [("X-Remote-User", "u"), ("X-Remote-Extra-Foo%2FBar", "1"), ("x-remote-extra-foo%2fbar", "2")],
            UserInfo("u", (), {"foo/bar": ("1", "2")}),
        ),
        # a malformed escape keeps the key as sent (lower-cased)
        ([("X-Remote-User", "u"), ("X-Remote-Extra-A%zZ", "v")], UserInfo("u", (), {"a%zz": ("v",)})),
        # the second prefix works too
        ([("X-Remote-User", "u"), ("X-Custom-Scopes", "s")], UserInfo("u", (), {"scopes": ("s",)})),
    ],
)
def test_user_from_headers(pairs: list[tuple[str, str]], expected: UserInfo | None, tmp_path: Path) -> None:
    cfg = FrontProxyConfig(
        client_ca=CertFactory(tmp_path).ca("ca").cert_pem,
        username_headers=("X-Remote-User", "X-Other-User"),
        group_headers=("X-Remote-Group", "X-Other-Group"),
        extra_header_prefixes=("X-Remote-Extra-", "X-Custom-"),
    )
    assert user_from_headers(headers(*pairs), cfg) == expected


# ----- configuration errors at start -----


def test_serving_tls_names_the_bad_file(tmp_path: Path) -> None:
    f = CertFactory(tmp_path)
    serving = f.serving(f.ca("ca"))
    other = f.serving(f.ca("ca2"), "other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not PEM")
    cases = [
        (ServingTLS(garbage, serving.key_file), str(garbage)),
        (ServingTLS(serving.cert_file, garbage), str(garbage)),
        (ServingTLS(tmp_path / "absent.crt", serving.key_file), "absent.crt"),
        (ServingTLS(serving.cert_file, other.key_file), "do not load together"),
    ]
    for tls, message in cases:
        with pytest.raises(ConfigError, match=message):
            tls.context()
    ctx = ServingTLS(serving.cert_file, serving.key_file).context()
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_OPTIONAL


async def test_file_provider_requires_a_readable_bundle(tmp_path: Path) -> None:
    provider = FrontProxyProvider.from_file(tmp_path / "missing.crt")
    with pytest.raises(ConfigError, match=r"missing\.crt"):
        await provider.start()
    ca = CertFactory(tmp_path).ca("ca")
    settings = AuthSettings(requestheader_client_ca_file=ca.cert_file, requestheader_allowed_names=["x"])
    provider = FrontProxyProvider.from_settings(settings, None)
    await provider.start()
    try:
        cfg = provider.current()
        assert cfg is not None
        assert cfg.allowed_names == ("x",)
        assert cfg.username_headers == ("X-Remote-User",)
        assert provider.client_ca() == ca.cert_pem
    finally:
        await provider.stop()


async def test_authorizer_from_settings() -> None:
    async with running_kube() as kube:
        authz = SubjectAccessReviewAuthorizer.from_settings(kube.api, AuthSettings(sar_cache_seconds=0))
        kube.sandbox.allow()
        # a zero TTL caches nothing
        await authz.authorize(UserInfo("a"), METRIC, "n")
        await authz.authorize(UserInfo("a"), METRIC, "n")
        assert len(kube.sandbox.reviews) == 2


def test_auth_settings() -> None:
    settings = AuthSettings()
    assert (settings.configmap_namespace, settings.configmap_name) == (CM_NS, CM_NAME)
    assert (settings.reload_seconds, settings.sar_cache_seconds) == (30, 10)
    with pytest.raises(ValidationError, match="only apply with requestheader_client_ca_file"):
        AuthSettings(requestheader_allowed_names=["front-proxy-client"])
    with pytest.raises(ValidationError):
        AuthSettings(requestheader_client_ca_file=Path("/ca"), requestheader_username_headers=[" "])
    with pytest.raises(ValidationError):
        AuthSettings(mode="anonymous")  # type: ignore[arg-type]


# ----- end to end through the adapter's own API server -----


def adapter_app(
    authn: FrontProxyAuthenticator, authz: SubjectAccessReviewAuthorizer, api: kubernetes.client.ApiClient
) -> web.Application:
    """The adapter's app wired as ``adapter.runtime`` wires it in front-proxy mode."""
    store = SampleStore(DEFAULT_CATALOG)
    metrics = SelfMetrics()
    metrics.watch_store(store)
    source = ScriptedSource("adhoc", [METRIC])
    source.answer = [Sample(METRIC, {}, 1.5)]
    poller = Poller([source], store, metrics)
    guard = DelegatedPathAuth(TokenReviewAuthenticator(api), authz, authn)
    app = create_app(
        AdapterParts(store=store, metrics=metrics, authenticator=authn, authorizer=authz, metrics_guard=guard)
    )

    async def polling(app: web.Application) -> AsyncIterator[None]:
        poller.start()
        yield
        await poller.stop()

    app.cleanup_ctx.append(polling)
    return app


PROMETHEUS_SA = "system:serviceaccount:monitoring:prometheus-k8s"


@pytest.mark.parametrize(
    ("client", "headers", "expected"),
    [
        # the probe: /metrics answered every cached value to anyone who reached the port
        (None, [], 401),
        (None, [("Authorization", "Bearer not-a-token")], 401),
        # a token TokenReview knows, of a user RBAC does not grant the path to
        (None, [("Authorization", "Bearer other-token")], 403),
        # Prometheus's service account, granted nonResourceURLs /metrics get
        (None, [("Authorization", "Bearer prometheus-token")], 200),
        (None, [("Authorization", "bearer prometheus-token")], 200),
        # not the bearer scheme
        (None, [("Authorization", "prometheus-token")], 401),
        (None, [("Authorization", "Basic cHJvbTpwcm9t")], 401),
        # spoofed identity headers without a front-proxy certificate
        (None, [("X-Remote-User", PROMETHEUS_SA), ("X-Remote-Group", "system:masters")], 401),
        # through kube-apiserver's front proxy, as a user granted the path, or as system:masters
        ("good", [("X-Remote-User", PROMETHEUS_SA)], 200),
        ("good", hpa_headers("hpa"), 403),
        ("good", MASTERS, 200),
    ],
)
async def test_own_metrics_need_delegated_authentication_and_authorization(
    tmp_path: Path, client: str | None, headers: list[tuple[str, str]], expected: int
) -> None:
    async with world(tmp_path, adapter_app) as e2e:
        e2e.kube.sandbox.tokens["prometheus-token"] = (PROMETHEUS_SA, ("system:serviceaccounts",))
        e2e.kube.sandbox.tokens["other-token"] = ("system:serviceaccount:default:default", ())
        e2e.kube.sandbox.allow(user=PROMETHEUS_SA, path="/metrics", verb="get")
        status, body = await e2e.call(client, headers, "/metrics")
        assert status == expected, body
        if status == 200:
            assert "queuescale_adapter_request_duration_seconds" in body
        else:
            assert body["kind"] == "Status"
        # health stays open
        for path in ("/livez", "/healthz", "/readyz"):
            assert (await e2e.call(None, [], path))[0] in (200, 503)
        if expected == 403:
            (review,) = [r for r in e2e.kube.sandbox.reviews if "nonResourceAttributes" in r["spec"]]
            assert review["spec"]["nonResourceAttributes"] == {"path": "/metrics", "verb": "get"}


async def test_end_to_end_through_the_adapter(tmp_path: Path) -> None:
    async with world(tmp_path, adapter_app) as e2e:
        # the probes need no authentication
        assert (await e2e.call(None, [], "/healthz"))[0] == 200
        status, body = await e2e.call(None, MASTERS)
        assert (status, body["kind"], body["reason"]) == (401, "Status", "Unauthorized")
        status, body = await e2e.call("good", hpa_headers("alice"))
        assert (status, body["reason"]) == (403, "Forbidden")
        assert 'cannot list resource "trino_queued_queries"' in body["message"]
        # 503 until the first poll lands
        status, body = await eventually(
            lambda: e2e.call("good", hpa_headers("hpa")), check=lambda r: r[0] != 503
        )
        assert status == 200, body
        assert body["items"][0]["value"] == "1500m"
        # discovery is authenticated as well
        assert (await e2e.call(None, [], "/apis"))[0] == 401
        assert (await e2e.call("good", MASTERS, "/apis"))[0] == 200
        e2e.kube.sandbox.review_error = 500
        status, body = await e2e.call("good", hpa_headers("carol"))
        assert (status, body["reason"]) == (500, "InternalError")
        assert (await e2e.call("other-ca", MASTERS))[0] == "tls"
