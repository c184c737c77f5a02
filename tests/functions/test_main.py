"""Every catalog entry point exists in main.py, the module Cloud Functions and the local runner load."""

import json
from pathlib import Path

import main

CATALOG = json.loads((Path(__file__).resolve().parents[2] / "components/data/catalog.json").read_text())


def test_every_catalog_entry_point_is_exported_by_main() -> None:
    entry_points = {spec["entry_point"] for spec in CATALOG["functions"]}
    missing = {name for name in entry_points if not callable(getattr(main, name, None))}
    assert not missing, f"catalog entry points missing from functions_src/main.py: {sorted(missing)}"
    assert set(main.__all__) == entry_points
