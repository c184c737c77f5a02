"""`ops_console`: the ops console's HTTP entry point under /ops/ (catalog path `/ops/**`), its pages
rendered on the server from templates/ (routes in ROUTES).

Every page that shows data requires an operator (access.py); anyone else gets a bare 401 or 403
(docs/architecture.md, "Ops console").
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import flask
import jinja2
import requests
from firebase_admin import auth
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect, Rule

from launchready.handlers.ops_console import access, queries, replay, runbook
from launchready.platform import log
from launchready.platform.clients import db, firebase_app
from launchready.platform.config import settings
from launchready.platform.web import health
from launchready.records import runs

FUNCTION = "ops_console"
PREFIX = "/ops"
MAX_FORM_BYTES = 16 * 1024
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)

ROUTES = Map(
    [
        # Like every entry point, GET / answers health (the local runner's readiness probe); behind
        # Firebase Hosting only /ops/** reaches the service, so the uptime check uses /ops/healthz.
        Rule("/", endpoint="healthz", methods=["GET"]),
        Rule(f"{PREFIX}/healthz", endpoint="healthz", methods=["GET"]),
        Rule(f"{PREFIX}/signin", endpoint="signin", methods=["GET"]),
        Rule(f"{PREFIX}/session", endpoint="session", methods=["POST"]),
        Rule(f"{PREFIX}/signout", endpoint="signout", methods=["POST"]),
        Rule(f"{PREFIX}/", endpoint="overview", methods=["GET"]),
        Rule(f"{PREFIX}/timeline", endpoint="timeline", methods=["GET"]),
        Rule(f"{PREFIX}/journey/<correlation_id>", endpoint="journey", methods=["GET"]),
        Rule(f"{PREFIX}/customer", endpoint="customer", methods=["GET"]),
        Rule(f"{PREFIX}/dead-letters/<record_id>/replay", endpoint="replay", methods=["POST"]),
        Rule(f"{PREFIX}/sandbox", endpoint="sandbox", methods=["GET"]),
    ],
    strict_slashes=False,
)


def ops_console(request: flask.Request) -> flask.Response:
    stopwatch = log.Stopwatch()
    with log.bound(function=FUNCTION, correlation_id=log.new_correlation_id()):
        try:
            endpoint, values = ROUTES.bind_to_environ(request.environ).match()
        except NotFound:
            return _bare(404, "not found")
        except MethodNotAllowed:
            return _bare(405, "method not allowed")
        except RequestRedirect as exc:  # /ops -> /ops/
            return _redirect(exc.new_url, code=308)
        if endpoint == "healthz":
            return health(FUNCTION)
        if endpoint == "signin":
            return _page(
                "signin.html",
                operator=None,
                auth_url=_identity_toolkit_url(),
                next=_safe_next(request.args.get("next")),
            )
        try:
            response = _dispatch(endpoint, dict(values), request)
        except access.Denied as exc:
            log.warning("console access denied", status=exc.status, reason=exc.reason, path=request.path)
            return _denied(exc)
        except replay.ReplayRefused as exc:
            return _bare(exc.status, str(exc))
        except Exception as exc:
            log.error("console request failed", error=repr(exc), path=request.path, latency_ms=stopwatch.ms)
            runs.record_run(FUNCTION, runs.FAILED, stopwatch.ms, repr(exc))
            return _bare(500, "internal error")
        log.info("console request", path=request.path, status=response.status_code, latency_ms=stopwatch.ms)
        runs.record_run(FUNCTION, runs.OK, stopwatch.ms)
        return response


def _dispatch(endpoint: str, values: dict[str, Any], request: flask.Request) -> flask.Response:
    if endpoint == "session":
        return _session(request)
    if endpoint == "signout":
        access.check_origin(request)
        response = _redirect(f"{PREFIX}/signin", code=303)
        response.delete_cookie(access.SESSION_COOKIE, path="/")
        return response
    operator = access.require_operator(request)
    client = db()
    if endpoint == "overview":
        return _page(
            "overview.html",
            operator=operator,
            runbook=runbook.STEPS,
            notice=request.args.get("notice", ""),
            **queries.overview(client),
        )
    if endpoint == "timeline":
        before = _parse_time(request.args.get("before"))
        return _page("timeline.html", operator=operator, journeys=queries.timeline(client, before=before))
    if endpoint == "journey":
        found = queries.journey(client, values["correlation_id"])
        if found is None:
            return _bare(404, "no journey with this correlation id")
        return _page(
            "journey.html",
            operator=operator,
            runbook=runbook.STEPS,
            notice=request.args.get("notice", ""),
            **found,
        )
    if endpoint == "customer":
        term = request.args.get("q", "")[:200]
        uid = queries.find_customer(client, term) if term else None
        view = queries.customer(client, uid, _claims(uid)) if uid else None
        return _page("customer.html", operator=operator, term=term, view=view)
    if endpoint == "replay":
        if (request.content_length or 0) > MAX_FORM_BYTES:
            return _bare(413, "form too large")
        access.check_csrf(request, operator)
        audit = replay.replay_dead_letter(client, values["record_id"], operator)
        log.info(
            "dead letter replayed from the console",
            dead_letter=values["record_id"],
            actor_uid=operator.uid,
            message_id=audit["message_id"],
        )
        notice = quote(f"Replayed dead letter {values['record_id']} as message {audit['message_id']}")
        target = (
            f"{PREFIX}/journey/{quote(audit['correlation_id'])}" if audit["correlation_id"] else f"{PREFIX}/"
        )
        return _redirect(f"{target}?notice={notice}", code=303)
    if endpoint == "sandbox":
        sandbox_url = os.environ.get("LAUNCHREADY_SANDBOX_URL", "")
        if not sandbox_url:  # set by the local runner only (tools/local/environment.py)
            return _bare(404, "the provider sandbox exists only in the local environment")
        calls = requests.get(f"{sandbox_url}/_sandbox/requests", timeout=5).json().get("requests", [])
        return _page(
            "sandbox.html", operator=operator, calls=list(reversed(calls))[:200], sandbox_url=sandbox_url
        )
    return _bare(404, "not found")


def _session(request: flask.Request) -> flask.Response:
    """Exchange an ID token (form field `id_token`) for the `__session` cookie, for operators only."""
    access.check_origin(request)
    if (request.content_length or 0) > MAX_FORM_BYTES:
        return _bare(413, "form too large")
    token = request.form.get("id_token", "")
    claims = access.verify(token)
    if claims.get(access.OPS_CLAIM) is not True:
        raise access.Denied(403, "the account has no ops role")
    response = _redirect(_safe_next(request.form.get("next")), code=303)
    # The cookie lives as long as the token; after that the operator signs in again.
    max_age = max(0, int(float(claims.get("exp", 0)) - time.time()))
    response.set_cookie(
        access.SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=request.is_secure or request.headers.get("X-Forwarded-Proto") == "https",
        samesite="Strict",
    )
    return response


def _claims(uid: str) -> dict[str, Any]:
    try:
        return dict(auth.get_user(uid, app=firebase_app()).custom_claims or {})
    except auth.UserNotFoundError:
        return {}


def _identity_toolkit_url() -> str:
    """Where the sign-in form posts email and password: the Auth emulator locally, Google otherwise."""
    emulator = os.environ.get("FIREBASE_AUTH_EMULATOR_HOST")
    base = (
        f"http://{emulator}/identitytoolkit.googleapis.com"
        if emulator
        else "https://identitytoolkit.googleapis.com"
    )
    key = os.environ.get("FIREBASE_WEB_API_KEY") or ("fake-api-key" if emulator else "")
    return f"{base}/v1/accounts:signInWithPassword?key={quote(key)}" if key else ""


def _safe_next(value: str | None) -> str:
    # Only a path of this console: never an open redirect.
    if value and value.startswith(f"{PREFIX}/") and not value.startswith("//") and "\\" not in value:
        return value
    return f"{PREFIX}/"


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _page(template: str, **context: Any) -> flask.Response:
    body = TEMPLATES.get_template(template).render(
        prefix=PREFIX,
        environment=settings().environment,
        now=datetime.now(UTC),
        local=bool(os.environ.get("LAUNCHREADY_SANDBOX_URL")),
        mask=access.mask_email,
        fmt_time=_fmt_time,
        **context,
    )
    return _secured(flask.Response(body, status=200, mimetype="text/html"))


def _denied(exc: access.Denied) -> flask.Response:
    body = TEMPLATES.get_template("denied.html").render(prefix=PREFIX, status=exc.status)
    return _secured(flask.Response(body, status=exc.status, mimetype="text/html"))


def _redirect(location: str, code: int) -> flask.Response:
    response = flask.Response("", status=code)
    response.headers["Location"] = location
    return _secured(response)


def _bare(status: int, message: str) -> flask.Response:
    return _secured(flask.Response(message + "\n", status=status, mimetype="text/plain"))


def _secured(response: flask.Response) -> flask.Response:
    # Operator data must not be cached by Firebase Hosting's CDN or the browser, framed or sniffed.
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self' https://identitytoolkit.googleapis.com http://127.0.0.1:* http://localhost:*; "
        "frame-ancestors 'none'; form-action 'self'"
    )
    return response


def _fmt_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "—" if value in (None, "") else str(value)
