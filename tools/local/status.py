"""`python -m tools.local status`: is the stack running, and does each part answer?"""

from __future__ import annotations

import json
from typing import Any

import requests

from .layout import Layout
from .lock import pid_alive, read


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 500
    except requests.RequestException:
        return False


def run_status(layout: Layout) -> int:
    lock = read(layout.lock_path)
    pid = int((lock or {}).get("pid") or 0)
    if not pid or not pid_alive(pid):
        print(f"not running (no live supervisor for {layout.state_dir}); start it with `make up`")
        return 3
    try:
        endpoints: dict[str, Any] = json.loads(layout.endpoints_path.read_text())
    except (OSError, ValueError):
        print(f"starting (supervisor pid {pid}); {layout.endpoints_path} is not written yet")
        return 1
    checks = {f"function {name}": info["url"] for name, info in endpoints["functions"].items()}
    checks.update({f"{name} emulator": f"http://{host}/" for name, host in endpoints["emulators"].items()})
    checks["provider sandbox"] = endpoints["sandbox"]["state"]
    checks["push relay"] = endpoints["push_relay"]
    healthy = True
    print(f"supervisor pid {pid}, project {endpoints['project_id']}")
    for name, url in checks.items():
        ok = _answers(url)
        healthy &= ok
        print(f"  {'✓' if ok else '✗'} {name:<28} {url}")
    return 0 if healthy else 1
