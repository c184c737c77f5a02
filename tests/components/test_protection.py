"""Production protects exactly its data-bearing resources; other environments stay destroyable."""

from __future__ import annotations

from components.data_bearing import data_bearing_types
from tools.offline.plan.mocks import PlanMocks


def test_production_protects_every_data_bearing_resource(prod: PlanMocks) -> None:
    protected = {(r.type, r.name) for r in prod.resources if r.options["protect"]}
    data_bearing = {(r.type, r.name) for r in prod.resources if r.type in data_bearing_types()}
    assert {t for t, _ in data_bearing} >= {
        "gcp:firestore/database:Database",
        "gcp:secretmanager/secret:Secret",
        "gcp:pubsub/subscription:Subscription",
    }
    assert protected == data_bearing


def test_staging_stays_destroyable(staging: PlanMocks) -> None:
    assert [r.name for r in staging.resources if r.options["protect"]] == []
