"""The ops console: health, event timeline, customers, what needs a human; dead-letter replay."""

from launchready.handlers.ops_console.app import ops_console

__all__ = ["ops_console"]
