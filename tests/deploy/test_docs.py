"""Generated documents stay in step with the code they describe."""

from __future__ import annotations

from pathlib import Path

from adapter.settings import Settings, load_settings
from adapter.settings_doc import fields, reference
from core.catalog import markdown_table

ROOT = Path(__file__).resolve().parents[2]


def test_readme_catalog_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- catalog:start -->\n") + len("<!-- catalog:start -->\n")
    end = readme.index("<!-- catalog:end -->")
    assert readme[start:end] == markdown_table(), "run: python -m core.catalog --markdown, paste into README"


def test_configuration_reference_is_current() -> None:
    assert (ROOT / "docs/configuration.md").read_text() == reference(), (
        "run: python -m adapter.settings_doc > docs/configuration.md"
    )


def test_every_setting_is_documented() -> None:
    undocumented = [path for path, info in fields(Settings, "") if not (info.description or "").strip()]
    assert undocumented == []


def test_readme_adapter_configuration_example_loads(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```yaml\nserver:") + len("```yaml\n")
    example = readme[start : readme.index("```", start)]
    config = tmp_path / "adapter.yaml"
    config.write_text(example)
    settings = load_settings(config)
    assert [s.name for s in settings.trino] == ["adhoc"]
    assert [q.metric for q in settings.prometheus[0].queries] == ["trino_gateway_backlog"]
