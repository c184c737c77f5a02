"""The one reader of the stack files refuses a stack name Pulumi would refuse, before any file is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.stack_config import StackConfigError
from tools.project_files import read_stack


@pytest.mark.parametrize("name", ["../etc", "", "-prod", "a/b", "x" * 101])
def test_a_malformed_stack_name_is_refused_with_the_expected_form(name: str, tmp_path: Path) -> None:
    (tmp_path.parent / "etc.yaml").write_text("config: {}\n", encoding="utf-8")
    with pytest.raises(StackConfigError, match=r"stack name .* is malformed, expected 1-100 letters"):
        read_stack(name, tmp_path)


def test_a_missing_stack_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(StackConfigError, match=r"Pulumi\.qa\.yaml not found"):
        read_stack("qa", tmp_path)
