"""One settings object: a YAML file, environment variables on top, flags on top of both."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.settings import load_settings
from core.errors import ConfigError

FILE = """\
server:
  listen: 127.0.0.1:9000
  insecure_http: true
auth:
  mode: none
trino:
  - name: adhoc
    endpoint:
      url: http://trino:8080
    resource_groups: [global]
"""


def write(tmp_path: Path, text: str = FILE) -> Path:
    path = tmp_path / "adapter.yaml"
    path.write_text(text)
    return path


def test_file_values_and_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path))
    assert settings.server.listen == "127.0.0.1:9000"
    [trino] = settings.trino
    assert (trino.name, trino.endpoint.url, trino.resource_groups) == (
        "adhoc",
        "http://trino:8080",
        ["global"],
    )
    assert trino.poll_interval_seconds == 2.0
    assert trino.max_age == 10.0


def test_environment_beats_the_file_and_flags_beat_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUEUESCALE_SERVER__LISTEN", "127.0.0.1:9100")
    monkeypatch.setenv("QUEUESCALE_LOG_LEVEL", "debug")
    settings = load_settings(write(tmp_path))
    assert settings.server.listen == "127.0.0.1:9100"
    assert settings.server.insecure_http is True  # the rest of the file's section survives
    assert settings.log_level == "debug"
    flagged = load_settings(write(tmp_path), {"server": {"listen": "127.0.0.1:9200"}})
    assert flagged.server.listen == "127.0.0.1:9200"


def test_bad_environment_value_names_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUESCALE_LOG_LEVEL", "loud")
    with pytest.raises(ConfigError, match="log_level: Input should be"):
        load_settings(write(tmp_path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # a typo in a nested key: file, line and the full field path
        (
            FILE.replace("resource_groups", "resource_group"),
            "adapter.yaml:10: trino[0].resource_group: unknown field",
        ),
        # two sources may not share a name: it is the label that tells them apart
        (FILE + "spark:\n  - name: adhoc\n    driver_urls: [{url: 'http://d:4040'}]\n", "repeated: adhoc"),
        # nothing to serve is a mistake, not an empty discovery document
        ("server: {listen: '127.0.0.1:1', insecure_http: true}\nauth: {mode: none}\n", "at least one source"),
        # TLS is the default and needs its files
        (FILE.replace("  insecure_http: true\n", "").replace("auth:\n  mode: none\n", ""), "tls_cert_file"),
        # a freshness bound shorter than the poll interval could never be met
        (
            FILE + "    poll_interval_seconds: 5\n    max_age_seconds: 1\n",
            "max_age_seconds must not be shorter",
        ),
        # duplicate keys are an error, not a silent override
        (FILE + "auth:\n  mode: none\n", "duplicate key 'auth'"),
        # the file must hold a mapping
        ("- just\n- a list\n", "expected one YAML document holding a mapping"),
    ],
)
def test_bad_files_are_explained(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert message in str(caught.value).replace(str(tmp_path) + "/", "")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml")
