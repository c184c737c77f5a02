"""The files generated from the stack-config model (components/stack_config.py): the editors' JSON schema
and docs/configuration.md. `python -m tools stack-schema` writes them; a test keeps them fresh.
"""

from __future__ import annotations

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
from tools.exit_codes import ExitCode
from tools.project_files import ROOT

SCHEMA_PATH = Path("docs/stack-config.schema.json")
DOCS_PATH = Path("docs/configuration.md")

DOCS_HEADER = """# Stack configuration

Every key of `Pulumi.<stack>.yaml`, generated from `components/stack_config.py` by
`python -m tools stack-schema` (a test fails when this file is stale). Editors that speak the
YAML language server validate and complete the stack files from `docs/stack-config.schema.json`.

- One kind-of-environment key, `launchready:environment`, drives every rule that differs by environment.
- A key still holding one of the template's example values (`components/data/example_values.json`,
  whatever its comments say) gets one warning line from `make plan`, and `make deploy` refuses to run
  until it is replaced. The `# REPLACE` comments only point at what to fill in.
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
        "pages and run `python -m tools stack-schema`.\n"
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


def run(check: bool = False) -> ExitCode:
    """Write the generated files, or with `check` only report the stale ones (FAILED when any is)."""
    outdated = stale()
    if check:
        for path in outdated:
            print(f"{path} is stale: run python -m tools stack-schema", file=sys.stderr)
        return ExitCode.FAILED if outdated else ExitCode.OK
    for path, text in generated().items():
        (ROOT / path).write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return ExitCode.OK
