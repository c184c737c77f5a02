"""Google Play: the Play Developer API calls the functions make, held to the discovery document, and
real-time developer notifications (RTDN) published to a Pub/Sub topic.

Other methods of the document answer 501 (paths, auth, errors, control: docs/tools.md).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
from typing import Any

from ..clock import SandboxClock
from ..deliveries import EMULATOR_HOST, TOPIC, Delivery, publish
from ..messages import SandboxRequest, SandboxResponse
from ..play_discovery import Discovery, Method
from .base import bearer_token
from .google_play_subscriptions import FULL_REFUND, PARTIAL_REFUND, Event, Ledger, Purchase
from .store import ControlError, StoreProvider, body_of, option, sandbox_bug

SERVED = frozenset({
    "androidpublisher.purchases.subscriptionsv2.get",
    "androidpublisher.purchases.subscriptionsv2.cancel",
    "androidpublisher.purchases.subscriptionsv2.revoke",
    "androidpublisher.purchases.subscriptions.acknowledge",
})
DEFAULT_PACKAGE = "com.example.launchready"
# ExternalAccountIds.obfuscatedAccountId: "limited to 64 characters" (discovery document).
MAX_ACCOUNT_ID = 64
_NOT_OWNED = "The product purchase is not owned by the user."
_INVALID_STATE = "The purchase is not in a valid state to perform the desired operation."
_AUTH_HINT = ("Expected OAuth 2 access token, login cookie or other valid authentication credential. See "
              "https://developers.google.com/identity/sign-in/web/devconsole-project.")


class GooglePlay(StoreProvider):
    name = "google_play"
    path_prefixes = ("/androidpublisher/",)

    def __init__(self, clock: SandboxClock | None = None) -> None:
        self.discovery = Discovery()
        generated = f"ya29.sandbox-{secrets.token_hex(24)}"
        self.access_token = os.environ.get("SANDBOX_PLAY_ACCESS_TOKEN") or generated
        self.package_name = os.environ.get("SANDBOX_PLAY_PACKAGE_NAME") or DEFAULT_PACKAGE
        self.rtdn_topic = os.environ.get("SANDBOX_PLAY_RTDN_TOPIC", "")
        self.emulator_host = os.environ.get("PUBSUB_EMULATOR_HOST", "")
        super().__init__(clock)

    def reset(self) -> None:
        self.ledger = Ledger()
        self.notifications: list[dict[str, Any]] = []

    def state(self) -> dict[str, list[dict[str, Any]]]:
        now = self._now_ms()
        for purchase in self.ledger.by_token.values():
            self.ledger.settle(purchase, now)
        return {"play_subscriptions": [p.view() for p in self.ledger.by_token.values()],
                "play_notifications": list(self.notifications)}

    def _now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    # ---- the API --------------------------------------------------------------------------------

    def error(self, status: int, code: str = "", message: str = "", location: str = "") -> SandboxResponse:
        """Play's error body: {"error": {"code", "message", "errors": [{message, domain, reason, location?,
        locationType?}]}}; `code` is the reason."""
        reason = code or {400: "invalid", 401: "authError", 403: "permissionDenied", 404: "notFound",
                          409: "concurrentUpdate", 429: "rateLimitExceeded"}.get(status, "backendError")
        message = message or ("Backend Error" if status >= 500 else "Invalid Value")
        item: dict[str, Any] = {"message": message, "domain": "androidpublisher", "reason": reason}
        if location:
            item.update(location=location, locationType="parameter")
        return SandboxResponse(status, {"error": {"code": status, "message": message, "errors": [item]}})

    def _front_end_error(self, status: int, grpc_status: str, message: str, reason: str,
                         location: str = "", headers: dict[str, str] | None = None) -> SandboxResponse:
        """An error of Google's API front end (before Play sees the call): domain global, with a `status`."""
        item: dict[str, Any] = {"message": message, "domain": "global", "reason": reason}
        if location:
            where = "header" if location == "Authorization" else "parameter"
            item.update(location=location, locationType=where)
        body = {"error": {"code": status, "message": message, "errors": [item], "status": grpc_status}}
        return SandboxResponse(status, body, headers or {})

    def authenticate(self, request: SandboxRequest) -> SandboxResponse | None:
        token = bearer_token(request)
        if not token:
            message = f"Request is missing required authentication credential. {_AUTH_HINT}"
            return self._front_end_error(401, "UNAUTHENTICATED", message, "required", "Authorization")
        if not secrets.compare_digest(token, self.access_token):
            return self._front_end_error(
                401, "UNAUTHENTICATED", f"Request had invalid authentication credentials. {_AUTH_HINT}",
                "authError", "Authorization",
                {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'})
        return None

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        method, parameters = self.discovery.route(request.method, request.path)
        if method is None:
            page = (f"<!DOCTYPE html><p><b>404.</b> The requested URL <code>{request.path}</code> was not "
                    "found on this server. That's all we know.")
            return SandboxResponse(404, page, content_type="text/html; charset=UTF-8")
        if method.id not in SERVED:
            return self._front_end_error(501, "UNIMPLEMENTED", f"{method.id} is not played by the provider "
                                         "sandbox", "notImplemented")
        violation = self.discovery.check_request(method, request.query, request.body, request.body_error)
        if violation is not None:
            return self._front_end_error(400, "INVALID_ARGUMENT", violation.message, "badRequest",
                                         violation.field)
        if parameters["packageName"] not in self._packages():
            return self.error(404, "applicationNotFound",
                              "No application was found for the given package name.", "packageName")
        response = self._call(method, parameters, request.body or {})
        if 200 <= response.status < 300:
            problems = self.discovery.check_response(method, response.body)
            if problems:
                return sandbox_bug(self.name, f"answer to {method.id}", problems)
        return response

    def _packages(self) -> set[str]:
        return {self.package_name} | {purchase.package_name for purchase in self.ledger.by_token.values()}

    def _call(self, method: Method, parameters: dict[str, str], body: dict[str, Any]) -> SandboxResponse:
        purchase = self.ledger.find(parameters["token"], self._now_ms())
        if purchase is None or purchase.package_name != parameters["packageName"]:
            return self.error(404, "purchaseTokenNotFound", "The purchase token was not found.", "token")
        verb = method.id.rsplit(".", 1)[-1]
        if verb == "get":
            return SandboxResponse(200, purchase.resource())
        if verb == "acknowledge":
            return self._acknowledge(purchase, parameters["subscriptionId"], body)
        if purchase.state == "EXPIRED":
            return self.error(400, "invalidPurchaseState", _INVALID_STATE, "token")
        if verb == "cancel":
            kind = body["cancellationContext"]["cancellationType"]
            if kind == "CANCELLATION_TYPE_UNSPECIFIED":
                field = "cancellation_context.cancellation_type"
                return self._front_end_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument: "
                                             f"{field} is required.", "badRequest", field)
            if purchase.state not in ("ACTIVE", "IN_GRACE_PERIOD"):
                return self.error(400, "invalidPurchaseState", _INVALID_STATE, "token")
            event = self.ledger.cancel(purchase, self._now_ms(), by_developer=True,
                                       restorable=kind == "USER_REQUESTED_STOP_RENEWALS")
            self._push(purchase, event)
            return SandboxResponse(200, {})
        return self._revoke(purchase, body["revocationContext"])

    def _acknowledge(self, purchase: Purchase, subscription_id: str, body: dict[str, Any]) -> SandboxResponse:
        if subscription_id != purchase.product_id:
            return self.error(400, "purchaseTokenDoesNotMatchProductId",
                              "The purchase token does not match the product ID.", "token")
        if purchase.state == "EXPIRED":
            return self.error(400, "productNotOwnedByUser", _NOT_OWNED)
        if purchase.acknowledged:
            return self.error(400, "invalidPurchaseState", _INVALID_STATE, "token")
        purchase.acknowledged = True
        ids = body.get("externalAccountIds") or {}
        purchase.account_id = purchase.account_id or ids.get("obfuscatedAccountId")
        purchase.profile_id = purchase.profile_id or ids.get("obfuscatedProfileId")
        return SandboxResponse(204, None)

    def _revoke(self, purchase: Purchase, context: dict[str, Any]) -> SandboxResponse:
        kinds = [kind for kind in ("fullRefund", "proratedRefund", "itemBasedRefund") if kind in context]
        if len(kinds) != 1:
            message = ("Request contains an invalid argument: revocation_context takes exactly one of "
                       "full_refund, prorated_refund, item_based_refund.")
            return self._front_end_error(400, "INVALID_ARGUMENT", message, "badRequest", "revocation_context")
        item = context.get("itemBasedRefund")
        if item is not None and item.get("productId") != purchase.product_id:
            field = "revocation_context.item_based_refund.product_id"
            return self.error(400, "invalid", "Invalid Value", field)
        refund_type = PARTIAL_REFUND if kinds[0] == "proratedRefund" else FULL_REFUND
        if purchase.refunded:
            return self.error(400, "invalidPurchaseState", _INVALID_STATE, "token")
        event = self.ledger.refund(purchase, self._now_ms(), refund_type=refund_type, revoke=True)
        self._push(purchase, event)
        return SandboxResponse(200, {})

    # ---- notifications --------------------------------------------------------------------------

    def _push(self, purchase: Purchase, event: Event) -> list[dict[str, Any]]:
        """Publish what `event` says about `purchase`: a subscriptionNotification and/or a
        voidedPurchaseNotification, one message each."""
        records = []
        if event.notification_type is not None:
            records.append(self._publish(purchase.package_name, {"subscriptionNotification": {
                "version": "1.0", "notificationType": event.notification_type,
                "purchaseToken": purchase.token, "subscriptionId": purchase.product_id}}))
        if event.refund_type is not None:
            records.append(self._publish(purchase.package_name, {"voidedPurchaseNotification": {
                "purchaseToken": purchase.token, "orderId": purchase.order_id, "productType": 1,
                "refundType": event.refund_type}}))
        return records

    def _publish(self, package_name: str, content: dict[str, Any]) -> dict[str, Any]:
        notification = {"version": "1.0", "packageName": package_name,
                        "eventTimeMillis": str(self._now_ms()), **content}
        data = json.dumps(notification).encode()
        if self.rtdn_topic and self.emulator_host:
            delivery = publish(self.emulator_host, self.rtdn_topic, data)
        else:
            why = ("no RTDN topic or Pub/Sub emulator (SANDBOX_PLAY_RTDN_TOPIC and PUBSUB_EMULATOR_HOST, or "
                   "POST /_sandbox/google_play/settings); publish message.data yourself")
            delivery = Delivery("NOT_SENT", answer=why)
        record = {"message": {"data": base64.b64encode(data).decode()}, "notification": notification,
                  "delivery": delivery.as_dict()}
        self.notifications.append(record)
        return record

    # ---- control --------------------------------------------------------------------------------

    def control(self, request: SandboxRequest, lock: threading.RLock) -> SandboxResponse:
        # Publishing to the emulator never calls the sandbox back, so all of it runs under the lock.
        route = request.path.removeprefix(self.control_prefix) or "/"
        try:
            with lock:
                if request.method == "GET" and route == "/":
                    return SandboxResponse(200, self._settings())
                if request.method == "GET" and route == "/notifications":
                    return SandboxResponse(200, {"notifications": list(self.notifications)})
                if request.method != "POST":
                    raise ControlError(404, f"no route {request.method} {request.path}")
                body = body_of(request)
                if route == "/settings":
                    return SandboxResponse(200, self._change_settings(body))
                if route == "/test_notification":
                    record = self._publish(self.package_name, {"testNotification": {"version": "1.0"}})
                    return SandboxResponse(200, {"notifications": [record]})
                purchase, event = self._transition(route, body)
                records = self._push(purchase, event) if option(body, "notify", bool, True) else []
                status = 201 if route == "/subscriptions" else 200
                return SandboxResponse(status, {"subscription": purchase.view(), "notifications": records})
        except ControlError as error:
            return error.response()

    def _settings(self) -> dict[str, Any]:
        return {"package_name": self.package_name, "access_token": self.access_token,
                "rtdn_topic": self.rtdn_topic, "pubsub_emulator_host": self.emulator_host,
                "discovery_revision": self.discovery.revision}

    def _change_settings(self, body: dict[str, Any]) -> dict[str, Any]:
        self.package_name = option(body, "package_name", str, self.package_name)
        topic = option(body, "rtdn_topic", str, self.rtdn_topic)
        if topic and not TOPIC.match(topic):
            raise ControlError(400, "rtdn_topic: expected projects/PROJECT/topics/TOPIC")
        host = option(body, "pubsub_emulator_host", str, self.emulator_host)
        if host and not EMULATOR_HOST.match(host):
            raise ControlError(400, "pubsub_emulator_host: the emulator's host:port on the loopback "
                                    "interface (the sandbox never publishes to Google)")
        self.rtdn_topic, self.emulator_host = topic, host
        return self._settings()

    def _transition(self, route: str, body: dict[str, Any]) -> tuple[Purchase, Event]:
        now = self._now_ms()
        if route == "/subscriptions":
            return self._purchase(body, now)
        token, action = self.action_of(route)
        purchase = self.ledger.find(token, now)
        if purchase is None:
            raise ControlError(404, f"no purchase with token {token}")
        if action == "renew":
            return purchase, self.ledger.renew(purchase, now)
        if action == "enter_grace_period":
            return purchase, self.ledger.enter_grace_period(purchase, now, option(body, "grace_days", int, 7))
        if action == "enter_on_hold":
            return purchase, self.ledger.enter_on_hold(purchase, now)
        if action == "pause":
            return purchase, self.ledger.pause(purchase, now, option(body, "days", int, 30))
        if action == "cancel":
            return purchase, self.ledger.cancel(purchase, now, by_developer=False, restorable=True)
        if action == "restore":
            return purchase, self.ledger.restore(purchase, now)
        if action == "expire":
            return purchase, self.ledger.expire(purchase, now)
        if action == "refund":
            refund_type = option(body, "refund_type", str, "full")
            if refund_type not in ("full", "partial"):
                raise ControlError(400, "refund_type: full or partial")
            kind = FULL_REFUND if refund_type == "full" else PARTIAL_REFUND
            return purchase, self.ledger.refund(purchase, now, refund_type=kind,
                                                revoke=option(body, "revoke", bool, True))
        raise ControlError(404, f"no action {action!r}")

    def _purchase(self, body: dict[str, Any], now: int) -> tuple[Purchase, Event]:
        product_id = option(body, "product_id", str)
        if not product_id:
            raise ControlError(400, "product_id is required")
        ids = {name: option(body, name, str) for name in ("obfuscated_account_id", "obfuscated_profile_id")}
        for name, value in ids.items():
            if value is not None and not 0 < len(value) <= MAX_ACCOUNT_ID:
                raise ControlError(400, f"{name}: 1 to {MAX_ACCOUNT_ID} characters, as Play takes it")
        period_days = option(body, "period_days", int, 30)
        if period_days < 1:
            raise ControlError(400, "period_days: at least 1")
        return self.ledger.purchase(
            package_name=option(body, "package_name", str, self.package_name), product_id=product_id,
            base_plan_id=option(body, "base_plan_id", str, "monthly"), period_days=period_days,
            price_micros=option(body, "price_micros", int, 9_990_000),
            currency=option(body, "currency", str, "USD"), region_code=option(body, "region_code", str, "US"),
            test=option(body, "test_purchase", bool, True),
            account_id=ids["obfuscated_account_id"], profile_id=ids["obfuscated_profile_id"], now=now,
        )
