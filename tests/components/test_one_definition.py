"""Each fact the program, the tools and the policy pack share has one definition: a second copy fails here.

The facts: the stack settings' sets of values and their hostname, email and SPF patterns
(components/config_types.py), each function's project roles (components/data/catalog.json) and the
data-bearing resource types (components/data/data_bearing.json). The tree's Python is read as syntax
(string constants, f-strings and `+` of module-level strings folded), never imported.

Out of scope, by design: functions_src/ (the deployed code validates its own requests and is packaged
alone), tools/sandbox/ (it reproduces each provider's own validation) and the tests.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from components import config_types
from components.catalog import Catalog
from components.data_bearing import DATA_BEARING_PATH, data_bearing_types

ROOT = Path(__file__).resolve().parents[2]
TYPES_MODULE = Path("components/config_types.py")
SKIPPED = ("functions_src", "tests", "tools/sandbox", "build", "node_modules")

# What a hostname pattern accepts and refuses; an SPF include pattern (today a hostname, later an RFC 7208
# domain-spec) accepts the same names. An email pattern likewise.
HOSTS = ("example.com", "api.staging.example.com")
NOT_HOSTS = ("exa mple.com", "ops@example.com", "example.com/path")
ADDRESSES = ("ops@example.com", "first.last@mail.example.co.uk")
NOT_ADDRESSES = ("ops", "ops@", "a b@example.com")
# Each set of accepted values a setting has.
CHOICE_SETS = {
    name: frozenset(get_args(value))
    for name, value in vars(config_types).items()
    if getattr(value, "__origin__", None) is not None and str(value).startswith("typing.Literal")
}


@dataclass(frozen=True)
class Found:
    path: Path
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def python_files(root: Path = ROOT) -> Iterator[Path]:
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0].startswith(".") or any(
            relative.as_posix().startswith(f"{skipped}/") for skipped in SKIPPED
        ):
            continue
        yield relative


def _fold(node: ast.AST, names: dict[str, str]) -> str | None:
    """The string an expression builds from literals and module-level string names, or None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            part = _fold(value.value if isinstance(value, ast.FormattedValue) else value, names)
            if part is None:
                return None
            parts.append(part)
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _fold(node.left, names), _fold(node.right, names)
        return left + right if left is not None and right is not None else None
    return None


def _module_strings(tree: ast.Module) -> dict[str, str]:
    names: dict[str, str] = {}
    for statement in tree.body:
        target = statement.targets[0] if isinstance(statement, ast.Assign) else None
        if isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target = statement.target
        value = statement.value if isinstance(statement, ast.Assign | ast.AnnAssign) else None
        if isinstance(target, ast.Name) and value is not None:
            folded = _fold(value, names)
            if folded is not None:
                names[target.id] = folded
    return names


def _accepts(pattern: str, text: str) -> bool:
    return re.fullmatch(pattern, text) is not None


def pattern_kind(text: str) -> str | None:
    """`hostname` or `email` when `text` is a regular expression that accepts those and refuses the rest."""
    if not any(mark in text for mark in "[\\^$(+*{"):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(text)
    except re.error:
        return None
    if all(_accepts(text, h) for h in HOSTS) and not any(_accepts(text, n) for n in NOT_HOSTS):
        return "hostname"
    if all(_accepts(text, a) for a in ADDRESSES) and not any(_accepts(text, n) for n in NOT_ADDRESSES):
        return "email"
    return None


def patterns_in(source: str, path: Path) -> list[Found]:
    """Hostname, email and SPF patterns the module's strings spell, however they are assembled."""
    tree = ast.parse(source)
    names = _module_strings(tree)
    found: dict[int, Found] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant | ast.JoinedStr | ast.BinOp):
            text = _fold(node, names)
            kind = pattern_kind(text) if text is not None else None
            if kind is not None:
                found.setdefault(node.lineno, Found(path, node.lineno, f"{kind} pattern {text!r}"))
    return sorted(found.values(), key=lambda f: f.line)


