"""HTTP access to a backend: TLS options and credentials read from mounted Secret files."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import SourceError

T = TypeVar("T")


class HttpEndpoint(BaseModel):
    """How to reach one HTTP(S) backend."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://", description="Base URL, e.g. http://trino:8080.")
    ca_file: Path | None = Field(None, description="PEM bundle that signs the backend's serving cert.")
    insecure_skip_tls_verify: bool = Field(False, description="Skip TLS verification (testing only).")
    client_cert_file: Path | None = Field(None, description="PEM client certificate for mutual TLS.")
    client_key_file: Path | None = Field(None, description="PEM key of the client certificate.")
    username: str | None = Field(None, description="Basic-auth user name.")
    password_file: Path | None = Field(None, description="File holding the basic-auth password.")
    bearer_token_file: Path | None = Field(None, description="File holding a bearer token.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")

    @model_validator(mode="after")
    def _one_credential(self) -> HttpEndpoint:
        if self.password_file and self.bearer_token_file:
            raise ValueError("set either password_file or bearer_token_file, not both")
        if (self.client_cert_file is None) != (self.client_key_file is None):
            raise ValueError("client_cert_file and client_key_file go together")
        return self

    def base(self) -> str:
        return self.url.rstrip("/")

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.url.startswith("https://"):
            return True
        if self.insecure_skip_tls_verify:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.client_cert_file and self.client_key_file:
            ctx.load_cert_chain(self.client_cert_file, self.client_key_file)
        return ctx

    def auth_headers(self) -> dict[str, str]:
        """Read credentials on every call so a rotated Secret takes effect without a restart."""
        headers = dict(self.headers)
        if self.bearer_token_file is not None:
            headers["Authorization"] = f"Bearer {_read_secret(self.bearer_token_file)}"
        elif self.password_file is not None:
            pair = f"{self.username or ''}:{_read_secret(self.password_file)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return headers


def _read_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise SourceError(f"cannot read credential file {path}: {exc.strerror}") from exc


def new_session(endpoint: HttpEndpoint, timeout_seconds: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=endpoint.ssl_context(), limit=16)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_seconds))


# Answers larger than this are decoded and parsed on a worker thread, so a big one does not stall the
# other sources' polls on the shared event loop.
OFF_LOOP_BYTES = 256 * 1024


async def read_capped(response: aiohttp.ClientResponse, who: str, limit: int) -> bytearray:
    """The body of ``response``, read as it streams in and abandoned past ``limit`` bytes.

    ``who`` names the backend in the error (a URL, or a name when the URL may carry credentials). One
    growing buffer, never joined: a body at the limit costs the limit once, not twice."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise SourceError(f"{who} answered {declared} bytes, more than max_response_bytes ({limit})")
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        if len(body) + len(chunk) > limit:
            raise SourceError(f"{who} answered more than max_response_bytes ({limit} bytes)")
        body += chunk
    return body


async def off_loop(size: int, work: Callable[[], T]) -> T:
    """Run CPU work on a worker thread when its input is large, else right here."""
    if size > OFF_LOOP_BYTES:
        return await asyncio.to_thread(work)
    return work()


def decode(body: bytes | bytearray) -> str:
    return body.decode("utf-8", errors="replace")


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    limit: int,
    headers: dict[str, str] | None = None,
    *,
    allow_redirects: bool = True,
) -> tuple[int, bytearray]:
    """GET ``url``: its status and body (at most ``limit`` bytes); every failure is a SourceError."""
    try:
        async with session.get(url, headers=headers, allow_redirects=allow_redirects) as resp:
            return resp.status, await read_capped(resp, url, limit)
    except TimeoutError as exc:
        raise SourceError(f"{url} timed out") from exc
    except aiohttp.ClientError as exc:
        raise SourceError(f"{url} failed: {exc.__class__.__name__}: {exc}") from exc


async def get_json(
    session: aiohttp.ClientSession, url: str, limit: int, headers: dict[str, str] | None = None
) -> Any:
    """GET a JSON document; every failure becomes a SourceError naming the URL."""
    status, body = await fetch(session, url, limit, headers)
    if status != 200:
        raise SourceError(f"{url} answered HTTP {status}")
    return await off_loop(len(body), lambda: parse_json(url, body))


def parse_json(url: str, body: bytes | bytearray) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise SourceError(f"{url} answered something that is not JSON") from exc
