"""The repository's input files as every tool reads them: the stack files and the function catalog.

One reader each: no tool opens Pulumi.<stack>.yaml or components/data/catalog.json on its own, so a
stack file or the catalog means the same thing to `make plan`, `make up`, `make secrets` and the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from components.catalog import Catalog, load_catalog

if TYPE_CHECKING:  # the config model loads in ~0.3 s; `make up`, `demo` and `status` never read a stack file
    from components.stack_config import StackFile

ROOT = Path(__file__).resolve().parents[1]
CATALOG_FILE = Path("components") / "data" / "catalog.json"
_PREFIX, _SUFFIX = "Pulumi.", ".yaml"


def stack_path(stack: str, root: Path = ROOT) -> Path:
    """Where the stack's configuration lives: `root`/Pulumi.<stack>.yaml."""
    return root / f"{_PREFIX}{stack}{_SUFFIX}"


def stack_name(file_name: str) -> str | None:
    """The stack a file name belongs to ("Pulumi.prod.yaml" -> "prod"); None for Pulumi.yaml and others."""
    if file_name.startswith(_PREFIX) and file_name.endswith(_SUFFIX):
        return file_name[len(_PREFIX) : -len(_SUFFIX)] or None
    return None


def stack_names(root: Path = ROOT) -> list[str]:
    """Every stack with a stack file in `root`, sorted."""
    return sorted(name for path in root.glob(f"{_PREFIX}*{_SUFFIX}") if (name := stack_name(path.name)))


def read_stack(stack: str, root: Path = ROOT) -> StackFile:
    """The stack file of `stack` in `root`: config values, encrypted keys, example-value markers.

    Raises components.stack_config.StackConfigError for a name that is not a Pulumi stack name (nothing
    outside `root` is read), a missing file or a YAML error (file:line:column).
    """
    from components.config_types import STACK_NAME_FORM, StackName, conforms
    from components.stack_config import StackConfigError, read_stack_file

    if not conforms(StackName, stack):
        raise StackConfigError(f"stack name {stack!r} is malformed, expected {STACK_NAME_FORM}")
    return read_stack_file(stack_path(stack, root))


def engine_config(stack_file: StackFile) -> tuple[dict[str, str], list[str]]:
    """(config, secret keys) as the engine hands them to a program or a policy pack: every value a
    string, structured values as JSON. Encrypted values are left out; nothing here reads them."""
    from components.stack_config import engine_form

    config = {key: engine_form(value) for key, value in stack_file.config.items()}
    return config, list(stack_file.secret_keys)


def read_catalog(root: Path = ROOT) -> Catalog:
    """components/data/catalog.json of `root`, validated (components.catalog.CatalogError when malformed)."""
    return load_catalog(root / CATALOG_FILE)
