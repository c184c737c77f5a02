"""The sandbox plays Google Play for Google's own discovery-based client: googleapiclient (the
androidpublisher v3 document it ships) reads subscriptionsv2, acknowledges, cancels and revokes against the
sandbox; requests and answers are held to the discovery document's schemas; and each state change publishes
its real-time developer notification to a topic on the Pub/Sub emulator."""

from __future__ import annotations

import base64
import json
import time
import uuid
import warnings
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
import requests
from google.api_core.exceptions import DeadlineExceeded
from google.auth.exceptions import RefreshError
from google.cloud import pubsub_v1
from google.oauth2.credentials import Credentials
from googleapiclient.errors import HttpError

from tests.conftest import PROJECT
from tests.tools.sandbox.conftest import store_control
from tools.sandbox.play_discovery import Discovery
from tools.sandbox.providers.google_play_subscriptions import Purchase
from tools.sandbox.store_clients import play_developer_api

API = "/androidpublisher/v3/applications"


def settings(url: str) -> dict[str, Any]:
    return requests.get(f"{url}/_sandbox/google_play", timeout=5).json()


def play(url: str, token: str | None = None) -> Any:
    """googleapiclient's androidpublisher service on the sandbox, with the sandbox's access token."""
    return play_developer_api(Credentials(token=token or settings(url)["access_token"]), url)


def control(url: str, path: str, body: dict[str, Any] | None = None, status: int = 200) -> dict[str, Any]:
    return store_control(url, "google_play", path, body, status)


def buy(url: str, **body: Any) -> dict[str, Any]:
    return control(url, "/subscriptions", {"product_id": "pro_monthly", **body}, status=201)


def act(url: str, token: str, action: str, **body: Any) -> dict[str, Any]:
    return control(url, f"/subscriptions/{token}/{action}", body)


