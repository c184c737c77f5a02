"""`make status`: is the local stack running, and does every part answer?

Probes only: the dead-letter backlog is looked at and put back (docs/tools.md; exit codes: docs/cli.md).
"""

from __future__ import annotations

import concurrent.futures
import json
from dataclasses import dataclass
from typing import Any

import requests

from components.catalog import Catalog
from tools.exit_codes import ExitCode
from tools.project_files import read_catalog

from . import pubsub_wiring
from .layout import Layout, port_in_use
from .lock import cmdline, is_supervisor, pid_alive, read

PROBE_TIMEOUT_SECONDS = 5.0
EMULATORS = {"firestore": "Firestore", "pubsub": "Pub/Sub", "auth": "Auth"}
# Enough to tell "some" from "none"; the replay command lists them all.
BACKLOG_PEEK = 100


@dataclass(frozen=True)
class Check:
    part: str
    ok: bool
    detail: str


def _answers(url: str) -> tuple[bool, str]:
    try:
        status = requests.get(url, timeout=PROBE_TIMEOUT_SECONDS).status_code
    except requests.RequestException as exc:
        return False, f"{url}  does not answer ({type(exc).__name__})"
    if status >= 500:
        return False, f"{url}  answers {status}"
    return True, url


def http_checks(endpoints: dict[str, Any]) -> dict[str, str]:
    """Part name -> URL that answers GET when the part is up."""
    checks = {f"function {name}": info["url"] for name, info in endpoints["functions"].items()}
    checks.update({f"{EMULATORS.get(name, name)} emulator": f"http://{host}/"
                   for name, host in endpoints["emulators"].items()})
    checks["provider sandbox"] = endpoints["sandbox"]["state"]
    checks["push relay"] = endpoints["push_relay"]
    return checks


def bridge_check(lock: dict[str, Any], catalog: Catalog) -> Check | None:
    specs = catalog.by_trigger("firestore")
    if not specs:
        return None
    routes = ", ".join(f"{spec.trigger.document} -> {spec.name}" for spec in specs)
    for pgid_text, command in (lock.get("children") or {}).items():
        if "tools.local.trigger_bridge" in command:
            pgid = int(pgid_text)
            if pid_alive(pgid) and cmdline(pgid) == command:
                return Check("firestore trigger bridge", True, f"{routes} (pid {pgid})")
            return Check("firestore trigger bridge", False,
                         f"{routes}: its process {pgid} has exited; see its log trigger-bridge.log")
    return Check("firestore trigger bridge", False, "not in the supervisor's list of processes")


def _pubsub(endpoints: dict[str, Any], path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    url = f"http://{endpoints['emulators']['pubsub']}/v1/projects/{endpoints['project_id']}/{path}"
    if body is None:
        response = requests.get(url, timeout=PROBE_TIMEOUT_SECONDS)
    else:
        response = requests.post(url, json=body, timeout=PROBE_TIMEOUT_SECONDS)
    response.raise_for_status()
    return response.json() if response.content else {}


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def wiring_check(endpoints: dict[str, Any], catalog: Catalog) -> Check:
    """Every topic, dead-letter topic and subscription and push subscription the catalog declares."""
    try:
        topics = {_short(t["name"]) for t in _pubsub(endpoints, "topics?pageSize=1000").get("topics", [])}
        subscriptions = {
            _short(s["name"]): s
            for s in _pubsub(endpoints, "subscriptions?pageSize=1000").get("subscriptions", [])
        }
    except (requests.RequestException, ValueError) as exc:
        return Check("Pub/Sub wiring", False,
                     f"could not list topics and subscriptions ({type(exc).__name__})")
    problems = []
    for topic in catalog.topics:
        for name in (topic, pubsub_wiring.dead_letter_topic(topic)):
            if name not in topics:
                problems.append(f"topic {name} missing")
        dead_letters = subscriptions.get(pubsub_wiring.dead_letter_subscription(topic))
        if dead_letters is None:
            problems.append(f"subscription {pubsub_wiring.dead_letter_subscription(topic)} missing")
    pushes = 0
    for spec in catalog.by_trigger("pubsub"):
        topic = spec.trigger.topic or ""
        name = pubsub_wiring.push_subscription(topic, spec.name)
        subscription = subscriptions.get(name)
        if subscription is None:
            problems.append(f"push subscription {name} missing")
            continue
        pushes += 1
        endpoint = (subscription.get("pushConfig") or {}).get("pushEndpoint", "")
        if endpoint != f"{endpoints['push_relay']}/{spec.name}":
            problems.append(f"{name} pushes to {endpoint or 'nothing'}, not the push relay")
        dead_letter_topic = (subscription.get("deadLetterPolicy") or {}).get("deadLetterTopic", "")
        if _short(dead_letter_topic) != pubsub_wiring.dead_letter_topic(topic):
            problems.append(f"{name} has no dead-letter policy to {pubsub_wiring.dead_letter_topic(topic)}")
    if problems:
        return Check("Pub/Sub wiring", False, "; ".join(problems) + " (restart `make up` to wire it again)")
    count = len(catalog.topics)
    return Check("Pub/Sub wiring", True,
                 f"{count} topics, {count} dead-letter topics and subscriptions, {pushes} push subscriptions")


def dead_letter_backlog(endpoints: dict[str, Any], catalog: Catalog) -> dict[str, int]:
    """Topic -> messages waiting in its dead-letter subscription (at most BACKLOG_PEEK counted). The
    messages are pulled and put straight back (ack deadline 0), so they stay for `make replay-dlq`."""
    backlog = {}
    for topic in catalog.topics:
        subscription = f"subscriptions/{pubsub_wiring.dead_letter_subscription(topic)}"
        answer = _pubsub(endpoints, f"{subscription}:pull",
                         {"maxMessages": BACKLOG_PEEK, "returnImmediately": True})
        received = answer.get("receivedMessages", [])
        if received:
            _pubsub(endpoints, f"{subscription}:modifyAckDeadline",
                    {"ackIds": [item["ackId"] for item in received], "ackDeadlineSeconds": 0})
            backlog[topic] = len({item["message"]["messageId"] for item in received})
    return backlog


def stack_ports(layout: Layout) -> dict[str, int] | None:
    """Part -> port of the last stack in this state directory, from the endpoints.json a killed supervisor
    left (it may have run on another port base); None when it left none (nothing says which ports were
    its own)."""
    try:
        endpoints = json.loads(layout.endpoints_path.read_text())
    except (OSError, ValueError):
        return None
    ports = {}
    for part, url in http_checks(endpoints).items():
        host = url.removeprefix("http://").split("/", 1)[0]
        ports[part] = int(host.rsplit(":", 1)[1])
    return ports


def leftovers(layout: Layout, lock: dict[str, Any] | None) -> list[str]:
    """What a stack that is not running left behind: listening ports and live process groups."""
    found = [f"port {port} ({part}) still listens" for part, port in (stack_ports(layout) or {}).items()
             if port_in_use(port)]
    for pgid_text, command in ((lock or {}).get("children") or {}).items():
        pgid = int(pgid_text)
        if pid_alive(pgid) and cmdline(pgid) == command:
            found.append(f"process group {pgid} still runs: {command[:60]}")
    return found


def part_checks(endpoints: dict[str, Any], lock: dict[str, Any], catalog: Catalog) -> list[Check]:
    """Every part `make up` starts, probed in parallel (the dead-letter backlog aside)."""
    urls = http_checks(endpoints)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(urls) + 2) as pool:
        answers = {part: pool.submit(_answers, url) for part, url in urls.items()}
        wiring = pool.submit(wiring_check, endpoints, catalog)
        checks = [Check(part, *future.result()) for part, future in answers.items()]
        checks.append(wiring.result())
    bridge = bridge_check(lock, catalog)
    if bridge:
        checks.append(bridge)
    return checks


