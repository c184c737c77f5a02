"""Repository secret scan: no credential in any tracked file beyond the audited fake values.

    python -m tools.offline.policy_secret_scan [--baseline .secrets.baseline]

Scans every file `git ls-files` lists with detect-secrets (Yelp/detect-secrets, pinned 1.5.0) using
the plugins and filters recorded in the baseline, and fails on any finding the baseline does not hold
(matched by file and hashed secret, so moved lines do not matter). Unlike `detect-secrets-hook` it
never rewrites the baseline. A baseline entry that is not audited as a false positive fails too:
the baseline is the list of known fake values, nothing else. Exit 0 clean, 1 on findings, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from detect_secrets.core import baseline as baseline_file
from detect_secrets.core.secrets_collection import SecretsCollection

ROOT = Path(__file__).resolve().parents[2]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("files", nargs="*", help="files to scan (default: every tracked file)")
    options = parser.parse_args(argv)
    try:
        files = options.files or tracked_files()
        new, unaudited = scan(files, options.baseline)
    except (OSError, json.JSONDecodeError, KeyError, subprocess.CalledProcessError) as error:
        print(f"error: cannot scan with baseline {options.baseline}: {error}", file=sys.stderr)
        return 2
    for line in [*new, *unaudited]:
        print(line)
    if new:
        print(
            f"{len(new)} possible secret(s) not in {options.baseline.name}: remove them, or if they are fake "
            "values add them with `make secrets-baseline` and audit them (is_secret: false)."
        )
    if new or unaudited:
        return 1
    print(f"no secrets in {len(files)} files beyond the audited fake values")
    return 0


if __name__ == "__main__":
    sys.exit(main())
