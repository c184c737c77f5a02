"""One source archive per function: byte-for-byte reproducible whatever zlib does, holding the function's
own import closure and package data, and changed by a module change exactly when the function needs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from components.archive import HANDLERS, SourceArchive, build_archive, import_closure
from components.catalog import FunctionSpec, load_catalog

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog()
SPECS = {spec.name: spec for spec in CATALOG.functions}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A copy of functions_src that tests may change."""
    copy = tmp_path / "functions_src"
    shutil.copytree(ROOT / "functions_src", copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def build(source: Path, out: Path, spec: FunctionSpec) -> SourceArchive:
    return build_archive(source, out, name=spec.resource_name, entry_point=spec.entry_point)


def build_all(source: Path, out: Path) -> dict[str, str]:
    """{function: object name} of every function's archive."""
    return {name: build(source, out, spec).object_name for name, spec in SPECS.items()}


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def test_name_carries_the_function_and_the_content_hash(source: Path, tmp_path: Path) -> None:
    archive = build(source, tmp_path / "out", SPECS["stripe_webhook"])
    assert archive.object_name == f"stripe-webhook-{archive.sha256[:16]}.zip"
    assert archive.path.name == archive.object_name and archive.path.is_file()


def test_same_source_gives_identical_bytes(source: Path, tmp_path: Path) -> None:
    first = build_all(source, tmp_path / "a")
    # Touch every file: timestamps must not leak into the archive.
    for path in source.rglob("*"):
        if path.is_file():
            os.utime(path, (1_900_000_000, 1_900_000_000))
    assert build_all(source, tmp_path / "b") == first
    for name in (tmp_path / "a").iterdir():
        assert name.read_bytes() == (tmp_path / "b" / name.name).read_bytes()


def test_the_bytes_do_not_depend_on_the_compressor(source: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Two machines whose zlib compresses differently (here: levels 1 and 9) build the same archive."""
    spec = SPECS["ops_console"]
    original = zlib.compressobj
    built = []
    for level in (1, 9):
        monkeypatch.setattr(zipfile.zlib, "compressobj",  # type: ignore[attr-defined]
                            lambda *args, level=level, **kwargs: original(level, *args[1:], **kwargs))
        built.append(build(source, tmp_path / str(level), spec).path)
    assert built[0].read_bytes() == built[1].read_bytes()
    with zipfile.ZipFile(built[0]) as bundle:
        assert {info.compress_type for info in bundle.infolist()} == {zipfile.ZIP_STORED}


def test_an_archive_holds_main_requirements_and_the_closure_only(source: Path, tmp_path: Path) -> None:
    archive = build(source, tmp_path / "out", SPECS["crm_worker"])
    files = set(archive.files)
    assert {"main.py", "requirements.txt", "launchready/__init__.py", "launchready/handlers/__init__.py",
            "launchready/handlers/crm_worker.py", "launchready/providers/hubspot.py",
            "launchready/domain/crm.py"} <= files
    # Other handlers, and what only they use, stay out.
    assert not {"launchready/handlers/billing_worker.py", "launchready/providers/stripe.py",
                "launchready/providers/zendesk.py", "launchready/domain/billing_state.py"} & files
    assert not [name for name in files if "ops_console" in name or name.endswith(".json")]


def test_package_data_travels_with_its_package(source: Path, tmp_path: Path) -> None:
    templates = sorted(
        path.relative_to(source).as_posix()
        for path in (source / "launchready/handlers/ops_console/templates").iterdir()
    )
    assert "launchready/handlers/ops_console/templates/base.html" in templates
    console = build(source, tmp_path / "out", SPECS["ops_console"])
    assert set(templates) <= set(console.files)
    webhook = build(source, tmp_path / "out", SPECS["stripe_webhook"])
    assert not [name for name in webhook.files if name.endswith(".html")]


# Each module's functions, as the handlers' imports make them (independent of the closure code).
USED_BY = {
    "launchready/providers/hubspot.py": {"crm_worker", "user_deleted"},
    "launchready/providers/zendesk.py": {"support_worker"},
    "launchready/providers/stripe.py": {"create_checkout", "user_deleted", "billing_worker", "reconcile"},
    "launchready/providers/stripe_webhooks.py": {"stripe_webhook"},
    "launchready/domain/billing_state.py": {"stripe_webhook", "billing_worker", "reconcile"},
    "launchready/domain/emails.py": {"billing_worker", "support_worker", "email_worker", "ops_digest",
                                     "reconcile"},
    "launchready/platform/validation.py": {"create_checkout", "support_request"},
    "launchready/platform/deleted_documents.py": {"user_deleted"},
    "launchready/handlers/ops_console/templates/base.html": {"ops_console"},
    "launchready/handlers/ops_digest.py": {"ops_digest"},
    "launchready/platform/log.py": set(SPECS),
    "requirements.txt": set(SPECS),
}


@pytest.mark.parametrize("module", sorted(USED_BY))
def test_a_change_changes_exactly_the_archives_of_the_functions_that_use_it(
        module: str, source: Path, tmp_path: Path) -> None:
    before = build_all(source, tmp_path / "out")
    append(source / module, "\n<!-- changed -->\n" if module.endswith(".html") else "\n# changed\n")
    after = build_all(source, tmp_path / "out")
    assert {name for name in SPECS if after[name] != before[name]} == USED_BY[module]


def test_every_module_changes_the_archives_of_the_closures_holding_it(source: Path, tmp_path: Path) -> None:
    """The same for every file of the deployed code (tests/functions/test_main.py checks each closure
    against what Python loads)."""
    closures = {name: set(import_closure(source, f"{HANDLERS}.{spec.entry_point}").files)
                for name, spec in SPECS.items()}
    before = build_all(source, tmp_path / "out")
    for path in sorted((source / "launchready").rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(source).as_posix()
        original = path.read_bytes()
        append(path, "\n")
        changed = build_all(source, tmp_path / "out")
        path.write_bytes(original)
        assert {name for name in SPECS if changed[name] != before[name]} == {
            name for name, files in closures.items() if relative in files}, relative
        assert any(relative in files for files in closures.values()), f"{relative} is in no function"


def test_changes_outside_functions_src_and_local_junk_change_nothing(source: Path, tmp_path: Path) -> None:
    before = build_all(source, tmp_path / "a")
    (source.parent / "firestore.rules").write_text("rules_version = '2';\n", encoding="utf-8")
    (source / "__pycache__").mkdir(exist_ok=True)
    (source / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\x00bytecode")
    (source / "launchready" / "stale.pyc").write_bytes(b"\x00bytecode")
    templates = source / "launchready" / "handlers" / "ops_console" / "templates"
    (templates / ".DS_Store").write_bytes(b"junk")
    (templates / "__pycache__").mkdir()
    (templates / "__pycache__" / "x.pyc").write_bytes(b"\x00")
    (source / "tests").mkdir()
    (source / "tests" / "test_main.py").write_text("def test(): pass\n", encoding="utf-8")
    (source / ".env").write_text("STRIPE_API_KEY=sk_test_local\n", encoding="utf-8")
    (source / "launchready" / "unused.py").write_text("import os\n", encoding="utf-8")  # imported by none
    assert build_all(source, tmp_path / "b") == before


def test_only_the_current_archive_of_each_function_is_kept(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = build_all(source, out)
    append(source / "launchready" / "handlers" / "ops_digest.py", "\n# changed\n")
    after = build_all(source, out)
    assert sorted(path.name for path in out.iterdir()) == sorted(after.values())
    assert after["ops_digest"] != before["ops_digest"] and after["crm_worker"] == before["crm_worker"]


def test_entries_are_sorted_with_fixed_metadata(source: Path, tmp_path: Path) -> None:
    archive = build(source, tmp_path / "out", SPECS["ops_console"])
    with zipfile.ZipFile(archive.path) as bundle:
        infos = bundle.infolist()
        names = [info.filename for info in infos]
        assert names == sorted(names) == list(archive.files)
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in infos)
        assert all(info.external_attr >> 16 == 0o100644 for info in infos)
        assert bundle.read("main.py") == (source / "main.py").read_bytes()


def test_an_imported_launchready_module_that_does_not_exist_is_an_error(source: Path, tmp_path: Path) -> None:
    handler = source / "launchready" / "handlers" / "crm_worker.py"
    # `from package import name` may name something the package defines: that is no module to archive.
    append(handler, "\nfrom launchready.platform import not_a_module\n")
    assert "launchready/platform/__init__.py" in import_closure(source, f"{HANDLERS}.crm_worker").files
    append(handler, "\nimport launchready.nowhere\n")
    with pytest.raises(ModuleNotFoundError, match="launchready.nowhere"):
        build(source, tmp_path / "out", SPECS["crm_worker"])


def test_imports_inside_functions_are_archived_and_type_only_imports_cost_no_floor(source: Path) -> None:
    (source / "launchready" / "domain" / "later.py").write_text("import jsonschema\n", encoding="utf-8")
    append(source / "launchready" / "handlers" / "crm_worker.py", (
        "\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import stripe\nelse:\n    import jinja2\n"
        "def _later():\n    from launchready.domain import later\n    import zipfile\n"))
    closure = import_closure(source, f"{HANDLERS}.crm_worker")
    assert "launchready/domain/later.py" in closure.files  # needed when _later() runs
    assert "import jinja2" in closure.external_imports  # runs at import: the `else` branch
    # Neither a type-checking import nor one inside a function runs when the function starts.
    assert not {"import stripe", "import zipfile", "import jsonschema"} & set(closure.external_imports)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_each_archive_serves_its_function_on_its_own(name: str, source: Path, tmp_path: Path) -> None:
    """Unzipped alone (no functions_src on the path), the archive's main.py serves the function as
    functions-framework does: the health answer of a GET."""
    spec = SPECS[name]
    archive = build(source, tmp_path / "out", spec)
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(archive.path) as bundle:
        bundle.extractall(unpacked)
    script = (
        "import functions_framework\n"
        f"app = functions_framework.create_app({spec.entry_point!r}, 'main.py', 'http')\n"
        "response = app.test_client().get('/')\n"
        "print(response.status_code, response.get_json()['function'])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=unpacked, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(unpacked)}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["200", name]
