"""The founder's journey, one sequence of timed steps shared by `make demo`, `make smoke` and the tests.

A run with an outcome it could not read is never a pass (`NOT_ALL_CHECKED`); see docs/tools.md.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tools.exit_codes import ExitCode

from .hops import Hop, explain, ledger_claimed, ledger_published, ledger_step_done
from .stripe_events import failed_invoice, stripe_event
from .target import AuthUser, JourneyTarget, NotChecked, WaitTimeout, contact_tags, email_tags, wait_until

T = TypeVar("T")
STEP_TIMEOUT = 60.0
# The seed's targets: a payment's effects within 60 s, a support request's within 2 minutes.
PAYMENT_TARGET_S = 60.0
SUPPORT_TARGET_S = 120.0
# How long "nothing new happened" is watched for after a duplicate: longer than a push round trip.
QUIET_PERIOD = 4.0
REFERENCE_PATTERN = re.compile(r"^SR-[0-9A-HJKMNP-TV-Z]{6}$")


# Credentials that ride in query strings (the web API key's `key=`), kept out of printed errors.
_QUERY_CREDENTIAL = re.compile(r"([?&](?:key|api_key|token|access_token)=)[^&\s'\"]+", re.IGNORECASE)


def redacted(text: str) -> str:
    return _QUERY_CREDENTIAL.sub(r"\1[redacted]", text)


class StepFailed(AssertionError):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


@dataclass
class Journey:
    """What one run of the journey created, shared by its steps (and reusable by the e2e tests)."""

    stack: JourneyTarget
    user: AuthUser | None = None
    session_id: str = ""
    customer: str = field(default_factory=lambda: "cus_" + secrets.token_hex(7))
    subscription: str = field(default_factory=lambda: "sub_" + secrets.token_hex(12))
    paid_event: dict[str, Any] = field(default_factory=dict)
    failed_event_id: str = ""
    reference: str = ""
    unchecked: list[str] = field(default_factory=list)  # "what: why", in the order met

    @property
    def signed_up(self) -> AuthUser:
        assert self.user is not None, "sign-up has not run"
        return self.user

    def billing(self) -> dict[str, Any]:
        # Read as the user: the app's own get of users/{uid} is what the rules allow.
        profile = self.stack.get_document(f"users/{self.signed_up.uid}", as_user=self.signed_up) or {}
        return profile.get("billing") or {}

    def readable(self, what: str, read: Callable[[], T]) -> T | None:
        """`read()`, or None when the target cannot read it (recorded in `unchecked`, with why)."""
        try:
            return read()
        except NotChecked as gap:
            self.unchecked.append(f"{what}: {gap}")
            return None

    def ledger_evidence(self, hops: list[Hop], since: int, timeout: float = STEP_TIMEOUT) -> str:
        """When this step left outcomes unchecked (`unchecked` grew past `since`), the chain's own records
        must show it ran: waits until every hop that can be read (ledger steps, documents) happened.
        Returns a note for the step's outcome ('' when nothing was unchecked)."""
        if len(self.unchecked) == since:
            return ""

        missing: list[str] = []

        def readable_hops_done() -> tuple[int] | None:
            """(how many readable hops happened,) once every readable one did; None while one has not."""
            missing.clear()
            done = 0
            for hop in hops:
                try:
                    if not hop.happened():
                        missing.append(hop.what)
                        return None
                except NotChecked:
                    continue
                done += 1
            return (done,)

        try:
            (done,) = wait_until(readable_hops_done, timeout=timeout, what="the chain's records in Firestore")
        except WaitTimeout as timeout_error:
            raise WaitTimeout(f"{timeout_error}; not recorded: {', '.join(missing)}") from None
        if done == 0:
            return "; none of the chain's records can be read from here"
        return f"; the chain's records show {done} hop(s) done"

    def sign_up(self) -> str:
        self.user = self.stack.sign_up(display_name="Ada Founder")
        response = self.stack.create_profile(self.user, display_name="Ada Founder")
        check(response.status_code == 200, f"profile write rejected: {response.status_code} {response.text}")
        user, since = self.user, len(self.unchecked)
        contact = self.readable(
            "the CRM lead",
            lambda: wait_until(
                lambda: self._contact_with(stage="lead", tags={"signed_up"}),
                timeout=STEP_TIMEOUT,
                what=f"a CRM lead for {user.email}",
            ),
        )
        lead = f"is a CRM lead tagged {sorted(contact_tags(contact))}" if contact else "signed up"
        return f"{user.email} (uid {user.uid}) {lead}{self.ledger_evidence(self.sign_up_hops(), since)}"

    def _contact_with(self, *, stage: str, tags: set[str]) -> dict[str, Any] | None:
        contact = self.stack.contact(self.signed_up.email)
        if contact and contact["properties"].get("lifecyclestage") == stage and tags <= contact_tags(contact):
            return contact
        return None

    def checkout(self) -> str:
        response = self.stack.call(
            "create_checkout", self.signed_up, {"client_request_id": str(uuid.uuid4())}
        )
        check(
            response.status_code == 200, f"create_checkout answered {response.status_code}: {response.text}"
        )
        body = response.json()
        self.session_id = body["id"]
        session = self.readable(
            "the Checkout Session at Stripe", lambda: self.stack.checkout_session(body["id"]) or {}
        )
        if session is not None:
            check(bool(session), f"session {self.session_id} is not at Stripe")
            check(session.get("client_reference_id") == self.signed_up.uid, "session does not carry the uid")
        return f"Checkout Session {self.session_id} for the user; pay page {body['url']}"

    def payment(self) -> str:
        # The target completes the session and delivers the signed checkout.session.completed: the
        # sandbox's pay page locally, a test-mode event signed with the environment's secret when deployed.
        outcome = self.stack.pay(self.session_id, self.signed_up)
        self.paid_event = outcome["event"]
        session = self.paid_event["data"]["object"]
        self.customer, self.subscription = session["customer"], session["subscription"]
        check(
            outcome["webhook_status"] == 200,
            f"webhook answered {outcome['webhook_status']}: {outcome['webhook_answer']}",
        )
        answer = outcome["webhook_answer"]
        check(answer.get("status") == "published", f"webhook did not publish: {answer}")
        wait_until(
            lambda: self.billing().get("status") == "active",
            timeout=STEP_TIMEOUT,
            what="users/{uid}.billing.status == active",
        )
        wait_until(
            lambda: self.stack.custom_claims(self.signed_up).get("pro") is True,
            timeout=STEP_TIMEOUT,
            what="the pro custom claim",
        )
        self.user = self.stack.sign_in(self.signed_up)  # the app refreshes its token to see the claim
        since = len(self.unchecked)
        customer = self.readable(
            "the CRM customer",
            lambda: wait_until(
                lambda: self._contact_with(stage="customer", tags={"signed_up", "customer"}),
                timeout=STEP_TIMEOUT,
                what="the CRM contact to become a customer",
            ),
        )
        crm = ", CRM lifecycle customer" if customer else ""
        ledger = self.ledger_evidence(self.payment_hops(), since)
        return f"signed {self.paid_event['id']} accepted; billing active, pro claim set{crm}{ledger}"

    def failed_renewal(self) -> str:
        price = "price_local_pro"
        invoice = failed_invoice(
            "in_" + secrets.token_hex(12), self.customer, self.subscription, self.signed_up.email, price
        )
        event = stripe_event("invoice.payment_failed", invoice)
        self.failed_event_id = event["id"]
        response = self.stack.post_stripe_event(event)
        check(response.status_code == 200, f"webhook answered {response.status_code}: {response.text}")
        billing = wait_until(
            lambda: (b := self.billing()).get("payment_failed") and b,
            timeout=STEP_TIMEOUT,
            what="billing.payment_failed",
        )
        # A failed payment grants nothing: the subscriber is past_due while Stripe retries the card.
        check(
            billing.get("status") == "past_due", f"billing status is {billing.get('status')!r}, not past_due"
        )
        since = len(self.unchecked)
        recovery = self.readable(
            "the recovery email", lambda: self._exactly_one_email("category", "payment_recovery")
        )
        self.readable(
            "the CRM payment_failed tag",
            lambda: wait_until(
                lambda: self._contact_with(stage="customer", tags={"payment_failed"}),
                timeout=STEP_TIMEOUT,
                what="the CRM payment_failed tag",
            ),
        )
        email = f", one recovery email: {recovery['subject']!r}" if recovery else ""
        ledger = self.ledger_evidence(self.failed_renewal_hops(), since)
        return f"status past_due (no new access){email}{ledger}"

    def _exactly_one_email(self, tag: str, value: str) -> dict[str, Any]:
        wait_until(lambda: self._emails(tag, value), timeout=STEP_TIMEOUT, what=f"the {value} email")
        time.sleep(QUIET_PERIOD)
        emails = self._emails(tag, value)
        check(len(emails) == 1, f"{len(emails)} {value} emails were sent, expected exactly one")
        return emails[0]

    def _emails(self, tag: str, value: str) -> list[dict[str, Any]]:
        return [e for e in self.stack.emails_to(self.signed_up.email) if email_tags(e).get(tag) == value]

    def support(self) -> str:
        request = {
            "subject": "Invoice address",
            "message": "Please put my company name on the invoice.",
            "category": "billing",
            "client_request_id": str(uuid.uuid4()),
        }
        response = self.stack.call("support_request", self.signed_up, request)
        check(
            response.status_code == 202, f"support_request answered {response.status_code}: {response.text}"
        )
        self.reference = response.json()["reference"]
        check(bool(REFERENCE_PATTERN.match(self.reference)), f"unexpected reference {self.reference!r}")
        again = self.stack.call("support_request", self.signed_up, request)
        check(
            again.status_code == 202 and again.json()["reference"] == self.reference,
            "a replay of the same client_request_id got another reference",
        )
        since = len(self.unchecked)
        ticket = self.readable("the Zendesk ticket", self._one_ticket)
        ack = self.readable("the acknowledgement email", self._one_acknowledgement)
        found = (f", Zendesk ticket #{ticket['id']}" if ticket else "") + (
            ", one acknowledgement email" if ack else ""
        )
        ledger = self.ledger_evidence(self.support_hops(), since, SUPPORT_TARGET_S)
        return f"reference {self.reference}{found}{ledger}"

    def _one_ticket(self) -> dict[str, Any]:
        wait_until(
            lambda: self.stack.tickets(self.reference), timeout=SUPPORT_TARGET_S, what="the Zendesk ticket"
        )
        time.sleep(QUIET_PERIOD)
        tickets = self.stack.tickets(self.reference)
        check(len(tickets) == 1, f"{len(tickets)} tickets for {self.reference}, expected one")
        return tickets[0]

    def _one_acknowledgement(self) -> dict[str, Any]:
        wait_until(
            lambda: self._emails("kind", "support_ack"),
            timeout=SUPPORT_TARGET_S,
            what="the acknowledgement email",
        )
        time.sleep(QUIET_PERIOD)
        acks = self._emails("kind", "support_ack")
        check(len(acks) == 1, f"{len(acks)} acknowledgement emails, expected one")
        return acks[0]

    def replay(self) -> str:
        observe, observed = self._provider_activity()
        before_activity = self.readable(f"the {observed} after the replay", observe)
        before_billing = self.billing()
        response = self.stack.post_stripe_event(self.paid_event)  # a fresh signature, as Stripe's retries
        check(response.status_code == 200, f"replay answered {response.status_code}: {response.text}")
        check(response.json().get("status") == "duplicate", f"replay was not recognised: {response.text}")
        time.sleep(QUIET_PERIOD)
        if before_activity is not None:
            check(observe() == before_activity, f"the replay changed the {observed}")
        check(self.billing() == before_billing, "the replay changed users/{uid}.billing")
        unchanged = f"{observed} unchanged, " if before_activity is not None else ""
        return f"{self.paid_event['id']} answered 'duplicate'; {unchanged}billing unchanged"

    def _provider_activity(self) -> tuple[Callable[[], Any], str]:
        """How a replay's reaching the providers is seen: the count of every provider call where the
        target records them (the local sandbox), else the user's records at the providers (the CRM
        contact as last written, the emails sent to them)."""
        try:
            self.stack.provider_call_count()
            return self.stack.provider_call_count, "provider call count"
        except NotChecked:
            pass

        def footprint() -> tuple[Any, ...]:
            contact = self.stack.contact(self.signed_up.email) or {}
            emails = self.stack.emails_to(self.signed_up.email)
            return contact.get("updatedAt"), contact.get("properties"), sorted(e["id"] for e in emails)

        return footprint, "user's CRM contact and emails"

    # ---- the hops of each step's chain, in order (for a step that times out) ----

    def _step_done(self, key: str, step: str) -> Callable[[], bool]:
        return lambda: ledger_step_done(self.stack, key, step)

    def sign_up_hops(self) -> list[Hop]:
        uid = self.user.uid if self.user else ""
        key = f"signup:{uid}"
        return [
            Hop(
                "the profile users/{uid} was written",
                lambda: bool(uid) and self.stack.get_document(f"users/{uid}") is not None,
                "user_created",
            ),
            Hop(
                "the trigger bridge delivered the create event to user_created",
                lambda: ledger_claimed(self.stack, key),
                "trigger-bridge",
            ),
            Hop(
                "user_created published the sign-up to crm-sync",
                self._step_done(key, "publish"),
                "user_created",
            ),
            Hop(
                "crm_worker upserted the HubSpot lead",
                lambda: self.stack.contact(self.signed_up.email) is not None,
                "crm_worker",
                "hubspot",
            ),
        ]

    def _billing_hops(self, event_id: str, last: list[Hop]) -> list[Hop]:
        key = f"stripe:{event_id}"
        return [
            Hop(
                "stripe_webhook published the event to billing-events",
                lambda: ledger_published(self.stack, key),
                "stripe_webhook",
            ),
            Hop(
                "billing_worker applied it to users/{uid}.billing",
                self._step_done(key, "apply"),
                "billing_worker",
            ),
            *last,
        ]

    def payment_hops(self) -> list[Hop]:
        key = f"stripe:{self.paid_event.get('id', '')}"
        return self._billing_hops(
            self.paid_event.get("id", ""),
            [
                Hop(
                    "billing_worker set the pro custom claim",
                    self._step_done(key, "claims"),
                    "billing_worker",
                ),
                Hop(
                    "billing_worker published the change to crm-sync",
                    self._step_done(key, "crm"),
                    "billing_worker",
                ),
                Hop(
                    "crm_worker made the HubSpot contact a customer",
                    lambda: self._contact_with(stage="customer", tags={"customer"}) is not None,
                    "crm_worker",
                    "hubspot",
                ),
            ],
        )

    def failed_renewal_hops(self) -> list[Hop]:
        key = f"stripe:{self.failed_event_id}"
        return self._billing_hops(
            self.failed_event_id,
            [
                Hop(
                    "billing_worker queued the recovery email on notifications",
                    self._step_done(key, "notify"),
                    "billing_worker",
                ),
                Hop(
                    "email_worker sent the recovery email through Resend",
                    lambda: bool(self._emails("category", "payment_recovery")),
                    "email_worker",
                    "resend",
                ),
                Hop(
                    "billing_worker published the change to crm-sync",
                    self._step_done(key, "crm"),
                    "billing_worker",
                ),
                Hop(
                    "crm_worker tagged the HubSpot contact payment_failed",
                    lambda: self._contact_with(stage="customer", tags={"payment_failed"}) is not None,
                    "crm_worker",
                    "hubspot",
                ),
            ],
        )

    def support_hops(self) -> list[Hop]:
        key = f"support:{self.reference}"
        return [
            Hop(
                "support_request stored the request",
                lambda: (
                    bool(self.reference)
                    and self.stack.get_document(f"support_requests/{self.reference}") is not None
                ),
                "support_request",
            ),
            Hop(
                "support_request published it to support", self._step_done(key, "publish"), "support_request"
            ),
            Hop(
                "support_worker created the Zendesk ticket",
                self._step_done(key, "zendesk_ticket"),
                "support_worker",
                "zendesk",
            ),
            Hop(
                "support_worker queued the acknowledgement on notifications",
                self._step_done(key, "ack_email"),
                "support_worker",
            ),
            Hop(
                "email_worker sent the acknowledgement through Resend",
                lambda: bool(self._emails("kind", "support_ack")),
                "email_worker",
                "resend",
            ),
        ]


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[], str]
    look: str
    hops: Callable[[], list[Hop]] = list
    target_s: float = PAYMENT_TARGET_S


