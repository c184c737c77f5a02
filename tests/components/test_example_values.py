"""The template's example values are found by value: a founder's own values never warn, with or without
the `# REPLACE` comments, and the committed list stays current with the stack files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from components.example_values import EXAMPLE_VALUES, example_text, texts
from components.stack_config import StackConfig, read_stack_file
from tests.founders import REPO, STACKS, Founder, founders

# Names no founder can own: RFC 2606 reserves example.com/.net/.org and the .example and .test TLDs.
_RESERVED = re.compile(r"(?:^|[.@/])example\.(?:com|net|org)\b|\.(?:example|test)\b")
_TEMPLATE_NAMES = re.compile(r"launch-ready|ReplaceWith|Example\w*Price")


def _stack_files() -> list[Path]:
    return sorted(REPO.glob("Pulumi.*.yaml"))


@pytest.mark.parametrize("founder", founders(), ids=lambda founder: founder.name)
def test_a_founders_own_values_never_warn(founder: Founder, tmp_path: Path) -> None:
    directory = founder.write(tmp_path)
    for stack in STACKS:
        stack_file = read_stack_file(directory / f"Pulumi.{stack}.yaml")
        assert stack_file.warnings() == []


def test_each_example_value_left_warns_once_with_its_line(tmp_path: Path) -> None:
    (founder,) = [f for f in founders() if f.name == "myapp-hand-written"]
    example = EXAMPLE_VALUES["launchready:projectId"][0]
    text = founder.texts["staging"].replace(
        "launchready:projectId: myapp-staging-4821", f"launchready:projectId: {example}"
    )
    path = tmp_path / "Pulumi.staging.yaml"
    path.write_text(re.sub(r" # REPLACE.*$", "", text, flags=re.MULTILINE), encoding="utf-8")
    (warning,) = read_stack_file(path).warnings()
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith("  launchready:projectId:"))
    assert warning.startswith(f"warning: Pulumi.staging.yaml:{line}: launchready:projectId still holds")
    assert f"{example!r}" in warning


def test_an_example_entry_in_a_list_is_found() -> None:
    example = EXAMPLE_VALUES["launchready:authorizedDomains"][0]
    assert example_text("launchready:authorizedDomains", ["app.myapp.io", example]) == example
    assert example_text("launchready:authorizedDomains", ["app.myapp.io", "localhost"]) is None


def test_the_list_names_known_settings_only() -> None:
    aliases = {str(field.alias) for field in StackConfig.model_fields.values()}
    assert set(EXAMPLE_VALUES) <= aliases


@pytest.mark.parametrize("path", _stack_files(), ids=lambda path: path.name)
def test_the_list_stays_current_with_the_stack_files(path: Path) -> None:
    # Every value under a reserved example name or the template's own names is listed for its key, and
    # every key a stack file marks `# REPLACE` is a key the list covers.
    text = path.read_text(encoding="utf-8")
    config = yaml.safe_load(text)["config"]
    unlisted = [
        (key, value)
        for key, raw in config.items()
        for value in texts(raw)
        if (_RESERVED.search(value) or _TEMPLATE_NAMES.search(value)) and example_text(key, value) is None
    ]
    assert unlisted == [], "add these to components/data/example_values.json"
    marked = {m["key"] for m in re.finditer(r"^  (?P<key>\w+:\w+):.*# REPLACE", text, re.MULTILINE)}
    assert marked <= set(EXAMPLE_VALUES)


def test_a_cloned_stack_with_the_price_placeholder_is_not_configured_yet() -> None:
    from tools.offline.clone.derive import PRICE_PLACEHOLDER

    assert example_text("launchready:stripePriceId", PRICE_PLACEHOLDER) == PRICE_PLACEHOLDER
