"""The contract extractor reads Terraform provider Go schemas (fixtures here: CI cannot reach upstream)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tools.offline.contracts import extract, load_contracts
from tools.offline.contracts.extract import camel, extract_resource, mask_strings, pulumi_path, run

FIXTURES = Path(__file__).parent / "fixtures"


def rules_of(name: str) -> list[dict[str, object]]:
    return [
        {k: v for k, v in r.items() if k != "line"} for r in extract_resource((FIXTURES / name).read_text())
    ]


def test_names_become_pulumi_input_paths() -> None:
    assert camel("service_config") == "serviceConfig"
    assert pulumi_path("config.0.rewrites.0.glob") == "config.rewrites.glob"


def test_string_literals_and_comments_are_not_code() -> None:
    masked = mask_strings('x := `a { b }` // c {\ny := "d { e"\n')
    assert "{" not in masked and len(masked) == len('x := `a { b }` // c {\ny := "d { e"\n')


def test_plugin_sdk_v2_schema() -> None:
    rules = rules_of("sdkv2_resource.go")
    assert {"kind": "immutable", "path": "name"} in rules
    assert {"kind": "immutable", "path": "route.regex"} in rules
    assert {"kind": "length", "path": "name", "min": 6, "max": 30} in rules
    assert {
        "kind": "format",
        "path": "name",
        "format": "RFC 1035 name",
        "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$",
    } in rules
    assert {
        "kind": "enum",
        "path": "ingressSettings",
        "values": ["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", ""],
        "caseSensitive": True,
    } in rules
    assert {"kind": "range", "path": "maxAttempts", "min": 5, "max": 100} in rules
    assert {"kind": "length", "path": "label", "min": 1, "max": 63} in rules
    assert {"kind": "format", "path": "route.regex", "pattern": r"^\^.*$"} in rules
    # Both fields declare the same group: it is recorded once.
    assert rules.count({"kind": "exactly_one_of", "fields": ["route.glob", "route.regex"]}) == 1
    assert {
        "kind": "conflicts_with",
        "path": "route.pushEndpoint",
        "others": ["route.bigqueryTable"],
    } in rules
    assert {"kind": "required_with", "path": "route.pushEndpoint", "others": ["route.audience"]} in rules
    # A nested schema defined in a helper function (`Elem: helper()`) is read too.
    assert {
        "kind": "enum",
        "path": "filters.operator",
        "values": ["match-path-pattern"],
        "caseSensitive": True,
    } in rules
    # Descriptions, the import-identity schema and non-schema maps yield nothing.
    paths = {str(r.get("path")) for r in rules}
    assert not paths & {"identityOnly", "notAFunction", "notAField"}
    assert sum(1 for r in rules if r == {"kind": "immutable", "path": "name"}) == 1


def test_plugin_framework_schema() -> None:
    rules = rules_of("framework_schema.go")
    assert {"kind": "immutable", "path": "zoneId"} in rules
    assert {"kind": "exactly_one_of", "fields": ["accountId", "zoneId"]} in rules
    assert {"kind": "enum", "path": "type", "values": ["A", "CNAME"], "caseSensitive": False} in rules
    assert {"kind": "range", "path": "ttl", "min": 30, "max": 86400} in rules
    # Relative paths name a sibling in the same list element.
    assert {"kind": "conflicts_with", "path": "rules.content", "others": ["rules.assetName"]} in rules
    assert {"kind": "required_with", "path": "rules.ref", "others": ["rules.content"]} in rules
    assert {"kind": "range", "path": "rules.statusCode", "min": 400, "max": 499} in rules
    assert {"kind": "format", "path": "rules.ref", "pattern": "^[a-z_]+$"} in rules


@pytest.fixture
def fixture_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    providers = {
        "providers": {
            "example": {
                "repository": "example/terraform-provider-example",
                "resources": {
                    "example:index/widget:Widget": {
                        "terraform": "example_widget",
                        "sources": [{"file": "sdkv2_resource.go"}],
                    },
                    "example:index/record:Record": {
                        "terraform": "example_record",
                        "sources": [{"file": "framework_schema.go"}],
                    },
                },
            }
        }
    }
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(providers))
    monkeypatch.setattr(extract, "PROVIDERS_FILE", path)
    return tmp_path


def test_command_writes_the_data_with_the_upstream_commit(fixture_provider: Path) -> None:
    out = fixture_provider / "example.json"
    status = run("example", FIXTURES, commit="0123abcd" * 5, out=out)
    assert status == 0
    data = json.loads(out.read_text())
    assert data["commit"] == "0123abcd" * 5 and data["repository"] == "example/terraform-provider-example"
    widget = data["resources"]["example:index/widget:Widget"]
    assert widget["terraform"] == "example_widget"
    assert all(
        rule["file"] == "sdkv2_resource.go" and isinstance(rule["line"], int) for rule in widget["rules"]
    )
    # The loader turns each rule into a citation: repository, file, line and commit.
    (extracted := fixture_provider / "contracts" / "extracted").mkdir(parents=True)
    (extracted / "example.json").write_text(out.read_text())
    (fixture_provider / "contracts" / "rules.yaml").write_text("inputs: []\n")
    contracts = load_contracts.__wrapped__(fixture_provider / "contracts")
    immutable = [r for r in contracts.for_type("example:index/widget:Widget") if r.kind == "immutable"]
    assert immutable[0].source == "example/terraform-provider-example sdkv2_resource.go#L24@0123abcd0123"
    assert immutable[0].stage == "preview"


def test_a_missing_source_file_writes_nothing(
    fixture_provider: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = fixture_provider / "example.json"
    status = run("example", fixture_provider, commit="abc", out=out)
    assert status == 2
    assert "framework_schema.go not found" in capsys.readouterr().err
    assert not out.exists()


def test_committed_data_names_its_upstream_commit() -> None:
    for name in ("google-beta", "cloudflare"):
        data = json.loads((extract.EXTRACTED_DIR / f"{name}.json").read_text())
        assert len(data["commit"]) == 40
        providers = yaml.safe_load(extract.PROVIDERS_FILE.read_text())["providers"]
        assert set(data["resources"]) == set(providers[name]["resources"])
