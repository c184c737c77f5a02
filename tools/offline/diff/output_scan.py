"""Last line of defence before the diff is written or printed: no credential-shaped string leaves.

Values are redacted by construction (the plan's "[secret]" and "[credential-shaped plaintext]"
markers); this scan searches the finished texts for the shapes of tools/offline/plan/credential_shapes.py
anyway, so a value that slipped past redaction fails the command instead of reaching a PR comment.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.offline.plan.credential_shapes import shape_name, text_pattern


@dataclass(frozen=True)
class Finding:
    """Where a credential shape was found; never the value itself."""

    document: str
    line: int
    shape: str

    def __str__(self) -> str:
        return f"{self.document}:{self.line}: a {self.shape} shape"


def scan(documents: dict[str, str], public: frozenset[str] = frozenset()) -> list[Finding]:
    """Every credential-shaped string in `documents` ({name: text}), by document and line; a string in
    `public` (the configured values of the stacks' public settings, tools.offline.plan.evaluate
    PUBLIC_SETTINGS) is not one."""
    pattern = text_pattern()
    findings = []
    for name, text in documents.items():
        for number, line in enumerate(text.splitlines(), start=1):
            for match in pattern.finditer(line):
                if match.group(0) not in public:
                    findings.append(Finding(name, number, shape_name(match)))
    return findings


def withhold(text: str) -> str:
    """`text` with every line holding a credential shape replaced by a note (for error excerpts)."""
    pattern = text_pattern()
    lines = []
    for line in text.splitlines():
        match = pattern.search(line)
        lines.append(f"[line withheld: a {shape_name(match)} shape]" if match else line)
    return "\n".join(lines)
