"""The ops console in a real browser (Debian's headless Chromium, driven by selenium through Debian's
chromedriver) on the local stack: sign in as the local ops user, follow a payment and a support request
through the timeline, find a customer, replay a dead letter and see it complete. Screenshots are kept in
build/artifacts/console/ (tools/local/browser_setup.sh installs the browser)."""

from __future__ import annotations

import base64
import json
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, NoSuchElementException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tools.journey.local_stack import LocalStack
from tools.journey.steps import Journey
from tools.journey.target import wait_until
from tools.local.demo import console_pointer

from .conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = REPO / "build" / "artifacts" / "console"
# /work/.library/env/machines/python.md: without the background-networking flags Chromium keeps dialling
# Google's hosts, which a closed network refuses.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
PHONE = (412, 915)
WAIT = 60.0


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            "Debian's chromium and chromium-driver are missing: run bash tools/local/browser_setup.sh"
        )
    with tempfile.TemporaryDirectory(prefix="console-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={PHONE[0]},{PHONE[1]}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
        driver.set_page_load_timeout(30)
        try:
            yield driver
        finally:
            driver.quit()


def screenshot(driver: WebDriver, name: str, height: int | None = None) -> Path:
    """A screenshot of the whole page at phone width (the window grows to the page's height)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    full = height or int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(PHONE[0], min(max(full, PHONE[1]), 6000))
    path = ARTIFACTS / f"{name}.png"
    path.write_bytes(base64.b64decode(driver.get_screenshot_as_base64()))
    driver.set_window_size(*PHONE)
    return path


def reload_until(driver: WebDriver, url: str, ready: Callable[[WebDriver], Any], what: str) -> Any:
    def attempt() -> Any:
        driver.get(url)
        try:
            return ready(driver)
        except NoSuchElementException:
            return None

    return wait_until(attempt, timeout=WAIT, what=what, interval=1.0)


def step_states(driver: WebDriver) -> dict[str, str]:
    return {
        li.get_attribute("data-step") or "": li.get_attribute("data-state") or ""
        for li in driver.find_elements(By.CSS_SELECTOR, "#journey li[data-step]")
    }


def all_done(driver: WebDriver, keys: set[str]) -> dict[str, str] | None:
    states = step_states(driver)
    return states if keys <= set(states) and all(state == "done" for state in states.values()) else None


def force_dead_letter(stack: LocalStack, uid: str) -> str:
    """crm_worker's last delivery attempt (as Pub/Sub would make it) while HubSpot answers 503: the worker
    records the message in dead_letters. Returns the message's event id."""
    event_id = f"crm:{uid}:console-test-{uuid.uuid4().hex[:8]}"
    fault = {"provider": "hubspot", "mode": "status", "status": 503, "count": 1}
    requests.post(f"{stack.sandbox_url}/_sandbox/faults", json=fault, timeout=5).raise_for_status()
    data = {"uid": uid, "reason": "signed_up", "source_event_id": f"signup:{uid}", "event_created": None}
    envelope = {
        "message": {
            "data": base64.b64encode(json.dumps(data).encode()).decode(),
            "attributes": {
                "event_id": event_id,
                "correlation_id": uuid.uuid4().hex,
                "source_topic": "crm-sync",
            },
            "messageId": f"dl-{uuid.uuid4().hex[:10]}",
        },
        "subscription": f"projects/{stack.project_id}/subscriptions/crm-sync-crm_worker",
        "deliveryAttempt": 5,
    }
    answer = requests.post(stack.url("crm_worker"), json=envelope, timeout=30)
    assert answer.status_code == 500, answer.text  # transient on the last attempt: dead-lettered
    return event_id


def test_an_operator_follows_a_payment_and_a_support_request_and_replays_a_dead_letter(
    local_stack: LocalStack, browser: WebDriver
) -> None:
    console = local_stack.endpoints["ops_console"]
    base = console["url"]  # http://127.0.0.1:<port>/ops/
    journey = Journey(local_stack)
    journey.sign_up()
    journey.checkout()
    journey.payment()
    journey.support()
    uid, event = journey.signed_up.uid, journey.paid_event["id"]
    dead_event = force_dead_letter(local_stack, uid)

    # Nothing without signing in: the page answers 401 and links to the sign-in form.
    browser.get(base)
    assert "Sign in to continue" in browser.page_source and "Ada" not in browser.page_source
    browser.find_element(By.LINK_TEXT, "Sign in").click()
    browser.find_element(By.ID, "email").send_keys(console["email"])
    browser.find_element(By.ID, "password").send_keys(console["password"])
    browser.find_element(By.CSS_SELECTOR, "#signin button[type=submit]").click()
    wait_until(
        lambda: browser.find_elements(By.ID, "health"), timeout=WAIT, what="the overview after sign-in"
    )

    # What `make demo` prints at its end points at this payment's page and at the customer.
    pointer = console_pointer(journey, local_stack.endpoints)
    assert f"{base}customer?q={uid}" in pointer and f"{base}journey/" in pointer

    # The payment: from the timeline to its page, every step done, with the HubSpot contact id.
    payment = reload_until(
        browser,
        base,
        lambda d: d.find_element(By.XPATH, f"//details[contains(., '{event}')]//a[text()='details']"),
        "the payment in the timeline",
    )
    payment.click()
    states = reload_until(
        browser,
        browser.current_url,
        lambda d: all_done(d, {f"stripe:{event}/publish", f"stripe:{event}/apply", f"stripe:{event}/claims"}),
        "every step of the payment done",
    )
    assert any(key.startswith(f"crm:{uid}:stripe:{event}/hubspot_upsert") for key in states)
    assert "HubSpot contact" in browser.find_element(By.ID, "provider-ids").text
    assert f"payment   {browser.current_url}" in pointer
    screenshot(browser, "payment-journey")

    # The support request: ticket, write-back and acknowledgement, with the Zendesk and Resend ids.
    browser.get(base)
    browser.find_element(
        By.XPATH, f"//details[contains(., 'Support request {journey.reference}')]//a[text()='details']"
    ).click()
    key = f"support:{journey.reference}"
    reload_until(
        browser,
        browser.current_url,
        lambda d: all_done(
            d, {f"{key}/publish", f"{key}/zendesk_ticket", f"{key}/write_back", f"{key}/ack_email"}
        ),
        "every step of the support request done",
    )
    provider_ids = browser.find_element(By.ID, "provider-ids").text
    assert "Zendesk ticket" in provider_ids and "Resend email" in provider_ids
    screenshot(browser, "support-journey")

    # The customer, found from the header's search by the Stripe customer id.
    search = browser.find_element(By.NAME, "q")
    search.send_keys(journey.customer)
    search.submit()  # Selenium submits through a script and does not wait for the next page
    customer = wait_until(
        lambda: browser.find_elements(By.ID, "customer"), timeout=WAIT, what="the customer page"
    )[0].text
    assert "active" in customer and "pro = true" in customer and uid in customer

    # The forced dead letter: listed with its runbook step, replayed after a confirmation, then done.
    record = reload_until(
        browser,
        base,
        lambda d: d.find_element(By.XPATH, f"//div[@data-dead-letter and contains(., '{dead_event}')]"),
        "the dead letter under Needs a human",
    )
    assert record.get_attribute("data-status") == "open"
    assert "replay it here" in browser.find_element(By.ID, "attention").text
    screenshot(browser, "overview")
    record.find_element(By.CSS_SELECTOR, "button.replay").click()
    try:
        browser.switch_to.alert.accept()
    except NoAlertPresentException:
        pytest.fail("the replay asked for no confirmation")
    wait_until(lambda: browser.find_elements(By.ID, "notice"), timeout=WAIT, what="the replay notice")
    assert "Replayed dead letter" in browser.find_element(By.ID, "notice").text
    reload_until(
        browser,
        browser.current_url.split("?")[0],
        lambda d: step_states(d).get(f"{dead_event}/hubspot_upsert") == "done" or None,
        "the replayed message's CRM upsert done",
    )
    screenshot(browser, "dead-letter-replayed")
    browser.get(base)
    replayed = browser.find_element(By.XPATH, f"//div[@data-dead-letter and contains(., '{dead_event}')]")
    assert replayed.get_attribute("data-status") == "replayed"

    # In local mode the sandbox's provider calls are one click away.
    browser.find_element(By.LINK_TEXT, "Provider calls").click()
    assert "/contacts/batch/upsert" in browser.page_source  # HubSpot's contact upsert
    screenshot(browser, "provider-calls")