def run_status(layout: Layout, catalog: Catalog | None = None) -> ExitCode:
    catalog = catalog or read_catalog()
    lock = read(layout.lock_path)
    pid = int((lock or {}).get("pid") or 0)
    if not pid or not is_supervisor(pid):
        left = leftovers(layout, lock)
        if not left:
            print(f"not running (no live supervisor for {layout.state_dir}); start it with `make up`")
            # Listeners no stack of this state directory recorded belong to other programs: `make up`
            # needs other ports then, it did not leave them.
            busy = [f"{port} ({part})" for part, port in layout.named_ports().items() if port_in_use(port)]
            if busy and stack_ports(layout) is None:
                print(f"  note: other programs listen on port(s) {', '.join(busy)}; "
                      "start it beside them with LOCAL_PORT_BASE=<port>")
            return ExitCode.ENVIRONMENT
        print(f"not running, but a stack that was stopped uncleanly left {len(left)} thing(s) behind; "
              "`make up` stops the process groups it recorded, other listeners must be stopped by hand:")
        for item in left:
            print(f"  ✗ {item}")
        return ExitCode.LEFTOVERS
    try:
        endpoints: dict[str, Any] = json.loads(layout.endpoints_path.read_text())
    except (OSError, ValueError):
        print(f"starting (supervisor pid {pid}); {layout.endpoints_path} is not written yet")
        return ExitCode.WAITING
    checks = part_checks(endpoints, lock or {}, catalog)
    backlog: dict[str, int] = {}
    pubsub_up = next((c.ok for c in checks if c.part == "Pub/Sub emulator"), False)
    if pubsub_up:
        try:
            backlog = dead_letter_backlog(endpoints, catalog)
        except (requests.RequestException, ValueError) as exc:
            checks.append(Check("dead letters", False, f"could not be read ({type(exc).__name__})"))
    print(f"supervisor pid {pid}, project {endpoints['project_id']}")
    for check in checks:
        print(f"  {'✓' if check.ok else '✗'} {check.part:<28} {check.detail}")
    for topic, count in backlog.items():
        print(f"  ! {'dead letters':<28} {count} message(s) in "
              f"{pubsub_wiring.dead_letter_subscription(topic)}: inspect with "
              f"`make replay-dlq TOPIC={topic} ARGS=--dry-run`, replay with `make replay-dlq TOPIC={topic}`")
    if not backlog and pubsub_up:
        print(f"  ✓ {'dead letters':<28} none waiting")
    failed = [check.part for check in checks if not check.ok]
    if failed:
        print(f"{len(failed)} part(s) not healthy: {', '.join(failed)}")
        return ExitCode.FAILED
    if backlog:
        return ExitCode.DEAD_LETTERS
    print("healthy")
    return ExitCode.OK
