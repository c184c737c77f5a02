"""Reliability policies: delivery guarantees, data durability, log retention, uptime checks and alerts.

Data-bearing types come from components/data/data_bearing.json, the list the program protects by.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ResourceValidationArgs,
    Severity,
    StackValidationArgs,
)

from components.data_bearing import data_bearing_types

from .common import (
    ENVIRONMENT_SCHEMA,
    Report,
    catalog,
    dependency_named,
    environment_of,
    get,
    is_set,
    items,
    known_or,
    of_type,
    resource_policy,
    stack_policy,
)

SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
DATABASE = "gcp:firestore/database:Database"
LOG_BUCKET = "gcp:logging/projectBucketConfig:ProjectBucketConfig"
# Every log bucket type the provider has: a bucket the program declares at any level keeps logs as long.
LOG_BUCKET_TYPES = (
    LOG_BUCKET,
    "gcp:logging/folderBucketConfig:FolderBucketConfig",
    "gcp:logging/organizationBucketConfig:OrganizationBucketConfig",
    "gcp:logging/billingAccountBucketConfig:BillingAccountBucketConfig",
)
UPTIME = "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig"
ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"
METRIC = "gcp:logging/metric:Metric"

# ---- push subscriptions ---------------------------------------------------------------------------------


def _push_subscription(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != SUBSCRIPTION or not args.props.get("pushConfig"):
        return
    topic = is_set(args.props, "deadLetterPolicy", "deadLetterTopic")
    if not topic:
        report(
            "push subscription without deadLetterPolicy.deadLetterTopic: a poison message is retried forever"
        )
    attempts = get(args.props, "deadLetterPolicy", "maxDeliveryAttempts")
    # Pub/Sub accepts 5-100 attempts (https://cloud.google.com/pubsub/docs/handling-failures).
    if topic and not (isinstance(attempts, int | float) and 5 <= attempts <= 100):
        report(f"deadLetterPolicy.maxDeliveryAttempts is {attempts!r}; set 5 to 100")
    if not is_set(args.props, "retryPolicy", "minimumBackoff") or not is_set(
        args.props, "retryPolicy", "maximumBackoff"
    ):
        report(
            "push subscription without retryPolicy (minimumBackoff, maximumBackoff): failures retry at once"
        )
    if not is_set(args.props, "pushConfig", "oidcToken", "serviceAccountEmail"):
        report("push subscription without pushConfig.oidcToken: the worker cannot authenticate Pub/Sub")


PUSH_SUBSCRIPTIONS = resource_policy(
    "push-subscription-delivery",
    "Every push subscription has a dead-letter topic, an exponential retry policy and an OIDC token.",
    _push_subscription,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    tags=["reliability", "pubsub"],
    remediation_steps=(
        "Give the subscription dead_letter_policy (dead_letter_topic, max_delivery_attempts), "
        "retry_policy (minimum_backoff, maximum_backoff) and push_config.oidc_token (service_account_email)."
    ),
)

# ---- Firestore durability ------------------------------------------------------------------------------


def _firestore(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != DATABASE:
        return
    environment = environment_of(args)
    pitr = args.props.get("pointInTimeRecoveryEnablement")
    protection = args.props.get("deleteProtectionState")
    deletion = args.props.get("deletionPolicy")
    if environment == "preview":
        # Review environments are created and destroyed per change: nothing may block `pulumi destroy`.
        if protection == "DELETE_PROTECTION_ENABLED":
            report("a preview environment must stay destroyable: delete protection is enabled")
        if deletion == "ABANDON":
            report(
                "a preview environment must stay destroyable: deletionPolicy ABANDON leaves the data behind"
            )
        return
    if pitr != "POINT_IN_TIME_RECOVERY_ENABLED":
        report(f"pointInTimeRecoveryEnablement is {pitr!r}: a bad write could not be rolled back (7 days)")
    if protection != "DELETE_PROTECTION_ENABLED":
        report(f"deleteProtectionState is {protection!r}: the database can be deleted")
    if deletion != "ABANDON":
        report(f"deletionPolicy is {deletion!r}: removing it from the program would delete the data")


FIRESTORE = resource_policy(
    "firestore-durability",
    "Firestore keeps point-in-time recovery, delete protection and ABANDON deletion; a preview "
    "environment's database stays destroyable.",
    _firestore,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    config_schema=PolicyConfigSchema(properties={"environment": ENVIRONMENT_SCHEMA}),
    tags=["reliability", "data", "environment"],
    remediation_steps=(
        'Set point_in_time_recovery_enablement="POINT_IN_TIME_RECOVERY_ENABLED", '
        'delete_protection_state="DELETE_PROTECTION_ENABLED", deletion_policy="ABANDON" and, in '
        "production, opts=ResourceOptions(protect=True). Preview stacks set the opposite."
    ),
)

# ---- data-bearing resources protected in production, destroyable in preview -----------------------------


def _data_protection(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type not in data_bearing_types():
        return
    environment = environment_of(args)
    if environment == "production" and not args.opts.protect:
        report("a data-bearing resource in production lacks the resource option protect=True")
    if environment == "preview" and args.opts.protect:
        report("a preview environment must stay destroyable: the resource option protect is set")


DATA_PROTECTION = resource_policy(
    "data-protected-in-production",
    "Data-bearing resources (components/data/data_bearing.json) carry protect in production "
    "and never in a preview environment.",
    _data_protection,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    config_schema=PolicyConfigSchema(properties={"environment": ENVIRONMENT_SCHEMA}),
    tags=["reliability", "data", "environment"],
    remediation_steps=(
        "Keep components/protection.py's stack transform registered in __main__.py before any resource; "
        "a new data-bearing type goes into components/data/data_bearing.json."
    ),
)

# ---- log retention ----------------------------------------------------------------------------------------

MIN_RETENTION_DAYS = 7


# LogBucket.retentionDays: "If this value is set to zero at bucket creation time, the default time of 30
# days will be used." https://cloud.google.com/logging/docs/reference/v2/rest/v2/projects.locations.buckets
API_DEFAULT_RETENTION_DAYS = 30


def _log_retention(args: StackValidationArgs, report: Report) -> None:
    minimum = int(args.get_config().get("minimumDays") or MIN_RETENTION_DAYS)
    buckets = of_type(args, *LOG_BUCKET_TYPES)
    if not any(r.resource_type == LOG_BUCKET and r.props.get("bucketId") == "_Default" for r in buckets):
        report(f"the _Default log bucket's retention is not managed; it must keep logs >= {minimum} days")
    for bucket in buckets:
        bucket_id = bucket.props.get("bucketId")
        days = bucket.props.get("retentionDays")
        # _Default is adopted, not created: an unset retention leaves whatever the project had.
        if days in (None, 0) and bucket_id != "_Default":
            days = API_DEFAULT_RETENTION_DAYS
        if not isinstance(days, int | float) or days < minimum:
            shown = f"{days:g}" if isinstance(days, int | float) else repr(days)
            message = f"{bucket_id} log bucket keeps logs {shown} days; this stack's minimum is {minimum}"
            report(message, bucket.urn)


LOG_RETENTION = stack_policy(
    "log-retention-minimum",
    "Every log bucket the program declares, and the project's _Default one, keeps logs at least the "
    "stack's minimum number of days.",
    _log_retention,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.MEDIUM,
    config_schema=PolicyConfigSchema(
        properties={"minimumDays": {"type": "integer", "minimum": MIN_RETENTION_DAYS, "maximum": 3650}}
    ),
    tags=["reliability", "logging"],
    remediation_steps=(
        "Raise launchready:logRetentionDays in Pulumi.<stack>.yaml to at least the minimum, and give every "
        "other log bucket a retention_days of at least the minimum."
    ),
)

# ---- an uptime check per public path ----------------------------------------------------------------------


def _uptime_checks(args: StackValidationArgs, report: Report) -> None:
    checked = {
        str(get(r.props, "httpCheck", "path")): r
        for r in of_type(args, UPTIME)
        if get(r.props, "httpCheck", "useSsl") is True
    }
    for spec in catalog().public_http:
        # A prefix route (`/ops/**`) is checked at its health path (`/ops/healthz`).
        if spec.trigger.probe_path not in checked:
            report(f"no HTTPS uptime check for {spec.name}'s public path {spec.trigger.probe_path}")


UPTIME_CHECKS = stack_policy(
    "uptime-check-per-public-path",
    "Every public HTTP path of the catalog has an HTTPS uptime check.",
    _uptime_checks,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.MEDIUM,
    tags=["reliability", "monitoring"],
    remediation_steps="Add an UptimeTarget for the path in __main__.py's Monitoring arguments.",
)

# ---- an alert per guardrail -----------------------------------------------------------------------------


def _conditions(alert: PolicyResource) -> list[Mapping[str, Any]]:
    return [
        c["conditionThreshold"] for c in items(alert.props.get("conditions")) if c.get("conditionThreshold")
    ]


def _aggregation(condition: Mapping[str, Any]) -> Mapping[str, Any]:
    return get(condition, "aggregations", 0) or {}


def _seconds(duration: Any) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(duration or ""))
    return float(match.group(1)) if match else float("inf")


def _user_metric(metrics: list[PolicyResource], condition: Mapping[str, Any], needle: str) -> bool:
    """The condition watches a log-based metric whose own filter (or extractor) contains `needle`."""
    text = str(condition.get("filter"))
    return any(
        f'logging.googleapis.com/user/{m.props.get("name")}"' in text
        and (needle in str(m.props.get("filter")) or needle in str(m.props.get("valueExtractor")))
        for m in metrics
    )


def _guardrails(args: StackValidationArgs) -> dict[str, Any]:
    metrics = of_type(args, METRIC)
    dlq_subscriptions = [
        str(r.props.get("name"))
        for r in of_type(args, SUBSCRIPTION)
        # The topic's id is computed at a first preview; the topic resource it depends on has the name.
        if str(
            known_or(lambda r=r: r.props.get("topic"), None)
            or dependency_named(r, "gcp:pubsub/topic:Topic", "name")
        ).endswith("-dlq")
    ]
    webhook = next(s for s in catalog().public_http if s.name == "stripe_webhook").resource_name

    def gt(condition: Mapping[str, Any], most: float) -> bool:
        value = condition.get("thresholdValue")
        return (
            condition.get("comparison") == "COMPARISON_GT"
            and isinstance(value, int | float)
            and value <= most
        )

    return {
        "function errors (any ERROR log line)": lambda c: (
            _user_metric(metrics, c, "severity>=ERROR") and gt(c, 0)
        ),
        "more than 3 webhook failures in 10 minutes": lambda c: (
            _user_metric(metrics, c, f'service_name="{webhook}"')
            and gt(c, 3)
            and _seconds(_aggregation(c).get("alignmentPeriod")) <= 600
        ),
        "payment sync lag over 5 minutes": lambda c: (
            _user_metric(metrics, c, "sync_lag_seconds") and gt(c, 300)
        ),
        "messages in a dead-letter topic": lambda c: (
            "pubsub.googleapis.com/subscription/num_undelivered_messages" in str(c.get("filter"))
            and bool(dlq_subscriptions)
            and all(f'"{name}"' in str(c.get("filter")) for name in dlq_subscriptions)
            and gt(c, 0)
        ),
        "p95 function execution over 500 ms": lambda c: (
            "run.googleapis.com/request_latencies" in str(c.get("filter"))
            and _aggregation(c).get("perSeriesAligner") == "ALIGN_PERCENTILE_95"
            and gt(c, 500)
        ),
        "error rate over 1 % on the automation endpoints": lambda c: (
            "run.googleapis.com/request_count" in str(c.get("filter"))
            and '"5xx"' in str(c.get("filter"))
            and "run.googleapis.com/request_count" in str(c.get("denominatorFilter"))
            and all(f'"{s.resource_name}"' in str(c.get("filter")) for s in catalog().public_http)
            and gt(c, 0.01)
        ),
    }


def _alerts(args: StackValidationArgs, report: Report) -> None:
    alerts = of_type(args, ALERT)
    for alert in alerts:
        # The count is known at preview even when the channels' names are not.
        channels = alert.props.get("notificationChannels")
        if not (isinstance(channels, Sequence) and len(channels)):
            report(f"alert policy {alert.props.get('displayName')!r} notifies nobody", alert.urn)
    for guardrail, matches in _guardrails(args).items():
        if not any(matches(condition) for alert in alerts for condition in _conditions(alert)):
            report(f"no alert policy for the guardrail: {guardrail}")
    # The check's id is computed by Google, so an alert finds its check through the dependency the
    # filter creates (the engine's resource dependencies), not by comparing ids.
    for check in of_type(args, UPTIME):
        watched = [
            alert
            for alert in alerts
            if check.urn in {d.urn for d in alert.dependencies}
            and any("uptime_check/check_passed" in str(c.get("filter")) for c in _conditions(alert))
        ]
        if not watched:
            report(f"uptime check {check.props.get('displayName')!r} has no alert policy", check.urn)


ALERTS = stack_policy(
    "alert-per-guardrail",
    "An alert policy with a notification channel for every guardrail: function errors, webhook failures, "
    "payment sync lag, dead letters, p95 execution time, endpoint error rate, and each uptime check.",
    _alerts,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    tags=["reliability", "monitoring"],
    remediation_steps="See components/monitoring.py: each guardrail is an AlertRule wired in Monitoring.",
)

POLICIES = (PUSH_SUBSCRIPTIONS, FIRESTORE, DATA_PROTECTION, LOG_RETENTION, UPTIME_CHECKS, ALERTS)
