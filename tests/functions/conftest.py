"""Fixtures the function tests share, on top of the emulators of tests/conftest.py."""

from collections.abc import Callable, Iterator

import pytest
from google.cloud import firestore
from launchready.platform import after_answer
from launchready.platform.config import settings

from tests.conftest import PROJECT
from tests.functions.helpers import BASE_URL_SETTINGS, Sandbox, Subscription, id_token
from tools.sandbox import SandboxServer, start_sandbox


@pytest.fixture(autouse=True)
def writes_after_answers_land() -> Iterator[None]:
    """A test's writes after its answers land before the next test empties the emulator."""
    yield
    assert after_answer.drain(), "writes after an answer were still running after 10 s"


@pytest.fixture
def db(clean_firestore: str) -> firestore.Client:
    """A client on the emulator's database (the one `clients.db()` reaches), emptied first."""
    return firestore.Client(project=PROJECT)


@pytest.fixture
def user(auth_emulator: str) -> tuple[str, str]:
    """(uid, ID token) of a signed-in account on the Auth emulator."""
    return id_token(auth_emulator)


# --- Pub/Sub: one pull subscription per topic a test observes ----------------------------------


@pytest.fixture
def subscribe(pubsub_emulator: str) -> Iterator[Callable[[str], Subscription]]:
    """Opens pull subscriptions for the test and deletes them afterwards."""
    opened: list[Subscription] = []

    def open_subscription(topic: str) -> Subscription:
        opened.append(Subscription(topic))
        return opened[-1]

    yield open_subscription
    for subscription in opened:
        subscription.delete()


@pytest.fixture
def billing_events(subscribe: Callable[[str], Subscription]) -> Subscription:
    return subscribe("billing-events")


@pytest.fixture
def crm_sync(subscribe: Callable[[str], Subscription]) -> Subscription:
    return subscribe("crm-sync")


@pytest.fixture
def support_topic(subscribe: Callable[[str], Subscription]) -> Subscription:
    return subscribe("support")


@pytest.fixture
def outbox(subscribe: Callable[[str], Subscription]) -> Subscription:
    """What was queued on `notifications`, the emails the email worker would send."""
    return subscribe("notifications")


# --- provider sandbox ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    server, _ = start_sandbox()
    yield server
    server.stop()


@pytest.fixture
def provider_sandbox(sandbox_server: SandboxServer,
                     monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Sandbox]]:
    """Points the providers' adapters at the freshly reset sandbox: `provider_sandbox("hubspot", **env)`."""

    def point(*providers: str, **env: str) -> Sandbox:
        sandbox = Sandbox(sandbox_server.url, providers[0] if len(providers) == 1 else None)
        sandbox.reset()
        base_urls = {BASE_URL_SETTINGS[provider]: sandbox.url for provider in providers}
        # A short timeout by default, so a lost-response fault costs about a second.
        for name, value in {**base_urls, "PROVIDER_TIMEOUT_SECONDS": "1", **env}.items():
            monkeypatch.setenv(name, value)
        settings.cache_clear()  # settings() is read once per process; these tests change it
        return sandbox

    yield point
    settings.cache_clear()
