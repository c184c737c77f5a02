"""Stripe's form encoding: `metadata[uid]=u1&line_items[0][price]=price_1` -> nested dicts and lists,
as stripe-python sends it and the Stripe API reads it."""

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY_PART = re.compile(r"\[([^\]]*)\]")


def _key_path(key: str) -> list[str]:
    head, _, rest = key.partition("[")
    return [head] + _KEY_PART.findall("[" + rest) if rest else [head]


def _listify(node: Any) -> Any:
    # Indexed keys (`[0]`, `[1]`, or the legacy `[]`) become lists, in index order.
    if not isinstance(node, dict):
        return node
    items = {key: _listify(value) for key, value in node.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


def decode_form(text: str) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        path = _key_path(key)
        node = root
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        last = path[-1]
        if last == "":  # `tags[]=a&tags[]=b`: append in order
            last = str(len(node))
        node[last] = value
    return _listify(root)
