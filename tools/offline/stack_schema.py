"""Write (or check) the files generated from the stack config model in components/stack_config.py.

    python -m tools.offline.stack_schema          # rewrite the schema and docs/configuration.md
    python -m tools.offline.stack_schema --check  # exit 1 naming each stale file

The JSON schema is what editors read (each Pulumi.<stack>.yaml names it on its first line); the docs
table is the reference of every key. Both come from the one model, so they cannot drift from validation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from components.stack_config import (
    FIRESTORE_LOCATIONS,
    FUNCTION_REGIONS,
    LOCATIONS,
    docs_table,
    stack_file_schema,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = Path("docs/stack-config.schema.json")
DOCS_PATH = Path("docs/configuration.md")

DOCS_HEADER = """# Stack configuration

Every key of `Pulumi.<stack>.yaml`, generated from `components/stack_config.py` by
`python -m tools.offline.stack_schema` (a test fails when this file is stale). Editors that speak the
YAML language server validate and complete the stack files from `docs/stack-config.schema.json`.

- One kind-of-environment key, `launchready:environment`, drives every rule that differs by environment.
- Values still marked `# REPLACE` in a stack file are example values: `make plan` warns once per key,
  `make deploy` refuses to run until they are replaced.
- Regions and Firestore locations are checked against Google's published lists, committed with their
  source and date in `components/data/gcp_locations.json`.
- The accepted forms (hostnames, email addresses, senders, SPF includes, the value sets) are the types of
  `components/config_types.py`, the one definition the program, the tools and the policy pack share.
- Keys in other namespaces (`cloudflare:apiToken`, set with `pulumi config set --secret`) pass through.
- Clone: what `make clone-env` does with the key when it derives a new stack from this one
  (docs/operations.md, "Cloning an environment"): `copy` as is; `rewrite` for the new environment
  (derived, overridable); `policy` set by the new environment's kind (the plan differences `make check-env`
  lists); `never` copied (the new file gets a value to fill in). Every secure value, `secretsprovider`,
  `encryptedkey` and `encryptionsalt` are never copied either.

"""


def locations_section() -> str:
    functions, firestore = LOCATIONS["cloud_run_functions"], LOCATIONS["firestore"]
    return (
        f"\n## Accepted locations (retrieved {LOCATIONS['retrieved']})\n\n"
        f"`launchready:region`, `gcp:region` ({functions['source']}):\n"
        + ", ".join(f"`{r}`" for r in FUNCTION_REGIONS)
        + f"\n\n`launchready:firestoreLocation` ({firestore['source']}):\n"
        + ", ".join(f"`{r}`" for r in FIRESTORE_LOCATIONS)
        + "\n\nGoogle adds regions over time: update `components/data/gcp_locations.json` from those "
        "pages and run `python -m tools.offline.stack_schema`.\n"
    )


def generated() -> dict[Path, str]:
    """Path (relative to the repository) -> the exact text it must hold."""
    return {
        SCHEMA_PATH: json.dumps(stack_file_schema(), indent=2, sort_keys=True) + "\n",
        DOCS_PATH: DOCS_HEADER + docs_table() + "\n" + locations_section(),
    }


def stale(root: Path = ROOT) -> list[Path]:
    return [
        path
        for path, text in generated().items()
        if not (root / path).is_file() or (root / path).read_text(encoding="utf-8") != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.offline.stack_schema", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1)")
    options = parser.parse_args(argv)
    outdated = stale()
    if options.check:
        for path in outdated:
            print(f"{path} is stale: run python -m tools.offline.stack_schema", file=sys.stderr)
        return 1 if outdated else 0
    for path, text in generated().items():
        (ROOT / path).write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
