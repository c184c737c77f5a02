"""The sandbox plays the App Store for Apple's own app-store-server-library: its SignedDataVerifier accepts
the sandbox's notifications and signed transactions given the sandbox's root (and refuses them with Apple's
real root, another chain, another bundle ID or another environment), and its AppStoreServerAPIClient reads
subscription statuses from the sandbox, authenticated as Apple authenticates it."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from appstoreserverlibrary.api_client import APIError, APIException
from appstoreserverlibrary.models.AutoRenewStatus import AutoRenewStatus
from appstoreserverlibrary.models.Environment import Environment
from appstoreserverlibrary.models.ExpirationIntent import ExpirationIntent
from appstoreserverlibrary.models.NotificationTypeV2 import NotificationTypeV2
from appstoreserverlibrary.models.ResponseBodyV2DecodedPayload import ResponseBodyV2DecodedPayload
from appstoreserverlibrary.models.SendAttemptResult import SendAttemptResult
from appstoreserverlibrary.models.Status import Status
from appstoreserverlibrary.models.StatusResponse import StatusResponse
from appstoreserverlibrary.models.Subtype import Subtype
from appstoreserverlibrary.signed_data_verifier import (
    SignedDataVerifier,
    VerificationException,
    VerificationStatus,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.tools.sandbox.conftest import Receiver, store_control
from tools.sandbox import apple_models
from tools.sandbox.apple_pki import INTERMEDIATE_OID, LEAF_OID, SigningChain
from tools.sandbox.providers.app_store_subscriptions import Subscription
from tools.sandbox.store_clients import app_store_api_client

APPLE_ROOT_G3 = Path(__file__).parent / "data" / "apple_root_ca_g3.pem"
# Apple Root CA - G3, the root of Apple's App Store signing chain (offered at
# https://www.apple.com/certificateauthority/); its SHA-256 fingerprint pins the file.
APPLE_ROOT_G3_SHA256 = ("63 34 3A BF B8 9A 6A 03 EB B5 7E 9B 3F 5F A7 BE "
                        "7C 4F 5C 75 6F 30 17 B3 A8 C4 88 C3 65 3E 91 79")
TOKEN = str(uuid.uuid4())


def settings(url: str) -> dict[str, Any]:
    return requests.get(f"{url}/_sandbox/app_store", timeout=5).json()


def root_der(url: str) -> bytes:
    return requests.get(f"{url}/_sandbox/app_store/root.der", timeout=5).content


def verifier(url: str, environment: Environment = Environment.SANDBOX, bundle_id: str = "",
             app_apple_id: int | None = None, roots: list[bytes] | None = None) -> SignedDataVerifier:
    """The library's verifier as the local stack builds it: the sandbox's root, online checks off."""
    return SignedDataVerifier(roots if roots is not None else [root_der(url)], False, environment,
                              bundle_id or settings(url)["bundle_id"], app_apple_id)


def client(url: str, environment: Environment = Environment.SANDBOX) -> Any:
    key = settings(url)["api_key"]
    base = url if environment == Environment.SANDBOX else f"{url}/production"
    return app_store_api_client(key["private_key"].encode(), key["key_id"], key["issuer_id"],
                                settings(url)["bundle_id"], environment, base)


def control(url: str, path: str, body: dict[str, Any] | None = None, status: int = 200) -> dict[str, Any]:
    return store_control(url, "app_store", path, body, status)


def buy(url: str, **body: Any) -> dict[str, Any]:
    return control(url, "/subscriptions", {"product_id": "pro.monthly", **body}, status=201)


def act(url: str, original_id: str, action: str, **body: Any) -> dict[str, Any]:
    return control(url, f"/subscriptions/{original_id}/{action}", body)


@pytest.fixture
def app(url: str, receiver: Receiver) -> str:
    """The sandbox with the receiver as the app's Sandbox and Production server URL."""
    control(url, "/settings", {"sandbox_server_url": receiver.url, "production_server_url": receiver.url})
    return url


def delivered(receiver: Receiver, url: str, **verify: Any) -> ResponseBodyV2DecodedPayload:
    """The last notification the app's server received, verified by the library."""
    body = receiver.bodies[-1]
    assert set(body) == {"signedPayload"}
    return verifier(url, **verify).verify_and_decode_notification(body["signedPayload"])