def _string_collections(tree: ast.AST) -> Iterator[tuple[int, frozenset[str], ast.AST]]:
    """Every tuple, list or set literal, and every dict literal's keys, as a set of its string items."""
    for node in ast.walk(tree):
        items: list[ast.expr | None] = []
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            items = list(node.elts)
        elif isinstance(node, ast.Dict):
            items = list(node.keys)
        strings = frozenset(
            item.value for item in items if isinstance(item, ast.Constant) and isinstance(item.value, str)
        )
        if strings:
            yield node.lineno, strings, node


def choice_sets_in(source: str, path: Path) -> list[Found]:
    """Tuple, list and set literals (a Literal[...] included) that spell one of the settings' value sets."""
    found = []
    for line, strings, node in _string_collections(ast.parse(source)):
        if isinstance(node, ast.Dict):
            continue  # a mapping per environment reads the set, it does not define it
        for name, choices in CHOICE_SETS.items():
            if strings == choices:
                found.append(Found(path, line, f"the values of {name} {sorted(choices)}"))
    return found


def role_lists_in(source: str, path: Path, catalog: Catalog) -> list[Found]:
    """A mapping from catalog functions to roles, or a list of exactly the roles every function holds."""
    functions = {spec.name for spec in catalog.functions}
    common = frozenset(grant.role for grant in catalog.common_roles)
    found = []
    for line, strings, node in _string_collections(ast.parse(source)):
        if isinstance(node, ast.Dict) and strings & functions:
            values = [_fold(n, {}) for value in node.values for n in ast.walk(value)]
            if any(value and value.startswith("roles/") for value in values):
                found.append(Found(path, line, f"project roles by function ({sorted(strings & functions)})"))
        elif not isinstance(node, ast.Dict) and {s for s in strings if s.startswith("roles/")} == common:
            found.append(Found(path, line, f"the roles every function holds {sorted(common)}"))
    return found


_TYPE_TOKEN = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9/._-]+:[A-Z][A-Za-z0-9]*$")


def _data_bearing_list(strings: frozenset[str]) -> bool:
    tokens = {s for s in strings if _TYPE_TOKEN.match(s)}
    return len(tokens) >= 2 and tokens <= data_bearing_types()


def data_bearing_lists_in_python(source: str, path: Path) -> list[Found]:
    return [
        Found(path, line, f"a list of data-bearing types {sorted(strings)}")
        for line, strings, _ in _string_collections(ast.parse(source))
        if _data_bearing_list(strings)
    ]


def _documents_collections(document: Any, where: str) -> Iterator[tuple[str, frozenset[str]]]:
    if isinstance(document, dict):
        yield where, frozenset(str(key) for key in document)
        for key, value in document.items():
            yield from _documents_collections(value, f"{where}.{key}")
    elif isinstance(document, list):
        yield where, frozenset(item for item in document if isinstance(item, str))
        for index, value in enumerate(document):
            yield from _documents_collections(value, f"{where}[{index}]")


def data_bearing_lists_in_data(document: Any, path: Path) -> list[Found]:
    return [
        Found(path, 0, f"a list of data-bearing types at {where}")
        for where, strings in _documents_collections(document, "$")
        if _data_bearing_list(strings)
    ]


def _read(path: Path) -> str:
    return (ROOT / path).read_text(encoding="utf-8")


# ---- the tree -------------------------------------------------------------------------------------------


def test_hostname_email_and_spf_patterns_are_compiled_only_in_the_types_module() -> None:
    found = [f for path in python_files() if path != TYPES_MODULE for f in patterns_in(_read(path), path)]
    assert found == [], "name the type in components/config_types.py instead:\n" + "\n".join(map(str, found))


def test_the_types_module_holds_the_patterns_the_check_looks_for() -> None:
    kinds = {f.what.split(" ", 1)[0] for f in patterns_in(_read(TYPES_MODULE), TYPES_MODULE)}
    assert kinds == {"hostname", "email"}