def steps(journey: Journey, endpoints: dict[str, Any] | None = None) -> list[Step]:
    """The journey's steps; `endpoints` (a local stack's) points each at its log files and the sandbox's
    state, without it (a deployed stack) at the functions' logs in Cloud Logging and the providers."""
    if endpoints is not None:
        logs = Path(endpoints["logs_dir"])
        state, requests_log = endpoints["sandbox"]["state"], endpoints["sandbox"]["requests"]

        def log(*names: str) -> str:
            return ", ".join(str(logs / f"{name}.log") for name in names)
    else:
        state, requests_log = "the providers' test-mode dashboards", "the providers' request logs"

        def log(*names: str) -> str:
            return f"Cloud Logging, functions {', '.join(names)}"

    return [
        Step(
            "Sign-up: Auth user + users/{uid} profile under the rules",
            journey.sign_up,
            f"{state} (contacts) · {log('user_created', 'crm_worker')}",
            journey.sign_up_hops,
        ),
        Step(
            "Checkout: create_checkout with the ID token",
            journey.checkout,
            f"{state} (checkout_sessions) · {log('create_checkout')}",
        ),
        Step(
            "Payment: the signed checkout.session.completed (locally from the sandbox pay page)",
            journey.payment,
            f"Firestore users/{{uid}}.billing · {log('stripe_webhook', 'billing_worker', 'crm_worker')}",
            journey.payment_hops,
        ),
        Step(
            "Failed renewal: invoice.payment_failed",
            journey.failed_renewal,
            f"{state} (emails) · {log('billing_worker', 'email_worker')}",
            journey.failed_renewal_hops,
        ),
        Step(
            "Support request",
            journey.support,
            f"{state} (tickets, emails) · {log('support_request', 'support_worker', 'email_worker')}",
            journey.support_hops,
            SUPPORT_TARGET_S,
        ),
        Step(
            "Replay: the same webhook again",
            journey.replay,
            f"{requests_log} · {log('stripe_webhook')}",
        ),
    ]