# ---- the signing chain ------------------------------------------------------------------------------


def test_the_chain_has_apples_shape_and_the_root_is_served_in_both_encodings(url: str) -> None:
    chain = SigningChain.generate()
    assert chain.leaf.extensions.get_extension_for_oid(LEAF_OID).critical is False
    assert chain.intermediate.extensions.get_extension_for_oid(INTERMEDIATE_OID)
    leaf_key = chain.leaf.public_key()
    assert isinstance(leaf_key, ec.EllipticCurvePublicKey) and leaf_key.curve.name == "secp256r1"  # ES256
    pem = requests.get(f"{url}/_sandbox/app_store/root.pem", timeout=5)
    assert pem.headers["Content-Type"] == "application/x-pem-file"
    served = x509.load_pem_x509_certificate(pem.content)
    assert served == x509.load_der_x509_certificate(root_der(url))
    assert settings(url)["root_certificate"] == pem.text
    assert "not Apple" in served.subject.rfc4514_string()


def test_a_kept_chain_and_api_key_survive_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.sandbox.providers.app_store import AppStore

    monkeypatch.setenv("SANDBOX_APPLE_DIR", str(tmp_path))
    first, second = AppStore(), AppStore()
    assert first.chain.root_der == second.chain.root_der == (tmp_path / "root.der").read_bytes()
    assert x509.load_pem_x509_certificate((tmp_path / "root.pem").read_bytes()) == first.chain.root
    assert (first.api_key.key_id, first.api_key.pem) == (second.api_key.key_id, second.api_key.pem)
    assert (tmp_path / "leaf-key.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "api-key.p8").stat().st_mode & 0o777 == 0o600


def test_the_vendored_apple_root_is_apples() -> None:
    certificate = x509.load_pem_x509_certificate(APPLE_ROOT_G3.read_bytes())
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert hashlib.sha256(der).hexdigest() == APPLE_ROOT_G3_SHA256.replace(" ", "").lower()
    assert certificate.subject.rfc4514_string().endswith("CN=Apple Root CA - G3")


# ---- notifications: verified by the library, refused by any other trust -------------------------------


def test_a_purchase_notification_verifies_with_the_sandbox_root(app: str, receiver: Receiver) -> None:
    answer = buy(app, app_account_token=TOKEN.upper())
    assert answer["notification"]["delivery"]["result"] == "SUCCESS"
    assert answer["notification"]["delivery"]["status"] == 200
    notification = delivered(receiver, app)
    assert notification.notificationType == NotificationTypeV2.SUBSCRIBED
    assert notification.subtype == Subtype.INITIAL_BUY
    assert notification.version == "2.0"
    assert str(uuid.UUID(notification.notificationUUID or "")) == answer["notification"]["notificationUUID"]
    data = notification.data
    assert data is not None and data.status == Status.ACTIVE and data.environment == Environment.SANDBOX
    assert data.bundleId == settings(app)["bundle_id"]
    assert data.appAppleId is None  # Apple sends appAppleId in Production only
    transaction = verifier(app).verify_and_decode_signed_transaction(data.signedTransactionInfo or "")
    renewal = verifier(app).verify_and_decode_renewal_info(data.signedRenewalInfo or "")
    assert transaction.appAccountToken == TOKEN  # normalised to lower case, as StoreKit sends a UUID
    assert transaction.originalTransactionId == answer["subscription"]["originalTransactionId"]
    assert transaction.productId == "pro.monthly" and transaction.revocationDate is None
    assert (transaction.expiresDate or 0) > (transaction.purchaseDate or 0)
    assert renewal.autoRenewStatus == AutoRenewStatus.ON and renewal.appAccountToken == TOKEN
    assert renewal.renewalDate == transaction.expiresDate


def test_notifications_are_refused_by_other_trust_app_or_environment(app: str, receiver: Receiver) -> None:
    buy(app)
    signed = receiver.bodies[-1]["signedPayload"]
    apple_root = x509.load_pem_x509_certificate(APPLE_ROOT_G3.read_bytes()).public_bytes(
        serialization.Encoding.DER)
    refusals = {
        "Apple's real root": (verifier(app, roots=[apple_root]), VerificationStatus.VERIFICATION_FAILURE),
        "another chain's root": (verifier(app, roots=[SigningChain.generate().root_der]),
                                 VerificationStatus.VERIFICATION_FAILURE),
        "no root": (verifier(app, roots=[]), VerificationStatus.INVALID_CERTIFICATE),
        "another bundle ID": (verifier(app, bundle_id="com.example.other"),
                              VerificationStatus.INVALID_APP_IDENTIFIER),
        # A Production verifier checks appAppleId first, and Sandbox notifications carry none: a sandbox
        # notification at a production endpoint fails as INVALID_APP_IDENTIFIER, not INVALID_ENVIRONMENT.
        "the Production environment": (verifier(app, Environment.PRODUCTION, app_apple_id=1),
                                       VerificationStatus.INVALID_APP_IDENTIFIER),
    }
    for case, (refusing, status) in refusals.items():
        with pytest.raises(VerificationException) as refused:
            refusing.verify_and_decode_notification(signed)
        assert refused.value.status == status, case


def test_production_notifications_carry_the_app_apple_id(app: str, receiver: Receiver) -> None:
    app_apple_id = settings(app)["app_apple_id"]
    buy(app, environment="Production")
    notification = delivered(receiver, app, environment=Environment.PRODUCTION, app_apple_id=app_apple_id)
    assert notification.data is not None and notification.data.appAppleId == app_apple_id
    with pytest.raises(VerificationException) as refused:
        delivered(receiver, app, environment=Environment.PRODUCTION, app_apple_id=app_apple_id + 1)
    assert refused.value.status == VerificationStatus.INVALID_APP_IDENTIFIER
    with pytest.raises(VerificationException) as refused:
        delivered(receiver, app)
    assert refused.value.status == VerificationStatus.INVALID_ENVIRONMENT


def test_a_tampered_notification_is_refused(app: str, receiver: Receiver) -> None:
    buy(app)
    header, payload, signature = receiver.bodies[-1]["signedPayload"].split(".")
    other = SigningChain.generate().sign({"notificationType": "REFUND"}).split(".")[1]
    with pytest.raises(VerificationException) as refused:
        verifier(app).verify_and_decode_notification(".".join([header, other, signature]))
    assert refused.value.status == VerificationStatus.VERIFICATION_FAILURE


def test_the_subscription_lifecycle_notifies_as_apple_does(app: str, receiver: Receiver) -> None:
    original_id = buy(app, app_account_token=TOKEN)["subscription"]["originalTransactionId"]
    check = verifier(app)

    def step(action: str, notification_type: NotificationTypeV2, subtype: Subtype | None, status: Status,
             **body: Any) -> tuple[Any, Any]:
        act(app, original_id, action, **body)
        notification = delivered(receiver, app)
        assert (notification.notificationType, notification.subtype) == (notification_type, subtype), action
        assert notification.data is not None and notification.data.status == status, action
        return (check.verify_and_decode_signed_transaction(notification.data.signedTransactionInfo or ""),
                check.verify_and_decode_renewal_info(notification.data.signedRenewalInfo or ""))

    first, _ = step("renew", NotificationTypeV2.DID_RENEW, None, Status.ACTIVE)
    assert first.transactionReason is not None and first.transactionReason.value == "RENEWAL"
    assert first.originalTransactionId == original_id != first.transactionId
    failed, renewal = step("fail_renewal", NotificationTypeV2.DID_FAIL_TO_RENEW, Subtype.GRACE_PERIOD,
                           Status.BILLING_GRACE_PERIOD)
    assert renewal.isInBillingRetryPeriod is True
    assert renewal.gracePeriodExpiresDate == (failed.expiresDate or 0) + 16 * 86_400_000
    _, renewal = step("expire_grace_period", NotificationTypeV2.GRACE_PERIOD_EXPIRED, None,
                      Status.BILLING_RETRY)
    assert renewal.gracePeriodExpiresDate is None and renewal.isInBillingRetryPeriod is True
    recovered, _ = step("renew", NotificationTypeV2.DID_RENEW, Subtype.BILLING_RECOVERY, Status.ACTIVE)
    assert (recovered.purchaseDate or 0) >= (failed.expiresDate or 0)
    step("fail_renewal", NotificationTypeV2.DID_FAIL_TO_RENEW, None, Status.BILLING_RETRY, grace_days=0)
    _, renewal = step("expire", NotificationTypeV2.EXPIRED, Subtype.BILLING_RETRY, Status.EXPIRED)
    assert renewal.expirationIntent == ExpirationIntent.BILLING_ERROR
    assert renewal.autoRenewStatus == AutoRenewStatus.OFF

    buy(app, app_account_token=TOKEN, customer=settings_customer(app, original_id))
    again = delivered(receiver, app)
    assert (again.notificationType, again.subtype) == (NotificationTypeV2.SUBSCRIBED, Subtype.RESUBSCRIBE)
    step("disable_auto_renew", NotificationTypeV2.DID_CHANGE_RENEWAL_STATUS, Subtype.AUTO_RENEW_DISABLED,
         Status.ACTIVE)
    step("enable_auto_renew", NotificationTypeV2.DID_CHANGE_RENEWAL_STATUS, Subtype.AUTO_RENEW_ENABLED,
         Status.ACTIVE)
    step("disable_auto_renew", NotificationTypeV2.DID_CHANGE_RENEWAL_STATUS, Subtype.AUTO_RENEW_DISABLED,
         Status.ACTIVE)
    expired, renewal = step("expire", NotificationTypeV2.EXPIRED, Subtype.VOLUNTARY, Status.EXPIRED)
    assert renewal.expirationIntent == ExpirationIntent.CUSTOMER_CANCELLED
    assert (expired.expiresDate or 0) <= int(time.time() * 1000) + 1000


def settings_customer(url: str, original_id: str) -> str:
    state = requests.get(f"{url}/_sandbox/state", timeout=5).json()
    return next(subscription["customer"] for subscription in state["app_store_subscriptions"]
                if subscription["originalTransactionId"] == original_id)


def test_refunds_and_family_sharing_revocations(app: str, receiver: Receiver) -> None:
    refunded = buy(app)["subscription"]["originalTransactionId"]
    act(app, refunded, "refund", reason=1)
    notification = delivered(receiver, app)
    assert notification.notificationType == NotificationTypeV2.REFUND and notification.subtype is None
    assert notification.data is not None and notification.data.status == Status.REVOKED
    signed = notification.data.signedTransactionInfo or ""
    transaction = verifier(app).verify_and_decode_signed_transaction(signed)
    assert transaction.revocationDate is not None and transaction.revocationReason is not None
    assert transaction.revocationReason.value == 1
    control(app, f"/subscriptions/{refunded}/refund", status=409)

    shared = buy(app, family_shared=True)["subscription"]["originalTransactionId"]
    act(app, shared, "revoke")
    notification = delivered(receiver, app)
    assert notification.notificationType == NotificationTypeV2.REVOKE
    assert notification.data is not None and notification.data.status == Status.REVOKED
    purchased = buy(app)["subscription"]["originalTransactionId"]
    assert "Family Sharing" in control(app, f"/subscriptions/{purchased}/revoke", status=409)["message"]


def test_a_state_change_without_a_notification(app: str, receiver: Receiver) -> None:
    original_id = buy(app)["subscription"]["originalTransactionId"]
    count = len(receiver.bodies)
    answer = act(app, original_id, "fail_renewal", grace_days=0, notify=False)
    assert answer["notification"] is None and len(receiver.bodies) == count
    item = client(app).get_all_subscription_statuses(original_id).data[0].lastTransactions[0]
    assert item.status == Status.BILLING_RETRY


def test_deliveries_record_what_became_of_them(url: str, receiver: Receiver) -> None:
    control(url, "/settings", {"sandbox_server_url": ""})
    assert buy(url)["notification"]["delivery"]["result"] == "NOT_SENT"
    control(url, "/settings", {"sandbox_server_url": receiver.url})
    receiver.status = 500
    answer = buy(url, customer="another")
    assert answer["notification"]["delivery"]["result"] == "UNSUCCESSFUL_HTTP_RESPONSE_CODE"
    assert answer["notification"]["delivery"]["status"] == 500
    listed = requests.get(f"{url}/_sandbox/app_store/notifications", timeout=5).json()["notifications"]
    assert [n["delivery"]["result"] for n in listed] == ["NOT_SENT", "UNSUCCESSFUL_HTTP_RESPONSE_CODE"]
    assert listed[1]["signedPayload"] == receiver.bodies[-1]["signedPayload"]


def test_the_app_may_read_the_truth_back_while_handling_a_notification(app: str, receiver: Receiver) -> None:
    reads: list[StatusResponse] = []

    def read_back(body: Any) -> None:
        payload = verifier(app).verify_and_decode_notification(body["signedPayload"])
        signed = payload.data.signedTransactionInfo if payload.data else None
        transaction = verifier(app).verify_and_decode_signed_transaction(signed or "")
        reads.append(client(app).get_all_subscription_statuses(transaction.originalTransactionId or ""))

    receiver.on_receive = read_back
    answer = buy(app)
    assert answer["notification"]["delivery"]["result"] == "SUCCESS"
    assert [r.data[0].lastTransactions[0].status for r in reads if r.data] == [Status.ACTIVE]


# ---- the App Store Server API through the real client -------------------------------------------------


def test_the_library_client_reads_every_subscription_of_the_customer(app: str) -> None:
    first = buy(app, customer="ada", app_account_token=TOKEN)["subscription"]
    buy(app, customer="ada", subscription_group="20000002", product_id="extra.yearly")
    buy(app, customer="grace")
    act(app, first["originalTransactionId"], "fail_renewal")
    renewed_id = first["transactions"][-1]["transactionId"]
    response = client(app).get_all_subscription_statuses(renewed_id)
    assert response.environment == Environment.SANDBOX and response.appAppleId is None
    assert response.bundleId == settings(app)["bundle_id"]
    groups = {group.subscriptionGroupIdentifier: group.lastTransactions for group in response.data or []}
    assert set(groups) == {"20000001", "20000002"}
    assert [item.status for item in groups["20000001"] or []] == [Status.BILLING_GRACE_PERIOD]
    item = (groups["20000001"] or [])[0]
    transaction = verifier(app).verify_and_decode_signed_transaction(item.signedTransactionInfo or "")
    assert transaction.appAccountToken == TOKEN
    assert item.originalTransactionId == first["originalTransactionId"]
    only_active = client(app).get_all_subscription_statuses(renewed_id, [Status.ACTIVE])
    assert [g.subscriptionGroupIdentifier for g in only_active.data or []] == ["20000002"]


def test_transaction_info_and_a_test_notification(app: str, receiver: Receiver) -> None:
    bought = buy(app)["subscription"]
    info = client(app).get_transaction_info(bought["originalTransactionId"])
    transaction = verifier(app).verify_and_decode_signed_transaction(info.signedTransactionInfo or "")
    assert transaction.transactionId == bought["originalTransactionId"]

    token = client(app).request_test_notification().testNotificationToken or ""
    deadline = time.monotonic() + 20
    status = client(app).get_test_notification_status(token)
    while not status.sendAttempts and time.monotonic() < deadline:
        time.sleep(0.05)
        status = client(app).get_test_notification_status(token)
    assert [a.sendAttemptResult for a in status.sendAttempts or []] == [SendAttemptResult.SUCCESS]
    test = verifier(app).verify_and_decode_notification(status.signedPayload or "")
    assert test.notificationType == NotificationTypeV2.TEST
    assert test.data is not None and test.data.signedTransactionInfo is None
    assert receiver.bodies[-1]["signedPayload"] == status.signedPayload


def test_apple_error_answers_reach_the_library_as_api_errors(app: str) -> None:
    sandbox_id = buy(app)["subscription"]["originalTransactionId"]
    cases = [
        (client(app), "2999999999999999", 404, APIError.TRANSACTION_ID_NOT_FOUND),
        (client(app), "not-a-number", 400, APIError.INVALID_TRANSACTION_ID),
        # A transaction belongs to one environment: the other host does not know it.
        (client(app, Environment.PRODUCTION), sandbox_id, 404, APIError.TRANSACTION_ID_NOT_FOUND),
    ]
    for api, transaction_id, status, error in cases:
        with pytest.raises(APIException) as raised:
            api.get_all_subscription_statuses(transaction_id)
        assert (raised.value.http_status_code, raised.value.api_error) == (status, error), transaction_id
    answer = requests.get(f"{app}/inApps/v1/subscriptions/{sandbox_id}", params={"status": "9"},
                          headers={"Authorization": f"Bearer {apple_token(app)}"}, timeout=5)
    assert (answer.status_code, answer.json()["errorCode"]) == (400, APIError.INVALID_STATUS.value)


def apple_token(url: str, **changes: Any) -> str:
    """A bearer JWT as Apple specifies it, signed with the sandbox's key unless `key` is given."""
    key = settings(url)["api_key"]
    signing_key = changes.pop("key", None) or serialization.load_pem_private_key(key["private_key"].encode(),
                                                                                 None)
    assert isinstance(signing_key, ec.EllipticCurvePrivateKey)
    headers = {"kid": changes.pop("kid", key["key_id"])}
    claims = {"iss": key["issuer_id"], "aud": "appstoreconnect-v1", "bid": settings(url)["bundle_id"],
              "iat": int(time.time()), "exp": int(time.time()) + 600, **changes}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, signing_key, algorithm="ES256",
                      headers=headers)


