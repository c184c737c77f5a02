"""Cloud Functions entry points: `main.<entry_point>` is the function of the same name in
`launchready.handlers.<entry_point>` (a catalog entry's `entry_point`), imported when first asked for.

functions-framework asks for exactly one (`getattr(main, FUNCTION_TARGET)`), so an instance imports
its own handler and nothing of another's; adding a function never changes this file.
"""

import importlib
from typing import Any

HANDLERS = "launchready.handlers"


def __getattr__(name: str) -> Any:  # PEP 562: called for names the module does not define
    if name.startswith("_") or not name.isidentifier():
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        handler = importlib.import_module(f"{HANDLERS}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{HANDLERS}.{name}":
            raise  # the handler exists but something it imports does not
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}: no {HANDLERS}.{name}") from None
    entry_point = getattr(handler, name)
    globals()[name] = entry_point  # later lookups skip this function
    return entry_point
