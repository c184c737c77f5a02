"""How Stripe's API reads a request and shapes a list: the form-encoded query (`created[gte]=`,
`types[]=`, `expand[]=`), `created` ranges, cursor pagination (https://docs.stripe.com/api/pagination:
`limit` 1-100, default 10; `starting_after` / `ending_before` name an object of the list; newest first)
and expansion (https://docs.stripe.com/api/expanding_objects: an id replaced by its object, `data.`
reaching into a list, up to four levels). Errors are StripeRequestError in Stripe's words."""

import copy
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from ..forms import decode_form
from ..messages import SandboxRequest

MAX_LIMIT = 100
MAX_EXPANSION_DEPTH = 4
_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "gt": lambda value, bound: value > bound,
    "gte": lambda value, bound: value >= bound,
    "lt": lambda value, bound: value < bound,
    "lte": lambda value, bound: value <= bound,
}


class StripeRequestError(ValueError):
    """A request Stripe refuses: `status`, Stripe's `message`, the `param` at fault, the error `code`."""

    def __init__(self, message: str, param: str = "", code: str = "", status: int = 400) -> None:
        super().__init__(message)
        self.message, self.param, self.code, self.status = message, param, code, status


def no_such(kind: str, object_id: str, param: str = "id") -> StripeRequestError:
    return StripeRequestError(f"No such {kind}: '{object_id}'", param, "resource_missing", 404)


def query_of(request: SandboxRequest) -> dict[str, Any]:
    """The query string as Stripe reads it: nested names decoded, the last value of a repeated name."""
    return decode_form(urlencode([(key, value) for key, values in request.query.items() for value in values]))


def in_range(value: int | None, condition: Any) -> bool:
    """Whether `value` meets a range parameter: an exact time, or {gt, gte, lt, lte} bounds."""
    if condition is None:
        return True
    if value is None:
        return False
    if isinstance(condition, dict):
        return all(
            _COMPARISONS[op](value, int(bound)) for op, bound in condition.items() if op in _COMPARISONS
        )
    return value == int(condition)


def page(objects: list[dict[str, Any]], query: dict[str, Any], url: str, kind: str) -> dict[str, Any]:
    """One page of `objects` (already filtered, newest first) as Stripe's list object."""
    limit = int(query.get("limit", 10))
    if not 1 <= limit <= MAX_LIMIT:
        raise StripeRequestError(f"Invalid integer: {limit}; must be between 1 and {MAX_LIMIT}", "limit")
    ids = [item["id"] for item in objects]
    after, before = query.get("starting_after"), query.get("ending_before")
    if after and before:
        raise StripeRequestError(
            "You may only specify one of these parameters: ending_before, starting_after.", "ending_before"
        )
    cursor = str(after or before or "")
    if cursor:
        if cursor not in ids:
            raise no_such(kind, cursor, "starting_after" if after else "ending_before")
        index = ids.index(cursor)
        if after:
            rest = objects[index + 1 :]
            chosen, has_more = rest[:limit], len(rest) > limit
        else:
            newer = objects[:index]
            chosen, has_more = newer[-limit:], len(newer) > limit
    else:
        chosen, has_more = objects[:limit], len(objects) > limit
    return {"object": "list", "data": copy.deepcopy(chosen), "has_more": has_more, "url": url}


Lookup = Callable[[str], dict[str, Any] | None]
Includable = Callable[[dict[str, Any], str], dict[str, Any] | None]


def expand(body: dict[str, Any], paths: Any, lookup: Lookup, includable: Includable) -> dict[str, Any]:
    """`body` with each of `paths` expanded: an id the sandbox holds (`lookup`) becomes its object, an
    includable field (`includable(owner, name)`, such as an invoice's `payments`) is filled in."""
    wanted = paths if isinstance(paths, list) else [paths] if isinstance(paths, str) else []
    for path in wanted:
        parts = path.split(".")
        if len([part for part in parts if part != "data"]) > MAX_EXPANSION_DEPTH:
            raise StripeRequestError(
                f"You cannot expand more than {MAX_EXPANSION_DEPTH} levels of a property.", "expand"
            )
        _expand(body, parts, path, lookup, includable)
    return body


def _expand(node: Any, parts: list[str], path: str, lookup: Lookup, includable: Includable) -> None:
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict) and node.get("object") == "list" and head == "data":
        for item in node["data"]:
            if rest:
                _expand(item, rest, path, lookup, includable)
        return
    if not isinstance(node, dict):
        raise StripeRequestError(f"This property cannot be expanded ({path}).", "expand")
    current = node.get(head)
    if current is None and head not in node:
        found = includable(node, head)
        if found is None:
            raise StripeRequestError(f"This property cannot be expanded ({path}).", "expand")
        node[head] = current = found
    elif isinstance(current, str):
        found = lookup(current)
        if found is None:
            raise StripeRequestError(
                f"This property cannot be expanded ({path}): the sandbox holds no object {current}.", "expand"
            )
        node[head] = current = copy.deepcopy(found)
    elif current is not None and not isinstance(current, dict):
        raise StripeRequestError(f"This property cannot be expanded ({path}).", "expand")
    if rest and current is not None:
        _expand(current, rest, path, lookup, includable)
