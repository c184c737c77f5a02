"""Injected failures (status, delay, lost response), consumed in order by the next matching requests.

Standing conditions per provider (latency, a rate limit) hold until changed or reset. A fault applies
the call only where the provider would have (docs/tools.md).
"""

import itertools
from collections import deque
from dataclasses import asdict, dataclass, field
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


@dataclass
class Conditions:
    provider: str
    latency_ms: float = 0.0
    requests_per_second: int | None = None
    _admitted: deque[float] = field(default_factory=deque, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "latency_ms": self.latency_ms,
                "requests_per_second": self.requests_per_second}

    def admit(self, now: float) -> bool:
        """Whether a request arriving at `now` (monotonic seconds) is within the rate: at most
        `requests_per_second` admitted in the last second (a sliding window)."""
        if self.requests_per_second is None:
            return True
        while self._admitted and now - self._admitted[0] >= 1.0:
            self._admitted.popleft()
        if len(self._admitted) >= self.requests_per_second:
            return False
        self._admitted.append(now)
        return True


class FaultBook:
    def __init__(self, providers: frozenset[str]) -> None:
        self._providers = providers
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._conditions: dict[str, Conditions] = {}

    def set_conditions(self, spec: Any) -> Conditions:
        """{"provider", "latency_ms" (>= 0, default 0), "requests_per_second" (>= 1, or null for none)}."""
        if not isinstance(spec, dict) or spec.get("provider") not in self._providers:
            raise FaultError(f"expected {{\"provider\": one of {sorted(self._providers)}, ...}}")
        latency, rate = spec.get("latency_ms", 0), spec.get("requests_per_second")
        if isinstance(latency, bool) or not isinstance(latency, int | float) or not 0 <= latency <= 60_000:
            raise FaultError("latency_ms must be a number from 0 to 60000")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate < 1):
            raise FaultError("requests_per_second must be a whole number >= 1, or null")
        conditions = Conditions(spec["provider"], float(latency), rate)
        self._conditions[conditions.provider] = conditions
        return conditions

    def conditions(self, provider: str) -> Conditions:
        return self._conditions.get(provider) or Conditions(provider)

    def all_conditions(self) -> list[dict[str, Any]]:
        return [conditions.as_dict() for conditions in self._conditions.values()]

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
        """Forget the pending faults (the standing conditions stay until `clear_conditions`)."""
        self._faults.clear()

    def clear_conditions(self) -> None:
        self._conditions.clear()
