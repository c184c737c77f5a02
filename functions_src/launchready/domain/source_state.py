"""One payment source's current state for one user, as read from the provider: the unit entitlements are
computed from. A user is entitled while any source's state grants access; each source's own table decides
`grants_access` from the provider's status (docs/architecture.md, "Entitlements").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Source = Literal["stripe", "app_store", "google_play"]


@dataclass(frozen=True)
class SourceState:
    """A subscription as its provider reports it now.

    source: which provider. reference: its identity there (Stripe subscription id, App Store
    originalTransactionId, Google Play purchase token). status: the provider's own status value, verbatim.
    grants_access: the source's table applied to `status`. sandbox: bought in a test environment (App
    Store Sandbox, a Play license tester, Stripe test mode), kept out of revenue, the CRM stage and the
    digest. period_end: end of the paid period (UTC), None if the provider gives none. confirmed_at: when
    this state was read from the provider (UTC).
    """

    source: Source
    reference: str
    status: str
    grants_access: bool
    sandbox: bool
    period_end: datetime | None
    confirmed_at: datetime
