"""The runbook step for each kind of problem the console lists, from docs/operations.md."""

RUNBOOK = "docs/operations.md"

STEPS = {
    "dead_letter": (
        "A message failed every delivery attempt. Read the error, fix the cause (provider outage, "
        "credentials, bad data), then replay it here or with `make replay-dlq TOPIC=<topic>`; steps that "
        f"already ran are skipped. ({RUNBOOK}, Dead letters and replay)"
    ),
    "sync_failure": (
        "A provider refused the call permanently (4xx). Fix the data or the provider set-up the code "
        "names (e.g. a HubSpot property option, an invalid email address); the next change of the user "
        f"syncs again. ({RUNBOOK}, Failures that are acknowledged; Provider set-up)"
    ),
    "unmatched_event": (
        "A Stripe event matched no user (unknown customer, checkout not started by create_checkout). Find "
        "the customer in the Stripe dashboard, link it to the user (stripe_customers/{customer} = uid) and "
        f"resend the event from Stripe. ({RUNBOOK}, Failures that are acknowledged)"
    ),
    "dispute": (
        "A customer disputed a charge: money is at stake. Answer it in the Stripe dashboard before its "
        f"due date with the evidence (receipt, usage, contact history). ({RUNBOOK}, Alerts)"
    ),
    "payment_sync_lag": (
        "Paying users wait for their unlock. Check the billing-events backlog, billing_worker warnings "
        f"and Stripe's delivery log. ({RUNBOOK}, Alerts: payment sync lag over 5 minutes)"
    ),
}
