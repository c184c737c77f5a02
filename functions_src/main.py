"""Cloud Functions entry points. Each name is a catalog entry's `entry_point` (catalog.json)."""

from launchready.handlers.billing_worker import billing_worker
from launchready.handlers.create_checkout import create_checkout
from launchready.handlers.crm_worker import crm_worker
from launchready.handlers.email_worker import email_worker
from launchready.handlers.ops_console import ops_console
from launchready.handlers.ops_digest import ops_digest
from launchready.handlers.stripe_webhook import stripe_webhook
from launchready.handlers.support_request import support_request
from launchready.handlers.support_worker import support_worker
from launchready.handlers.user_created import user_created
from launchready.handlers.user_deleted import user_deleted

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
