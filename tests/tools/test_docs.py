"""The documents a newcomer reads first hold for the tree as it is: the README's first screen and layout
table, and the counts the docs quote from the catalog."""

from __future__ import annotations

import re
from pathlib import Path

from tools.project_files import ROOT, read_catalog

README = (ROOT / "README.md").read_text(encoding="utf-8")
FIRST_SCREEN = 50


def layout_rows() -> list[str]:
    table = README.split("## Layout", 1)[1].split("\n\n", 2)[1]
    return [line for line in table.splitlines() if line.startswith("| `")]


def test_the_readme_opens_with_what_it_is_the_two_commands_and_the_layout() -> None:
    lines = README.splitlines()
    first = "\n".join(lines[:FIRST_SCREEN])
    assert lines[0] == "# Launch Ready ops stack"
    assert "make up " in first and "make test " in first
    last_row = max(i for i, line in enumerate(lines) if line in layout_rows())
    assert last_row < FIRST_SCREEN, f"the layout table ends on line {last_row + 1}"


def test_every_path_in_the_layout_table_exists() -> None:
    for row in layout_rows():
        first_cell = row.split("|")[1]
        for path in re.findall(r"`([^`]+)`", first_cell):
            if "<stack>" in path:
                assert list(ROOT.glob(path.replace("<stack>", "*"))), path
            else:
                assert (ROOT / path).exists(), f"README layout names {path}, which does not exist"


def test_the_layout_names_every_tools_subsystem_and_every_role_of_the_deployed_code() -> None:
    packages = sorted(p.parent.name for p in (ROOT / "tools").glob("*/__init__.py"))
    for name in packages:
        assert f"`tools/{name}/`" in README, f"tools/{name}/ is not in the README's layout"
    for name in sorted(p.parent.name for p in (ROOT / "tools" / "offline").glob("*/__init__.py")):
        assert f"`{name}/`" in README, f"tools/offline/{name}/ is not in the README's layout"
    for name in sorted(p.parent.name for p in (ROOT / "functions_src" / "launchready").glob("*/__init__.py")):
        assert f"`{name}/`" in README, f"functions_src/launchready/{name}/ is not in the README's layout"


def test_the_local_stack_sample_output_counts_what_the_catalog_holds() -> None:
    catalog = read_catalog()
    local = (ROOT / "docs" / "local.md").read_text(encoding="utf-8")
    starting = re.search(r"starting (\d+) functions, 3 emulators", local)
    assert starting and int(starting.group(1)) == len(catalog.functions)
    wiring = re.search(r"✓ (\d+) topics \+ DLQs, (\d+) push subs", local)
    assert wiring and (int(wiring.group(1)), int(wiring.group(2))) == (
        len(catalog.topics),
        len(catalog.by_trigger("pubsub")),
    )


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation other than - and _ dropped, spaces to -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def test_every_relative_link_in_the_docs_reaches_a_file_and_its_heading() -> None:
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = re.sub(r"```.*?```|`[^`\n]*`", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (page.parent / file_part).resolve() if file_part else page
            if not linked.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