def http_error(call: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(HttpError) as raised:
        call.execute()
    return raised.value.resp.status, json.loads(raised.value.content)["error"]


@pytest.fixture
def package(url: str) -> str:
    return settings(url)["package_name"]


# ---- the Play Developer API through the real client -----------------------------------------------


def test_the_client_reads_a_purchase_as_subscription_purchase_v2(url: str, package: str) -> None:
    account = uuid.uuid4().hex * 2  # 64 characters, e.g. a SHA-256 of the uid
    token = buy(url, obfuscated_account_id=account)["subscription"]["purchaseToken"]
    purchase = play(url).purchases().subscriptionsv2().get(packageName=package, token=token).execute()
    assert purchase["kind"] == "androidpublisher#subscriptionPurchaseV2"
    assert purchase["subscriptionState"] == "SUBSCRIPTION_STATE_ACTIVE"
    assert purchase["acknowledgementState"] == "ACKNOWLEDGEMENT_STATE_PENDING"
    assert purchase["externalAccountIdentifiers"] == {"obfuscatedExternalAccountId": account}
    assert purchase["testPurchase"] == {}
    (item,) = purchase["lineItems"]
    assert item["productId"] == "pro_monthly" and item["autoRenewingPlan"]["autoRenewEnabled"] is True
    assert item["latestSuccessfulOrderId"].startswith("GPA.")
    assert item["expiryTime"] > purchase["startTime"]
    assert Discovery().check_response(method("GET", f"{API}/{package}/purchases/subscriptionsv2/tokens/t"),
                                      purchase) == []


def method(http_method: str, path: str) -> Any:
    found, _ = Discovery().route(http_method, path)
    assert found is not None
    return found


def test_acknowledge_once_then_play_says_the_purchase_is_not_in_a_valid_state(url: str, package: str) -> None:
    token = buy(url)["subscription"]["purchaseToken"]
    subscriptions = play(url).purchases().subscriptions()
    acknowledge = subscriptions.acknowledge(packageName=package, subscriptionId="pro_monthly", token=token,
                                            body={})
    assert acknowledge.execute() == ""  # 204, no content
    purchase = play(url).purchases().subscriptionsv2().get(packageName=package, token=token).execute()
    assert purchase["acknowledgementState"] == "ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED"
    status, error = http_error(subscriptions.acknowledge(packageName=package, subscriptionId="pro_monthly",
                                                         token=token, body={}))
    assert (status, error["errors"][0]["reason"]) == (400, "invalidPurchaseState")
    assert error["message"] == "The purchase is not in a valid state to perform the desired operation."
    status, error = http_error(subscriptions.acknowledge(packageName=package, subscriptionId="pro_yearly",
                                                         token=token, body={}))
    assert (status, error["errors"][0]["reason"]) == (400, "purchaseTokenDoesNotMatchProductId")


def test_an_acknowledgement_may_carry_the_account_id_of_an_out_of_app_sale(url: str, package: str) -> None:
    token = buy(url)["subscription"]["purchaseToken"]
    body = {"externalAccountIds": {"obfuscatedAccountId": "acct-7"}}
    play(url).purchases().subscriptions().acknowledge(packageName=package, subscriptionId="pro_monthly",
                                                      token=token, body=body).execute()
    purchase = play(url).purchases().subscriptionsv2().get(packageName=package, token=token).execute()
    assert purchase["externalAccountIdentifiers"] == {"obfuscatedExternalAccountId": "acct-7"}


def test_an_unacknowledged_purchase_is_refunded_and_revoked_after_three_days(url: str, package: str) -> None:
    token = buy(url)["subscription"]["purchaseToken"]
    requests.post(f"{url}/_sandbox/clock", json={"advance_seconds": 3 * 86400 - 60}, timeout=5)
    purchase = play(url).purchases().subscriptionsv2().get(packageName=package, token=token).execute()
    assert purchase["subscriptionState"] == "SUBSCRIPTION_STATE_ACTIVE"
    requests.post(f"{url}/_sandbox/clock", json={"advance_seconds": 120}, timeout=5)
    purchase = play(url).purchases().subscriptionsv2().get(packageName=package, token=token).execute()
    assert purchase["subscriptionState"] == "SUBSCRIPTION_STATE_EXPIRED"
    assert purchase["canceledStateContext"] == {"systemInitiatedCancellation": {}}
    status, error = http_error(play(url).purchases().subscriptions().acknowledge(
        packageName=package, subscriptionId="pro_monthly", token=token, body={}))
    assert (status, error["errors"][0]["reason"], error["message"]) == (
        400, "productNotOwnedByUser", "The product purchase is not owned by the user.")


def test_cancel_and_revoke_through_the_client(url: str, package: str) -> None:
    subscriptions = play(url).purchases().subscriptionsv2()
    token = buy(url)["subscription"]["purchaseToken"]
    body = {"cancellationContext": {"cancellationType": "DEVELOPER_REQUESTED_STOP_PAYMENTS"}}
    assert subscriptions.cancel(packageName=package, token=token, body=body).execute() == {}
    purchase = subscriptions.get(packageName=package, token=token).execute()
    assert purchase["subscriptionState"] == "SUBSCRIPTION_STATE_CANCELED"
    assert purchase["canceledStateContext"] == {"developerInitiatedCancellation": {}}
    assert purchase["lineItems"][0]["autoRenewingPlan"]["autoRenewEnabled"] is False
    control(url, f"/subscriptions/{token}/restore", status=409)  # the developer stopped payments for good

    revoke = {"revocationContext": {"proratedRefund": {}}}
    assert subscriptions.revoke(packageName=package, token=token, body=revoke).execute() == {}
    assert subscriptions.get(packageName=package, token=token).execute()["subscriptionState"] == \
        "SUBSCRIPTION_STATE_EXPIRED"
    status, error = http_error(subscriptions.revoke(packageName=package, token=token, body=revoke))
    assert (status, error["errors"][0]["reason"]) == (400, "invalidPurchaseState")
    pushed = [n["notification"] for n in requests.get(f"{url}/_sandbox/google_play/notifications",
                                                      timeout=5).json()["notifications"]]
    assert [n.get("subscriptionNotification", {}).get("notificationType") for n in pushed] == [4, 3, 12, None]
    assert pushed[-1]["voidedPurchaseNotification"] == {
        "purchaseToken": token, "orderId": purchase["lineItems"][0]["latestSuccessfulOrderId"],
        "productType": 1, "refundType": 2}


def test_play_errors_reach_the_client_in_plays_shape(url: str, package: str) -> None:
    token = buy(url)["subscription"]["purchaseToken"]
    v2 = play(url).purchases().subscriptionsv2()
    status, error = http_error(v2.get(packageName=package, token="unknown-token"))
    assert (status, error["errors"][0]["reason"], error["message"]) == (
        404, "purchaseTokenNotFound", "The purchase token was not found.")
    status, error = http_error(v2.get(packageName="com.example.not.ours", token=token))
    assert (status, error["errors"][0]["reason"]) == (404, "applicationNotFound")
    status, error = http_error(v2.defer(packageName=package, token=token, body={}))
    assert (status, error["status"]) == (501, "UNIMPLEMENTED")
    status, error = http_error(v2.cancel(packageName=package, token=token,
                                         body={"cancellationContext": {"cancellationType": "LATER"}}))
    assert (status, error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["message"] == "Invalid value at 'cancellation_context.cancellation_type', \"LATER\""
    status, error = http_error(v2.cancel(packageName=package, token=token, body={"reason": "x"}))
    assert error["message"] == 'Invalid JSON payload received. Unknown name "reason": Cannot find field.'
    status, error = http_error(v2.cancel(packageName=package, token=token, body={}))
    assert error["message"] == "Request contains an invalid argument: cancellation_context is required."
    status, error = http_error(v2.revoke(packageName=package, token=token, body={"revocationContext": {}}))
    assert (status, error["status"]) == (400, "INVALID_ARGUMENT")
    answer = requests.get(f"{url}{API}/{package}/purchases/subscriptionsv2/tokens/{token}",
                          params={"verbose": "1"}, timeout=5,
                          headers={"Authorization": f"Bearer {settings(url)['access_token']}"})
    assert answer.status_code == 400 and "Cannot bind query parameter" in answer.json()["error"]["message"]


def test_the_api_wants_the_sandboxs_access_token(url: str, package: str) -> None:
    token = buy(url)["subscription"]["purchaseToken"]
    path = f"{url}{API}/{package}/purchases/subscriptionsv2/tokens/{token}"
    wrong = requests.get(path, headers={"Authorization": "Bearer ya29.someone-else"}, timeout=5)
    assert wrong.status_code == 401 and "invalid_token" in wrong.headers["WWW-Authenticate"]
    assert (wrong.json()["error"]["status"], wrong.json()["error"]["errors"][0]["reason"]) == (
        "UNAUTHENTICATED", "authError")
    missing = requests.get(path, timeout=5)
    assert missing.status_code == 401 and missing.json()["error"]["errors"][0]["reason"] == "required"
    # google-auth answers a 401 by refreshing; a bare access token cannot be refreshed.
    with pytest.raises(RefreshError):
        play(url, token="ya29.someone-else").purchases().subscriptionsv2().get(packageName=package,
                                                                               token=token).execute()


# ---- the contract: the discovery document --------------------------------------------------------


def test_the_discovery_schemas_become_strict_json_schema() -> None:
    discovery = Discovery()
    bundled = resources.files("googleapiclient.discovery_cache") / "documents" / "androidpublisher.v3.json"
    assert discovery.revision == json.loads(bundled.read_text())["revision"]
    get = method("GET", f"{API}/p/purchases/subscriptionsv2/tokens/t")
    assert get.id == "androidpublisher.purchases.subscriptionsv2.get"
    bad = {"kind": "x", "latestOrderId": "GPA.1",  # not in this revision: lineItems[].latestSuccessfulOrderId
           "startTime": "yesterday", "subscriptionState": "ACTIVE",
           "lineItems": [{"autoRenewingPlan": {"recurringPrice": {"units": 9.99, "nanos": "0"}}}]}
    problems = "\n".join(discovery.check_response(get, bad))
    expected_problems = ("'latestOrderId' was unexpected", "'yesterday' is not a 'date-time'",
                         "'ACTIVE' is not one of", "9.99 is not of type 'string'",
                         "'0' is not of type 'integer'")
    for expected in expected_problems:
        assert expected in problems, expected
    acknowledge = method("POST", f"{API}/p/purchases/subscriptions/s/tokens/t:acknowledge")
    assert discovery.check_response(acknowledge, None) == []
    assert discovery.check_response(acknowledge, {}) != []
    # A reserved expansion ({+name}) spans segments only in its parameter's pattern.
    assert method("GET", "/androidpublisher/v3/applications/p/externalTransactions/t").id.endswith(
        "getexternaltransaction")


def test_a_sandbox_answer_that_breaks_the_document_is_a_loud_500(
        url: str, package: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    token = buy(url)["subscription"]["purchaseToken"]
    real = Purchase.resource
    monkeypatch.setattr(Purchase, "resource", lambda self: {**real(self), "latestOrderId": "GPA.1"})
    status, error = http_error(play(url).purchases().subscriptionsv2().get(packageName=package, token=token))
    assert status == 500
    answer = requests.get(f"{url}{API}/{package}/purchases/subscriptionsv2/tokens/{token}", timeout=5,
                          headers={"Authorization": f"Bearer {settings(url)['access_token']}"}).json()
    assert answer["error"] == "sandbox_contract_violation"
    assert any("latestOrderId" in problem for problem in answer["problems"])
    assert "SANDBOX BUG" in capsys.readouterr().err


# ---- RTDN -----------------------------------------------------------------------------------------


@pytest.fixture
def rtdn(url: str, pubsub_emulator: str) -> Iterator[pubsub_v1.SubscriberClient]:
    """A topic on the emulator the sandbox publishes to, with a pull subscription on it."""
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = f"play-rtdn-{uuid.uuid4().hex[:8]}"
    topic = publisher.create_topic(name=publisher.topic_path(PROJECT, name)).name
    subscription = subscriber.create_subscription(
        name=subscriber.subscription_path(PROJECT, name), topic=topic).name
    control(url, "/settings", {"rtdn_topic": topic, "pubsub_emulator_host": pubsub_emulator})
    subscriber.rtdn_subscription = subscription  # type: ignore[attr-defined]
    yield subscriber
    control(url, "/settings", {"rtdn_topic": "", "pubsub_emulator_host": ""})
    subscriber.delete_subscription(subscription=subscription)
    publisher.delete_topic(topic=topic)


def pull(subscriber: Any, count: int) -> list[dict[str, Any]]:
    """The next `count` notifications on the RTDN subscription, decoded as an app's handler decodes them."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while len(found) < count and time.monotonic() < deadline:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                request = {"subscription": subscriber.rtdn_subscription, "max_messages": 10,
                           "return_immediately": True}
                answer = subscriber.pull(request=request, timeout=10)
        except DeadlineExceeded:
            continue
        for item in answer.received_messages:
            found.append(json.loads(item.message.data))
        if answer.received_messages:
            subscriber.acknowledge(subscription=subscriber.rtdn_subscription,
                                   ack_ids=[item.ack_id for item in answer.received_messages])
    return found


def test_each_state_change_publishes_its_rtdn_on_the_emulator(url: str, package: str, rtdn: Any) -> None:
    token = buy(url)["subscription"]["purchaseToken"]
    # (control action, its body, the RTDN notificationType, the subscriptionState after it)
    steps = [("renew", {}, 2, "ACTIVE"), ("enter_grace_period", {}, 6, "IN_GRACE_PERIOD"),
             ("renew", {}, 2, "ACTIVE"), ("enter_grace_period", {"grace_days": 3}, 6, "IN_GRACE_PERIOD"),
             ("enter_on_hold", {}, 5, "ON_HOLD"), ("renew", {}, 1, "ACTIVE"),
             ("pause", {"days": 7}, 10, "PAUSED"), ("renew", {}, 2, "ACTIVE"), ("cancel", {}, 3, "CANCELED"),
             ("restore", {}, 7, "ACTIVE"), ("cancel", {}, 3, "CANCELED"), ("expire", {}, 13, "EXPIRED")]
    for action, body, _, state in steps:
        answer = act(url, token, action, **body)
        assert answer["subscription"]["subscriptionState"] == f"SUBSCRIPTION_STATE_{state}", action
        assert [n["delivery"]["result"] for n in answer["notifications"]] == ["SUCCESS"], action
    messages = pull(rtdn, 1 + len(steps))
    types = [message["subscriptionNotification"]["notificationType"] for message in messages]
    assert types == [4] + [step[2] for step in steps]
    first = messages[0]
    assert (first["version"], first["packageName"]) == ("1.0", package) and first["eventTimeMillis"].isdigit()
    assert first["subscriptionNotification"] == {"version": "1.0", "notificationType": 4,
                                                 "purchaseToken": token, "subscriptionId": "pro_monthly"}


def test_a_refund_and_a_test_notification_on_the_emulator(url: str, rtdn: Any) -> None:
    token = buy(url, notify=False)["subscription"]["purchaseToken"]
    act(url, token, "refund", refund_type="full")
    control(url, "/test_notification")
    revoked, voided, test = pull(rtdn, 3)
    assert revoked["subscriptionNotification"]["notificationType"] == 12
    assert voided["voidedPurchaseNotification"]["refundType"] == 1
    assert voided["voidedPurchaseNotification"]["purchaseToken"] == token
    assert test["testNotification"] == {"version": "1.0"}


def test_without_a_topic_the_notification_is_returned_for_the_caller_to_publish(url: str) -> None:
    control(url, "/settings", {"rtdn_topic": "", "pubsub_emulator_host": ""})
    answer = buy(url, obfuscated_account_id="acct-1")
    (record,) = answer["notifications"]
    assert record["delivery"]["result"] == "NOT_SENT"
    assert json.loads(base64.b64decode(record["message"]["data"])) == record["notification"]
    token = answer["subscription"]["purchaseToken"]
    refunded = act(url, token, "refund", refund_type="partial", revoke=False)
    assert [n["notification"].get("voidedPurchaseNotification", {}).get("refundType")
            for n in refunded["notifications"]] == [2]
    assert refunded["subscription"]["subscriptionState"] == "SUBSCRIPTION_STATE_ACTIVE"


def test_control_requests_play_would_not_take(url: str) -> None:
    control(url, "/subscriptions", {}, 400)
    control(url, "/subscriptions", {"product_id": "p", "obfuscated_account_id": "x" * 65}, 400)
    control(url, "/settings", {"rtdn_topic": "play-rtdn"}, 400)
    control(url, "/settings", {"pubsub_emulator_host": "pubsub.googleapis.com:443"}, 400)
    control(url, "/subscriptions/unknown-token/renew", {}, 404)
    token = buy(url)["subscription"]["purchaseToken"]
    control(url, f"/subscriptions/{token}/expire", {}, 409)  # auto-renewing and active
    control(url, f"/subscriptions/{token}/restore", {}, 409)
    control(url, f"/subscriptions/{token}/refund", {"refund_type": "most"}, 400)
    control(url, f"/subscriptions/{token}/fly", {}, 404)


def test_injected_faults_answer_in_plays_error_shape(url: str, package: str) -> None:
    token = buy(url)["subscription"]["purchaseToken"]
    fault = {"provider": "google_play", "mode": "status", "status": 503}
    assert requests.post(f"{url}/_sandbox/faults", json=fault, timeout=5).status_code == 201
    status, error = http_error(play(url).purchases().subscriptionsv2().get(packageName=package, token=token))
    assert (status, error["errors"][0]["reason"]) == (503, "backendError")
