"""`make secret-scan`: no credential in any tracked file beyond the audited fake values of .secrets.baseline.

It never rewrites the baseline, and an unaudited baseline entry fails too (docs/tools.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from detect_secrets.core import baseline as baseline_file
from detect_secrets.core.secrets_collection import SecretsCollection

from tools.exit_codes import ExitCode
from tools.project_files import ROOT

BASELINE = ROOT / ".secrets.baseline"


def tracked_files(root: Path = ROOT) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True)
    return [name for name in listed.stdout.decode().split("\0") if name and (root / name).is_file()]


def scan(files: list[str], baseline_path: Path, root: Path = ROOT) -> tuple[list[str], list[str]]:
    """(new findings, unaudited baseline entries) as printable lines."""
    document = baseline_file.load_from_file(str(baseline_path))
    known = baseline_file.load(document, str(baseline_path))  # also applies its plugins and filters
    allowed = {(name, secret.secret_hash) for name, secret in known}
    unaudited = [
        f"{name}:{entry['line_number']}: {entry['type']} is in the baseline but not audited as a fake value"
        for name, entries in document["results"].items()
        for entry in entries
        if entry.get("is_secret") is not False
    ]
    found = SecretsCollection(root=str(root))
    # The baseline holds hashes of the values, not the values: scanning it finds only its own hashes.
    found.scan_files(*(f for f in files if (root / f).resolve() != baseline_path.resolve()), num_processors=1)
    new = [
        f"{name}:{secret.line_number}: {secret.type}"
        for name, secret in found
        if (name, secret.secret_hash) not in allowed
    ]
    return sorted(new), unaudited


def run(files: list[str], baseline: Path = BASELINE) -> ExitCode:
    """Scan `files` (default: every tracked file): OK, FAILED on a finding or an unaudited baseline entry,
    USAGE when the baseline cannot be read."""
    try:
        files = files or tracked_files()
        new, unaudited = scan(files, baseline)
    except (OSError, json.JSONDecodeError, KeyError, subprocess.CalledProcessError) as error:
        print(f"error: cannot scan with baseline {baseline}: {error}", file=sys.stderr)
        return ExitCode.USAGE
    for line in [*new, *unaudited]:
        print(line)
    if new:
        print(
            f"{len(new)} possible secret(s) not in {baseline.name}: remove them, or if they are fake "
            "values add them with `make secrets-baseline` and audit them (is_secret: false)."
        )
    if new or unaudited:
        return ExitCode.FAILED
    print(f"no secrets in {len(files)} files beyond the audited fake values")
    return ExitCode.OK

