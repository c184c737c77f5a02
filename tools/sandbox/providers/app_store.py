"""App Store: the App Store Server API calls the functions make, and Server Notifications V2 signed by the
sandbox's own chain.

Every answer and every signed payload is held to the library's models (paths, auth, control: docs/tools.md).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from appstoreserverlibrary.models.CheckTestNotificationResponse import CheckTestNotificationResponse
from appstoreserverlibrary.models.JWSRenewalInfoDecodedPayload import JWSRenewalInfoDecodedPayload
from appstoreserverlibrary.models.JWSTransactionDecodedPayload import JWSTransactionDecodedPayload
from appstoreserverlibrary.models.ResponseBodyV2DecodedPayload import ResponseBodyV2DecodedPayload
from appstoreserverlibrary.models.SendTestNotificationResponse import SendTestNotificationResponse
from appstoreserverlibrary.models.StatusResponse import StatusResponse
from appstoreserverlibrary.models.TransactionInfoResponse import TransactionInfoResponse
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .. import apple_models
from ..apple_pki import SigningChain
from ..clock import SandboxClock
from ..deliveries import Delivery, post_notification
from ..messages import SandboxRequest, SandboxResponse
from .app_store_subscriptions import ENVIRONMENTS, STATUSES, Change, Ledger, Subscription
from .base import bearer_token
from .store import ControlError, StoreProvider, body_of, option, sandbox_bug

PRODUCTION_PREFIX = "/production"
_STATUSES = re.compile(r"^/inApps/v1/subscriptions/([^/]+)$")
_TRANSACTION = re.compile(r"^/inApps/v1/transactions/([^/]+)$")
_TEST = "/inApps/v1/notifications/test"
_TEST_STATUS = re.compile(r"^/inApps/v1/notifications/test/([^/]+)$")
AUDIENCE = "appstoreconnect-v1"
MAX_TOKEN_LIFETIME_SECONDS = 3600
CLOCK_SKEW_SECONDS = 60
DEFAULT_BUNDLE_ID = "com.example.launchready"
DEFAULT_APP_APPLE_ID = 1234567890
DEFAULT_GROUP = "20000001"
# Apple offers billing grace periods of 3, 16 or 28 days; 16 is the sandbox's default.
DEFAULT_GRACE_DAYS = 16
# errorCode -> errorMessage of the APIError values the sandbox answers. The codes are Apple's
# (https://developer.apple.com/documentation/appstoreserverapi/error-codes, APIError in
# appstoreserverlibrary/api_client.py); the message texts are the sandbox's: the library reads the code.
ERRORS = {
    4000000: "Invalid request.",
    4000006: "Invalid transaction id.",
    4000031: "Invalid request status.",
    4040008: "Either the test notification token is expired or the notification and status are not yet "
             "available.",
    4040010: "Transaction id not found.",
    4290000: "Rate limit exceeded.",
    5000000: "An unknown error occurred.",
    5000001: "An unknown error occurred. Please try again.",
}


class _Breach(Exception):
    """Something the sandbox was about to send breaks the library's models."""

    def __init__(self, what: str, problems: list[str]) -> None:
        super().__init__(what)
        self.what, self.problems = what, problems


