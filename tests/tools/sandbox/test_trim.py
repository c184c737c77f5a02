"""The script that cuts a provider's full OpenAPI document down to the sandbox's subset, on a small
fixture; and the committed subsets are valid OpenAPI documents."""

import json
from pathlib import Path

import pytest
from openapi_core import OpenAPI

from tools.cli import main
from tools.exit_codes import ExitCode
from tools.sandbox.specs import trim as trim_module
from tools.sandbox.specs.trim import TrimError, trim

SPECS = Path(trim_module.__file__).resolve().parent


def full_document() -> dict:
    return {
        "openapi": "3.0.0",
        "info": {"title": "Fixture", "version": "1", "description": "kept: not inside a schema"},
        "servers": [{"url": "https://api.example.com"}],
        "paths": {
            "/v1/things": {
                "post": {
                    "summary": "Create a thing",
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/thing_params"}}
                        }
                    },
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/thing"}}
                            },
                        }
                    },
                },
                "get": {"responses": {"200": {"description": "OK"}}},
            },
            "/v1/other": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/unused"}}
                            },
                        }
                    }
                }
            },
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "thing_params": {
                    "type": "object",
                    "description": "prose",
                    "properties": {"name": {"type": "string", "description": "prose"}},
                },
                "thing": {
                    "type": "object",
                    "properties": {
                        # A property named `description` is data, not prose.
                        "description": {"type": "string", "nullable": True},
                        "owner": {
                            "anyOf": [
                                {"type": "string", "maxLength": 5000},
                                {"$ref": "#/components/schemas/owner"},
                            ],
                            "x-expansionResources": {"oneOf": [{"$ref": "#/components/schemas/owner"}]},
                        },
                        "part": {"$ref": "#/components/schemas/part"},
                    },
                },
                "owner": {"type": "object", "properties": {"id": {"type": "string"}}},
                "part": {"type": "object", "properties": {"sub": {"$ref": "#/components/schemas/sub_part"}}},
                "sub_part": {"type": "object"},
                "unused": {"type": "object"},
            },
        },
    }


def test_keeps_the_operations_and_every_component_they_reach() -> None:
    subset = trim(full_document(), [("post", "/v1/things")])
    assert list(subset["paths"]) == ["/v1/things"]
    assert list(subset["paths"]["/v1/things"]) == ["post"]
    assert set(subset["components"]["schemas"]) == {"thing_params", "thing", "part", "sub_part"}
    assert subset["components"]["securitySchemes"] == full_document()["components"]["securitySchemes"]
    assert subset["info"]["description"] == "kept: not inside a schema"
    assert subset["paths"]["/v1/things"]["post"]["summary"] == "Create a thing"


def test_drops_prose_and_expansions_inside_schemas_only() -> None:
    schemas = trim(full_document(), [("post", "/v1/things")])["components"]["schemas"]
    assert "description" not in schemas["thing_params"]
    assert schemas["thing_params"]["properties"]["name"] == {"type": "string"}
    assert schemas["thing"]["properties"]["description"] == {"type": "string", "nullable": True}
    assert schemas["thing"]["properties"]["owner"] == {"anyOf": [{"type": "string", "maxLength": 5000}]}
    assert "owner" not in schemas


def test_an_operation_missing_from_the_document_is_an_error() -> None:
    with pytest.raises(TrimError, match="DELETE /v1/things"):
        trim(full_document(), [("delete", "/v1/things")])


def test_a_dangling_reference_is_an_error() -> None:
    document = full_document()
    del document["components"]["schemas"]["sub_part"]
    with pytest.raises(TrimError, match="dangling"):
        trim(document, [("post", "/v1/things")])


def test_command_line_writes_a_valid_subset(tmp_path: Path) -> None:
    full, out = tmp_path / "full.json", tmp_path / "out.json"
    full.write_text(json.dumps(full_document()))
    assert trim_module.run(full, out, ["post /v1/things"]) == 0
    OpenAPI.from_dict(json.loads(out.read_text()))  # raises if the subset is not valid OpenAPI
    assert trim_module.run(full, out, ["put /v1/nothing"]) == 2
    assert trim_module.run(full, out, ["nothing"]) == 2


@pytest.mark.parametrize("name", sorted(path.name for path in SPECS.glob("*.json")
                                         if not path.name.endswith(".revisions.json")))
def test_committed_subsets_are_valid_openapi(name: str) -> None:
    OpenAPI.from_dict(json.loads((SPECS / name).read_text()))


def test_expandable_fields_keep_the_object_forms_named() -> None:
    schemas = trim(full_document(), [("post", "/v1/things")], frozenset({"owner"}))["components"]["schemas"]
    assert schemas["thing"]["properties"]["owner"] == {
        "anyOf": [{"type": "string", "maxLength": 5000}, {"$ref": "#/components/schemas/owner"}]}
    assert "owner" in schemas


def test_the_command_keeps_the_expanded_forms_named_with_expandable(tmp_path: Path) -> None:
    full, out = tmp_path / "full.json", tmp_path / "out.json"
    full.write_text(json.dumps(full_document()))
    code = main(["trim-spec", str(full), str(out), "--keep", "post /v1/things", "--expandable", "owner"])
    assert code == ExitCode.OK
    assert "owner" in json.loads(out.read_text())["components"]["schemas"]
