"""The repository secret scan fails on a credential it has not seen and never on a moved fake value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.offline.policy import secret_scan as policy_secret_scan

# Split so this file itself holds no credential-shaped literal.
STRIPE_LIVE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dcNOTREAL"  # pragma: allowlist secret


@pytest.fixture()
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    document = json.loads(policy_secret_scan.BASELINE.read_text())
    document["results"] = {}
    (tmp_path / ".secrets.baseline").write_text(json.dumps(document))
    (tmp_path / "clean.py").write_text('URL = "https://example.com"\n')
    return tmp_path


def test_a_new_credential_fails_the_scan(repo: Path) -> None:
    (repo / "client.py").write_text(f'STRIPE_KEY = "{STRIPE_LIVE}"\n')
    new, unaudited = policy_secret_scan.scan(["clean.py", "client.py"], repo / ".secrets.baseline", repo)
    assert new and all(line.startswith("client.py:1: ") for line in new)
    assert any("Stripe" in line for line in new)
    assert unaudited == []


def test_an_audited_fake_value_passes_wherever_its_line_moves(repo: Path) -> None:
    (repo / "client.py").write_text(f'STRIPE_KEY = "{STRIPE_LIVE}"\n')
    baseline = repo / ".secrets.baseline"
    document = json.loads(baseline.read_text())
    found = policy_secret_scan.SecretsCollection(root=str(repo))
    found.scan_files("client.py", num_processors=1)
    document["results"] = {k: [{**e, "is_secret": False} for e in v] for k, v in found.json().items()}
    baseline.write_text(json.dumps(document))
    (repo / "client.py").write_text(f'\n\n# moved down\nSTRIPE_KEY = "{STRIPE_LIVE}"\n')
    assert policy_secret_scan.scan(["client.py"], baseline, repo) == ([], [])
    before = baseline.read_text()
    assert policy_secret_scan.scan(["client.py"], baseline, repo)[0] == []
    assert baseline.read_text() == before  # never rewritten


def test_an_unaudited_baseline_entry_fails(repo: Path) -> None:
    (repo / "client.py").write_text(f'STRIPE_KEY = "{STRIPE_LIVE}"\n')
    baseline = repo / ".secrets.baseline"
    document = json.loads(baseline.read_text())
    found = policy_secret_scan.SecretsCollection(root=str(repo))
    found.scan_files("client.py", num_processors=1)
    document["results"] = found.json()
    baseline.write_text(json.dumps(document))
    new, unaudited = policy_secret_scan.scan(["client.py"], baseline, repo)
    assert new == [] and unaudited and "not audited as a fake value" in unaudited[0]


def test_the_committed_baseline_is_fully_audited() -> None:
    document = json.loads(policy_secret_scan.BASELINE.read_text())
    assert document["results"], "the fake values used by tests and the sandbox are listed"
    assert all(e["is_secret"] is False for entries in document["results"].values() for e in entries)
