"""Injected failures (status, delay, lost response), consumed in order by the next matching requests.

A fault applies the call only where the provider would have (docs/tools.md).
"""

import itertools
from dataclasses import asdict, dataclass
from typing import Any

MODES = frozenset({"status", "delay", "lost_response"})
DEFAULT_WAIT_SECONDS = 10.0  # longer than the functions' default provider timeout (5 s)


class FaultError(ValueError):
    pass


@dataclass
class Fault:
    id: int
    provider: str
    mode: str
    count: int
    path: str = ""
    status: int = 503
    code: str = ""
    message: str = ""
    seconds: float = DEFAULT_WAIT_SECONDS
    apply: bool = False
    retry_after: float | None = None

    def matches(self, provider: str, path: str) -> bool:
        return self.provider == provider and (not self.path or path.startswith(self.path))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultBook:
    def __init__(self, providers: frozenset[str]) -> None:
        self._providers = providers
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: Any) -> Fault:
        if not isinstance(spec, dict):
            raise FaultError("expected a JSON object")
        provider, mode = spec.get("provider"), spec.get("mode")
        if provider not in self._providers:
            raise FaultError(f"provider must be one of {sorted(self._providers)}")
        if mode not in MODES:
            raise FaultError(f"mode must be one of {sorted(MODES)}")
        try:
            count = int(spec.get("count", 1))
            status = int(spec.get("status", 503))
            seconds = float(spec.get("seconds", DEFAULT_WAIT_SECONDS))
            retry_after = None if spec.get("retry_after") is None else float(spec["retry_after"])
        except (TypeError, ValueError) as exc:
            raise FaultError(f"count, status, seconds and retry_after must be numbers: {exc}") from exc
        if count < 1 or not 400 <= status <= 599 or not 0 <= seconds <= 600:
            raise FaultError("count >= 1, 400 <= status <= 599 and 0 <= seconds <= 600")
        if retry_after is not None and retry_after < 0:
            raise FaultError("retry_after must be >= 0")
        if not isinstance(spec.get("apply", False), bool):
            raise FaultError("apply must be true or false")
        fault = Fault(
            id=next(self._ids),
            provider=provider,
            mode=mode,
            count=count,
            path=str(spec.get("path") or ""),
            status=status,
            code=str(spec.get("code") or ""),
            message=str(spec.get("message") or ""),
            seconds=seconds,
            apply=bool(spec.get("apply", False)),
            retry_after=retry_after,
        )
        self._faults.append(fault)
        return fault

    def take(self, provider: str, path: str) -> Fault | None:
        """The first pending fault for this request, with one use consumed."""
        for fault in self._faults:
            if fault.matches(provider, path):
                fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        return [fault.as_dict() for fault in self._faults]

    def clear(self) -> None:
        self._faults.clear()
