"""Cloud Functions entry points. Each name is a catalog entry's `entry_point` (catalog.json)."""

from launchready.billing import billing_worker
from launchready.checkout import create_checkout
from launchready.console.app import ops_console
from launchready.crm import crm_worker
from launchready.deletion import user_deleted
from launchready.digest import ops_digest
from launchready.mailer import email_worker
from launchready.signup import user_created
from launchready.support import support_request
from launchready.tickets import support_worker
from launchready.webhook import stripe_webhook

__all__ = [
    "billing_worker",
    "create_checkout",
    "crm_worker",
    "email_worker",
    "ops_console",
    "ops_digest",
    "stripe_webhook",
    "support_request",
    "support_worker",
    "user_created",
    "user_deleted",
]