def test_the_api_authenticates_requests_as_apple_does(app: str) -> None:
    original_id = buy(app)["subscription"]["originalTransactionId"]
    path = f"{app}/inApps/v1/subscriptions/{original_id}"

    def status_with(token: str | None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return requests.get(path, headers=headers, timeout=5).status_code

    assert status_with(apple_token(app)) == 200
    assert status_with(apple_token(app, iat=None)) == 200  # app-store-server-library 3.1.2 sends no iat
    refused = {
        "no token": None,
        "another key": apple_token(app, key=ec.generate_private_key(ec.SECP256R1())),
        "another key ID": apple_token(app, kid="ZZZZZZZZZZ"),
        "another issuer": apple_token(app, iss=str(uuid.uuid4())),
        "another audience": apple_token(app, aud="appstoreconnect-v2"),
        "another app": apple_token(app, bid="com.example.other"),
        "no bid": apple_token(app, bid=None),
        "expired": apple_token(app, iat=int(time.time()) - 1200, exp=int(time.time()) - 600),
        "longer than an hour": apple_token(app, exp=int(time.time()) + 2 * 3600),
        "not a JWT": "not-a-jwt",
    }
    for case, token in refused.items():
        assert status_with(token) == 401, case
    assert client(app).get_all_subscription_statuses(original_id).data  # the library's own token passes
    key = settings(app)["api_key"]
    other_p8 = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    wrong = app_store_api_client(other_p8, key["key_id"], key["issuer_id"], settings(app)["bundle_id"],
                                 Environment.SANDBOX, app)
    with pytest.raises(APIException) as raised:
        wrong.get_all_subscription_statuses(original_id)
    assert raised.value.http_status_code == 401 and raised.value.api_error is None


# ---- the contract: the library's models --------------------------------------------------------------


def test_the_models_check_catches_what_the_library_would_not_read() -> None:
    item = {"status": 1, "originalTransactionId": "2"}
    good = {"environment": "Sandbox", "bundleId": "b",
            "data": [{"subscriptionGroupIdentifier": "1", "lastTransactions": [item]}]}
    assert apple_models.check(StatusResponse, good) == []
    bad = {"environment": "Simulator", "bundleId": 7, "appAppleId": "1", "rawEnvironment": "Sandbox",
           "data": [{"lastTransactions": [{"status": 9, "signedTransactionInfo": ["x"]}]}], "extra": True}
    found = "\n".join(apple_models.check(StatusResponse, bad))
    for problem in ("environment: 'Simulator' is not one of Environment", "bundleId: expected a string",
                    "appAppleId: expected an integer", "rawEnvironment: not a field",
                    "status: 9 is not one of Status", "signedTransactionInfo: expected a string",
                    "extra: not a field"):
        assert problem in found, problem
    assert apple_models.check(StatusResponse, {"data": {"not": "a list"}}) == [
        "StatusResponse.data: expected an array, got dict"]


def test_a_sandbox_answer_that_breaks_the_models_is_a_loud_500(app: str, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    original_id = buy(app)["subscription"]["originalTransactionId"]
    real = Subscription.transaction_payload
    monkeypatch.setattr(Subscription, "transaction_payload",
                        lambda self, signed_date: {**real(self, signed_date), "expiresDate": "tomorrow"})
    answer = requests.get(f"{app}/inApps/v1/subscriptions/{original_id}",
                          headers={"Authorization": f"Bearer {apple_token(app)}"}, timeout=5)
    assert answer.status_code == 500
    assert answer.json()["error"] == "sandbox_contract_violation"
    assert any("expiresDate: expected an integer" in p for p in answer.json()["problems"])
    assert "SANDBOX BUG" in capsys.readouterr().err


# ---- the client adapter and the control endpoints ------------------------------------------------------


def test_the_adapter_points_the_library_client_and_fails_loudly_if_it_cannot(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    key = settings(url)["api_key"]
    args = (key["private_key"].encode(), key["key_id"], key["issuer_id"], "com.example.app")
    assert app_store_api_client(*args, Environment.SANDBOX)._base_url == "https://api.storekit-sandbox.apple.com"
    assert app_store_api_client(*args, Environment.PRODUCTION)._base_url == "https://api.storekit.apple.com"
    assert app_store_api_client(*args, Environment.SANDBOX, url + "/")._base_url == url
    from appstoreserverlibrary.api_client import BaseAppStoreServerAPIClient

    real_init = BaseAppStoreServerAPIClient.__init__

    def without_base_url(self: Any, *arguments: Any, **keywords: Any) -> None:
        real_init(self, *arguments, **keywords)
        del self._base_url

    monkeypatch.setattr(BaseAppStoreServerAPIClient, "__init__", without_base_url)
    with pytest.raises(AttributeError, match="_base_url"):
        app_store_api_client(*args, Environment.SANDBOX, url)


def test_control_requests_the_store_cannot_carry_out(app: str) -> None:
    not_a_uuid = {"product_id": "p", "app_account_token": "uid-1"}
    assert "UUID" in control(app, "/subscriptions", not_a_uuid, 400)["message"]
    control(app, "/subscriptions", {}, 400)
    control(app, "/subscriptions", {"product_id": "p", "environment": "Xcode"}, 400)
    control(app, "/subscriptions", {"product_id": "p", "period_days": "30"}, 400)
    control(app, "/subscriptions/2999999999999999/renew", {}, 404)
    original_id = buy(app, customer="ada")["subscription"]["originalTransactionId"]
    second = {"product_id": "p", "customer": "ada"}
    assert "one per group" in control(app, "/subscriptions", second, 409)["message"]
    control(app, f"/subscriptions/{original_id}/expire", {}, 409)  # auto-renew is on
    control(app, f"/subscriptions/{original_id}/expire_grace_period", {}, 409)
    control(app, f"/subscriptions/{original_id}/enable_auto_renew", {}, 409)
    control(app, f"/subscriptions/{original_id}/fly", {}, 404)
    act(app, original_id, "disable_auto_renew")
    control(app, f"/subscriptions/{original_id}/renew", {}, 409)
    assert requests.put(f"{app}/_sandbox/app_store/subscriptions", timeout=5).status_code == 405


def test_injected_faults_answer_in_apples_error_shape(app: str) -> None:
    original_id = buy(app)["subscription"]["originalTransactionId"]
    for status, error in ((429, APIError.RATE_LIMIT_EXCEEDED), (503, APIError.GENERAL_INTERNAL_RETRYABLE)):
        fault = {"provider": "app_store", "mode": "status", "status": status}
        assert requests.post(f"{app}/_sandbox/faults", json=fault, timeout=5).status_code == 201
        with pytest.raises(APIException) as raised:
            client(app).get_all_subscription_statuses(original_id)
        assert (raised.value.http_status_code, raised.value.api_error) == (status, error)