def run_steps(
    journey: Journey, plan: list[Step], logs_dir: Path | None, out: Callable[[str], None]
) -> ExitCode:
    """Run the steps in order, each timed against its target; 0 when all pass, 1 at the first failure,
    NOT_ALL_CHECKED when every step passed but some outcome could not be read (listed per step).

    A step that times out names the hop of its chain that did not happen (when `logs_dir` is given).
    """
    started = time.monotonic()
    for number, step in enumerate(plan, start=1):
        out(f"{number}. {step.title}")
        since = time.monotonic()
        gaps_before = len(journey.unchecked)
        try:
            outcome = step.run()
        except (StepFailed, WaitTimeout, AssertionError) as exc:
            out(f"   ✗ failed after {time.monotonic() - since:.1f} s: {exc}\n   look: {step.look}")
            if isinstance(exc, WaitTimeout) and logs_dir is not None:
                for line in explain(step.hops(), journey.stack, logs_dir):
                    out(f"   {line}")
            return ExitCode.FAILED
        except Exception as exc:  # a connection error etc.: still a failed step, reported the same way
            error = redacted(repr(exc))
            out(f"   ✗ error after {time.monotonic() - since:.1f} s: {error}\n   look: {step.look}")
            return ExitCode.FAILED
        took = time.monotonic() - since
        if took > step.target_s:
            out(f"   ✗ {took:.1f} s, over the {step.target_s:.0f} s target: {outcome}\n   look: {step.look}")
            return ExitCode.FAILED
        out(f"   ✓ {took:.1f} s (target {step.target_s:.0f} s)  {outcome}\n   look: {step.look}")
        for gap in journey.unchecked[gaps_before:]:
            out(f"   ○ not checked: {gap}")
    took = time.monotonic() - started
    if journey.unchecked:
        out(
            f"\nEvery step passed what it could check in {took:.1f} s, but {len(journey.unchecked)} "
            "outcome(s) were not checked (○ above): not a full pass."
        )
        return ExitCode.NOT_ALL_CHECKED
    out(f"\nAll steps passed in {took:.1f} s.")
    return ExitCode.OK
