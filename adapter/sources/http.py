"""HTTP access to a backend: TLS options and credentials read from mounted Secret files."""

from __future__ import annotations

import base64
import json
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapter.errors import SourceError


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


async def get_json(session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> Any:
    """GET a JSON document; every failure becomes a SourceError naming the URL."""
    text = await get_text(session, url, headers)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SourceError(f"{url} answered something that is not JSON") from exc


async def get_text(session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> str:
    try:
        async with session.get(url, headers=headers) as resp:
            body = await resp.text(errors="replace")
            if resp.status != 200:
                raise SourceError(f"{url} answered HTTP {resp.status}")
            return body
    except TimeoutError as exc:
        raise SourceError(f"{url} timed out") from exc
    except aiohttp.ClientError as exc:
        raise SourceError(f"{url} failed: {exc.__class__.__name__}: {exc}") from exc
