"""The data-bearing types file: every entry a type token with what its deletion loses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.data_bearing import DATA_BEARING_PATH, data_bearing, data_bearing_types


def test_every_type_says_what_its_deletion_loses() -> None:
    types = data_bearing()
    assert "gcp:firestore/database:Database" in types and "gcp:secretmanager/secret:Secret" in types
    assert all(loses.strip() for loses in types.values())
    assert data_bearing_types() == frozenset(json.loads(DATA_BEARING_PATH.read_text())["types"])


@pytest.mark.parametrize(
    "types",
    [{}, {"Database": "documents"}, {"gcp:firestore/database:Database": " "}, ["gcp:storage/bucket:Bucket"]],
)
def test_a_malformed_file_names_the_entry(tmp_path: Path, types: object) -> None:
    path = tmp_path / "data_bearing.json"
    path.write_text(json.dumps({"types": types}))
    with pytest.raises(ValueError, match="data_bearing.json"):
        data_bearing(path)
