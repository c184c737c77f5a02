"""The data-bearing resource types: deleting or replacing one loses data.

One list, components/data/data_bearing.json (Pulumi type token -> what would be lost), read by the
production protection, the policy pack, the provider contracts and the diff's destructive gate. Standard
library only: the policy pack reads it from .venv-policy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType

DATA_BEARING_PATH = Path(__file__).resolve().parent / "data" / "data_bearing.json"
# <package>:<module>:<Type>, e.g. gcp:firestore/database:Database.
_TYPE_TOKEN = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9/._-]+:[A-Z][A-Za-z0-9]*$")


@cache
def data_bearing(path: Path = DATA_BEARING_PATH) -> Mapping[str, str]:
    """{type token: what its deletion or replacement loses}, read once. Raises ValueError naming a
    malformed entry."""
    document = json.loads(path.read_text(encoding="utf-8"))
    types = document.get("types") if isinstance(document, dict) else None
    if not isinstance(types, dict) or not types:
        raise ValueError(f"{path.name}: 'types' must map resource type tokens to what is lost")
    for token, loses in types.items():
        if not _TYPE_TOKEN.match(token) or not isinstance(loses, str) or not loses.strip():
            raise ValueError(f"{path.name}: {token!r} needs a type token and what its deletion loses")
    return MappingProxyType(dict(types))


def data_bearing_types() -> frozenset[str]:
    """The data-bearing type tokens."""
    return frozenset(data_bearing())