@dataclass(frozen=True)
class ApiKey:
    """An In-App Purchase key as App Store Connect issues it: a 10-character key ID, the team's issuer ID
    (a UUID) and a P-256 private key the developer downloads as a .p8 (PKCS#8 PEM)."""

    key_id: str
    issuer_id: str
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> ApiKey:
        key_id = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(10))
        return cls(key_id, str(uuid.uuid4()), ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def load_or_generate(cls, directory: Path) -> ApiKey:
        meta, p8 = directory / "api-key.json", directory / "api-key.p8"
        if meta.is_file() and p8.is_file():
            ids = json.loads(meta.read_text())
            key = serialization.load_pem_private_key(p8.read_bytes(), password=None)
            if isinstance(key, ec.EllipticCurvePrivateKey):
                return cls(ids["key_id"], ids["issuer_id"], key)
        made = cls.generate()
        directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(p8, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as key_file:
            key_file.write(made.pem)
        meta.write_text(json.dumps({"key_id": made.key_id, "issuer_id": made.issuer_id}) + "\n")
        return made

    @property
    def pem(self) -> str:
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()).decode()


class AppStore(StoreProvider):
    name = "app_store"
    path_prefixes = ("/inApps/", PRODUCTION_PREFIX + "/inApps/")

    def __init__(self, clock: SandboxClock | None = None) -> None:
        directory = os.environ.get("SANDBOX_APPLE_DIR")
        self.chain = SigningChain.load_or_generate(Path(directory)) if directory else SigningChain.generate()
        self.api_key = ApiKey.load_or_generate(Path(directory)) if directory else ApiKey.generate()
        self.bundle_id = os.environ.get("SANDBOX_APPLE_BUNDLE_ID") or DEFAULT_BUNDLE_ID
        self.app_apple_id = int(os.environ.get("SANDBOX_APPLE_APP_APPLE_ID") or DEFAULT_APP_APPLE_ID)
        self.server_urls = {"Sandbox": os.environ.get("SANDBOX_APPLE_NOTIFICATION_URL", ""), "Production": ""}
        self._records_lock = threading.Lock()  # test notifications are recorded by a delivery thread
        super().__init__(clock)

    def reset(self) -> None:
        self.ledger = Ledger()
        self.notifications: list[dict[str, Any]] = []
        self._tests: dict[str, dict[str, Any]] = {}

    def state(self) -> dict[str, list[dict[str, Any]]]:
        return {"app_store_subscriptions": [s.view() for s in self.ledger.by_original_id.values()],
                "app_store_notifications": list(self.notifications)}

    def _now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    # ---- the API --------------------------------------------------------------------------------

    def error(self, status: int, code: str = "", message: str = "") -> SandboxResponse:
        if status == 401:
            return SandboxResponse(401, None)  # Apple answers an invalid token with no error body
        number = int(code) if code.isdigit() else {400: 4000000, 404: 4040010, 429: 4290000,
                                                    503: 5000001}.get(status, 5000000)
        body = {"errorCode": number, "errorMessage": message or ERRORS.get(number, "")}
        return SandboxResponse(status, body)

    def authenticate(self, request: SandboxRequest) -> SandboxResponse | None:
        token = bearer_token(request)
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "ES256" or header.get("kid") != self.api_key.key_id:
                return self.error(401)
            claims = jwt.decode(token, self.api_key.private_key.public_key(), algorithms=["ES256"],
                                audience=AUDIENCE, issuer=self.api_key.issuer_id, leeway=CLOCK_SKEW_SECONDS,
                                options={"require": ["exp", "aud", "iss", "bid"]})
        except jwt.PyJWTError:
            return self.error(401)
        # Real time, not the sandbox clock: the client signs with its own clock.
        issued = claims.get("iat", time.time())
        too_long = claims["exp"] - issued > MAX_TOKEN_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS
        if claims["bid"] != self.bundle_id or too_long:
            return self.error(401)
        return None

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        production = request.path.startswith(PRODUCTION_PREFIX + "/")
        environment = "Production" if production else "Sandbox"
        path = request.path.removeprefix(PRODUCTION_PREFIX) if production else request.path
        try:
            if request.method == "GET" and (match := _STATUSES.match(path)):
                return self._statuses(environment, match.group(1), request.query.get("status", []))
            if request.method == "GET" and (match := _TRANSACTION.match(path)):
                return self._transaction_info(environment, match.group(1))
            if request.method == "POST" and path == _TEST:
                return self._request_test(environment)
            if request.method == "GET" and (match := _TEST_STATUS.match(path)):
                return self._test_status(match.group(1))
        except _Breach as breach:
            return sandbox_bug(self.name, breach.what, breach.problems)
        return SandboxResponse(404, None)

    def _subscription(self, environment: str, transaction_id: str) -> Subscription | SandboxResponse:
        if not transaction_id.isdigit():
            return self.error(400, "4000006")
        subscription = self.ledger.find(transaction_id)
        if subscription is None or (subscription.environment, subscription.bundle_id) != (environment,
                                                                                           self.bundle_id):
            return self.error(404, "4040010")
        return subscription

    def _statuses(self, environment: str, transaction_id: str, statuses: list[str]) -> SandboxResponse:
        if not all(value.isdigit() and int(value) in STATUSES for value in statuses):
            return self.error(400, "4000031")
        found = self._subscription(environment, transaction_id)
        if isinstance(found, SandboxResponse):
            return found
        wanted = {int(value) for value in statuses}
        signed_date = self._now_ms()
        groups: dict[str, list[dict[str, Any]]] = {}
        for subscription in self.ledger.of_customer(found):
            if wanted and subscription.status not in wanted:
                continue
            groups.setdefault(subscription.group, []).append({
                "status": subscription.status,
                "originalTransactionId": subscription.original_transaction_id,
                "signedTransactionInfo": self._sign_transaction(subscription, signed_date),
                "signedRenewalInfo": self._sign_renewal(subscription, signed_date),
            })
        data = [{"subscriptionGroupIdentifier": group, "lastTransactions": items}
                for group, items in groups.items()]
        body = {**self._app(environment), "data": data}
        return self._answer(StatusResponse, body)

    def _transaction_info(self, environment: str, transaction_id: str) -> SandboxResponse:
        found = self._subscription(environment, transaction_id)
        if isinstance(found, SandboxResponse):
            return found
        transaction = next((t for t in found.transactions if t["transactionId"] == transaction_id), None)
        if transaction is None:  # an appTransactionId names a customer, not a transaction
            return self.error(404, "4040010")
        payload = {**transaction, "signedDate": self._now_ms()}
        return self._answer(TransactionInfoResponse,
                            {"signedTransactionInfo": self._sign(JWSTransactionDecodedPayload, payload)})

    def _request_test(self, environment: str) -> SandboxResponse:
        """Request a Test Notification: a TEST notification to the environment's server URL, sent after
        the answer (Apple sends it asynchronously); its outcome is read with Get Test Notification Status."""
        signed_date = self._now_ms()
        record = self._notification(Change("TEST"), environment, None, signed_date)
        token = f"{uuid.uuid4()}_{signed_date}"
        self._tests[token] = record
        threading.Thread(target=self._deliver, args=(record,), name="app-store-test-notification",
                         daemon=True).start()
        return self._answer(SendTestNotificationResponse, {"testNotificationToken": token})

    def _test_status(self, token: str) -> SandboxResponse:
        record = self._tests.get(token)
        if record is None:
            return self.error(404, "4040008")
        with self._records_lock:
            delivery = record["delivery"]
        attempts = [] if delivery is None else [{"attemptDate": delivery["attempt_date"],
                                                 "sendAttemptResult": delivery["result"]}]
        return self._answer(CheckTestNotificationResponse,
                            {"signedPayload": record["signedPayload"], "sendAttempts": attempts})

    def _app(self, environment: str) -> dict[str, Any]:
        """environment, bundleId and, in Production only, appAppleId ("It isn't present in the sandbox
        environment": the appAppleId field of https://developer.apple.com/documentation/appstoreservernotifications/appdata)."""
        app: dict[str, Any] = {"environment": environment, "bundleId": self.bundle_id}
        if environment == "Production":
            app["appAppleId"] = self.app_apple_id
        return app

    def _answer(self, model: type, body: dict[str, Any]) -> SandboxResponse:
        problems = apple_models.check(model, body)
        if problems:
            raise _Breach(f"answer ({model.__name__})", problems)
        return SandboxResponse(200, body)

    def _sign(self, model: type, payload: dict[str, Any]) -> str:
        problems = apple_models.check(model, payload)
        if problems:
            raise _Breach(f"signed payload ({model.__name__})", problems)
        return self.chain.sign(payload)

    def _sign_transaction(self, subscription: Subscription, signed_date: int) -> str:
        return self._sign(JWSTransactionDecodedPayload, subscription.transaction_payload(signed_date))

    def _sign_renewal(self, subscription: Subscription, signed_date: int) -> str:
        return self._sign(JWSRenewalInfoDecodedPayload, subscription.renewal_payload(signed_date))

    # ---- notifications --------------------------------------------------------------------------

    def _notification(self, change: Change, environment: str, subscription: Subscription | None,
                      signed_date: int) -> dict[str, Any]:
        """Sign and record a notification V2 (responseBodyV2DecodedPayload); delivery is pending."""
        data = self._app(environment)
        if subscription is not None:
            data.update(signedTransactionInfo=self._sign_transaction(subscription, signed_date),
                        signedRenewalInfo=self._sign_renewal(subscription, signed_date),
                        status=subscription.status)
        payload: dict[str, Any] = {"notificationType": change.notification_type,
                                   "notificationUUID": str(uuid.uuid4()), "data": data, "version": "2.0",
                                   "signedDate": signed_date}
        if change.subtype:
            payload["subtype"] = change.subtype
        record = {
            "notificationUUID": payload["notificationUUID"],
            "notificationType": change.notification_type,
            "subtype": change.subtype,
            "environment": environment,
            "originalTransactionId": subscription.original_transaction_id if subscription else None,
            "signedPayload": self._sign(ResponseBodyV2DecodedPayload, payload),
            "payload": payload,
            "delivery": None,
        }
        self.notifications.append(record)
        return record

    def _deliver(self, record: dict[str, Any]) -> dict[str, Any]:
        url = self.server_urls.get(record["environment"], "")
        attempt_date = self._now_ms()
        if url:
            delivery = post_notification(url, {"signedPayload": record["signedPayload"]})
        else:
            why = (f"no server URL for the {record['environment']} environment "
                   "(SANDBOX_APPLE_NOTIFICATION_URL or POST /_sandbox/app_store/settings)")
            delivery = Delivery("NOT_SENT", answer=why)
        outcome = {**delivery.as_dict(), "attempt_date": attempt_date}
        with self._records_lock:
            record["delivery"] = outcome
        return outcome

    # ---- control --------------------------------------------------------------------------------

    def control(self, request: SandboxRequest, lock: threading.RLock) -> SandboxResponse:
        route = request.path.removeprefix(self.control_prefix) or "/"
        try:
            if request.method == "GET":
                with lock:
                    return self._show(route)
            if request.method != "POST":
                raise ControlError(405, "GET or POST")
            body = body_of(request)
            if route == "/settings":
                with lock:
                    return SandboxResponse(200, self._settle_settings(body))
            with lock:
                subscription, change = self._transition(route, body)
                record = (self._notification(change, subscription.environment, subscription, self._now_ms())
                          if option(body, "notify", bool, True) else None)
                view = subscription.view()
            if record is not None:
                self._deliver(record)  # outside the lock: the receiver may call the API back
            status = 201 if route == "/subscriptions" else 200
            return SandboxResponse(status, {"subscription": view, "notification": record})
        except ControlError as error:
            return error.response()
        except _Breach as breach:
            return sandbox_bug(self.name, breach.what, breach.problems)

    def _show(self, route: str) -> SandboxResponse:
        if route == "/":
            return SandboxResponse(200, self._settings())
        if route == "/root.pem":
            return SandboxResponse(200, self.chain.root_pem, content_type="application/x-pem-file")
        if route == "/root.der":
            return SandboxResponse(200, self.chain.root_der, content_type="application/pkix-cert")
        if route == "/notifications":
            with self._records_lock:
                return SandboxResponse(200, {"notifications": [dict(r) for r in self.notifications]})
        raise ControlError(404, f"no route GET {self.control_prefix}{route}")

    def _settings(self) -> dict[str, Any]:
        return {
            "bundle_id": self.bundle_id,
            "app_apple_id": self.app_apple_id,
            "api_paths": {"Sandbox": "", "Production": PRODUCTION_PREFIX},
            "server_urls": dict(self.server_urls),
            "api_key": {"key_id": self.api_key.key_id, "issuer_id": self.api_key.issuer_id,
                        "private_key": self.api_key.pem},
            "root_certificate": self.chain.root_pem,
        }

    def _settle_settings(self, body: dict[str, Any]) -> dict[str, Any]:
        self.bundle_id = option(body, "bundle_id", str, self.bundle_id)
        self.app_apple_id = option(body, "app_apple_id", int, self.app_apple_id)
        for environment in ENVIRONMENTS:
            url = option(body, f"{environment.lower()}_server_url", str, self.server_urls[environment])
            if url and not url.startswith(("http://", "https://")):
                raise ControlError(400, f"{environment.lower()}_server_url: expected an http(s) URL")
            self.server_urls[environment] = url
        return self._settings()

    def _transition(self, route: str, body: dict[str, Any]) -> tuple[Subscription, Change]:
        now = self._now_ms()
        if route == "/subscriptions":
            return self._purchase(body, now)
        original_id, action = self.action_of(route)
        subscription = self.ledger.by_original_id.get(original_id)
        if subscription is None:
            raise ControlError(404, f"no subscription with originalTransactionId {original_id}")
        if action == "renew":
            return subscription, self.ledger.renew(subscription, now)
        if action == "fail_renewal":
            grace_days = option(body, "grace_days", int, DEFAULT_GRACE_DAYS)
            return subscription, self.ledger.fail_renewal(subscription, now, grace_days)
        if action == "expire_grace_period":
            return subscription, self.ledger.expire_grace_period(subscription, now)
        if action == "expire":
            return subscription, self.ledger.expire(subscription, now)
        if action == "refund":
            reason = option(body, "reason", int, 0)
            if reason not in (0, 1):
                raise ControlError(400, "reason: 0 (other) or 1 (an issue in the app)")
            return subscription, self.ledger.refund(subscription, now, reason)
        if action == "revoke":
            return subscription, self.ledger.revoke(subscription, now)
        if action in ("disable_auto_renew", "enable_auto_renew"):
            return subscription, self.ledger.set_auto_renew(subscription, action == "enable_auto_renew")
        raise ControlError(404, f"no action {action!r}")

    def _purchase(self, body: dict[str, Any], now: int) -> tuple[Subscription, Change]:
        product_id = option(body, "product_id", str)
        if not product_id:
            raise ControlError(400, "product_id is required")
        token = option(body, "app_account_token", str)
        if token is not None:
            try:
                # A UUID, as StoreKit's appAccountToken purchase option takes it
                # (https://developer.apple.com/documentation/appstoreserverapi/appaccounttoken).
                token = str(uuid.UUID(token))
            except ValueError as exc:
                raise ControlError(400, "app_account_token: expected a UUID (StoreKit drops any other "
                                        "value)") from exc
        environment = option(body, "environment", str, "Sandbox")
        if environment not in ENVIRONMENTS:
            raise ControlError(400, f"environment: one of {', '.join(ENVIRONMENTS)}")
        period_days = option(body, "period_days", int, 30)
        if period_days < 1:
            raise ControlError(400, "period_days: at least 1")
        return self.ledger.subscribe(
            environment=environment, bundle_id=self.bundle_id,
            customer=option(body, "customer", str) or self.ledger.new_customer(),
            group=option(body, "subscription_group", str, DEFAULT_GROUP), product_id=product_id,
            app_account_token=token, family_shared=option(body, "family_shared", bool, False),
            period_days=period_days, price=option(body, "price", int, 9990),
            currency=option(body, "currency", str, "USD"), now=now,
        )
