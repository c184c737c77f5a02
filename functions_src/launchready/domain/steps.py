"""The names of the ledger's steps (`events/{key}/steps/{step}`), shared by the handlers that run them,
the journal that records them and the console that shows them.

A step name is stored in Firestore for good: renaming one makes every recorded step of that name look
unfinished, so a redelivery would run it again. Names are only ever added.
"""

# Hand-offs to a topic: the Stripe webhook, a sign-up and a support request each publish once.
PUBLISH = "publish"
# billing_worker: the billing transition, the `pro` claim, the CRM sync message and the emails.
APPLY = "apply"
CLAIMS = "claims"
CRM = "crm"
NOTIFY = "notify"
# Provider calls of the workers.
HUBSPOT_UPSERT = "hubspot_upsert"
ZENDESK_TICKET = "zendesk_ticket"
WRITE_BACK = "write_back"
ACK_EMAIL = "ack_email"
FAILED_NOTICE = "failed_notice"  # a request Zendesk refused: marked failed, the user told once
RESEND_SEND = "resend_send"
# ops_digest: the day's digest email.
DIGEST_EMAIL = "email"
# user_deleted (its `claims` and `crm` steps share the names above).
TOMBSTONE = "tombstone"
STRIPE_CANCEL = "stripe"

# The steps each kind of ledger entry (the key's prefix) goes through, in order.
BY_KIND: dict[str, tuple[str, ...]] = {
    "stripe": (PUBLISH, APPLY),
    "signup": (PUBLISH,),
    "support": (PUBLISH, ZENDESK_TICKET, WRITE_BACK, ACK_EMAIL),
    "crm": (HUBSPOT_UPSERT,),
    "email": (RESEND_SEND,),
}