def test_the_settings_value_sets_are_spelled_only_in_the_types_module() -> None:
    assert {"Environment", "DmarcPolicy", "CloudflarePlan", "EdgeCertificate"} <= set(CHOICE_SETS)
    found = [f for path in python_files() if path != TYPES_MODULE for f in choice_sets_in(_read(path), path)]
    assert found == [], "import the type from components/config_types.py:\n" + "\n".join(map(str, found))


def test_function_roles_are_listed_only_in_the_catalog(catalog: Catalog) -> None:
    found = [f for path in python_files() for f in role_lists_in(_read(path), path, catalog)]
    assert found == [], "roles go in components/data/catalog.json:\n" + "\n".join(map(str, found))


def test_data_bearing_types_are_listed_only_in_their_file() -> None:
    found = [f for path in python_files() for f in data_bearing_lists_in_python(_read(path), path)]
    for folder in ("components", "policy", "tools"):
        for path in sorted((ROOT / folder).rglob("*")):
            relative = path.relative_to(ROOT)
            if path == DATA_BEARING_PATH or path.suffix not in (".json", ".yaml", ".yml"):
                continue
            if any(relative.as_posix().startswith(f"{skipped}/") for skipped in SKIPPED):
                continue
            text = path.read_text(encoding="utf-8")
            document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
            found += data_bearing_lists_in_data(document, relative)
    assert found == [], "list them in components/data/data_bearing.json:\n" + "\n".join(map(str, found))


# ---- the checks themselves can fail ------------------------------------------------------------------------

SECOND_COPIES = """
import re
from typing import Literal
_LABEL = r"[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?"
SPF_INCLUDE = re.compile(rf"^(?:{_LABEL}\\.)+[a-z]{{2,63}}$")
LAX_HOST = re.compile(r"^[a-z0-9.-]+\\.[a-z]{2,}$")
EMAIL = "^[^@ ]+" + "@[^@ ]+[.][a-z]+$"
KINDS = ("production", "staging", "preview")
Plan = Literal["free", "pro", "business", "enterprise"]
ROLES = {"billing_worker": ("roles/firebaseauth.admin",)}
BASE = ["roles/datastore.user", "roles/logging.logWriter"]
PROTECTED = {"gcp:firestore/database:Database", "gcp:storage/bucket:Bucket"}
"""
NOT_COPIES = """
import re
SLUG = re.compile(r"[^a-z0-9]+")
DURATION = re.compile(r"^(\\d+)s$")
URL = re.compile(r"^https://")
PER_ENVIRONMENT = {"production": 30, "staging": 30, "preview": 7}
SOME_PLANS = ("pro", "business", "enterprise")
FAMILIES = ("roles/datastore.user", "roles/datastore.viewer", "roles/logging.logWriter")
TYPES = ("gcp:firestore/database:Database", "gcp:pubsub/topic:Topic")
"""


def test_every_check_finds_a_planted_second_copy(catalog: Catalog) -> None:
    path = Path("components/planted.py")
    assert [f.line for f in patterns_in(SECOND_COPIES, path)] == [5, 6, 7]
    assert [f.line for f in choice_sets_in(SECOND_COPIES, path)] == [8, 9]
    assert [f.line for f in role_lists_in(SECOND_COPIES, path, catalog)] == [10, 11]
    assert [f.line for f in data_bearing_lists_in_python(SECOND_COPIES, path)] == [12]
    yaml_copy = {"rules": {"data_bearing": {t: "lost" for t in sorted(data_bearing_types())[:2]}}}
    assert len(data_bearing_lists_in_data(yaml_copy, path)) == 1


def test_no_check_mistakes_other_strings_for_a_copy(catalog: Catalog) -> None:
    path = Path("components/other.py")
    assert patterns_in(NOT_COPIES, path) == []
    assert choice_sets_in(NOT_COPIES, path) == []
    assert role_lists_in(NOT_COPIES, path, catalog) == []
    assert data_bearing_lists_in_python(NOT_COPIES, path) == []


@pytest.mark.parametrize("module", ["components/config_types.py", "components/data_bearing.py"])
def test_the_shared_modules_are_in_scope(module: str) -> None:
    assert Path(module) in set(python_files())
