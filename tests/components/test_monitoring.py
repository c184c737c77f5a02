"""The monitoring component under Pulumi mocks: uptime checks, log-based metrics, alerts and retention."""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi
import pytest

from components.monitoring import Monitoring, MonitoringArgs, UptimeTarget
from tools.offline.plan.mocks import PlanMocks, RecordedResource, run_under_mocks

CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
UPTIME = "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig"
POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
METRIC = "gcp:logging/metric:Metric"
BUCKET = "gcp:logging/projectBucketConfig:ProjectBucketConfig"
PROJECT = "launchready-staging"
TOPICS = ("billing-events", "crm-sync", "support", "notifications")
DLQ_SUBSCRIPTIONS = [f"{topic}-dlq-sub" for topic in TOPICS]


def monitoring_args(**overrides: Any) -> MonitoringArgs:
    args = MonitoringArgs(
        project_id=PROJECT,
        alert_email="ops@example.com",
        uptime_targets=[
            UptimeTarget(name="api", host="api.example.com", path="/healthz"),
            UptimeTarget(name="app", host="app.example.com", path="/"),
        ],
        function_names=["stripe_webhook", "create_checkout", "support_request", "billing_worker"],
        webhook_function="stripe_webhook",
        # A full id, as a Subscription's `id` output gives it, must work as well as a short name.
        dead_letter_subscriptions=[f"projects/{PROJECT}/subscriptions/{DLQ_SUBSCRIPTIONS[0]}"]
        + DLQ_SUBSCRIPTIONS[1:],
        log_retention_days=30,
        endpoint_functions=["stripe_webhook", "create_checkout", "support_request"],
    )
    return dataclasses.replace(args, **overrides)


def build(args: MonitoringArgs) -> PlanMocks:
    mocks = PlanMocks()
    mocks.install()
    run_under_mocks(lambda: Monitoring("monitoring", args))
    return mocks


@pytest.fixture(scope="module")
def monitoring() -> PlanMocks:
    return build(monitoring_args())


def policy(mocks: PlanMocks, key: str) -> RecordedResource:
    return mocks.named(POLICY, f"monitoring-alert-{key}")


def threshold_of(resource: RecordedResource) -> dict[str, Any]:
    (condition,) = resource.inputs["conditions"]
    return condition["conditionThreshold"]


def metric(mocks: PlanMocks, key: str) -> RecordedResource:
    return mocks.named(METRIC, f"monitoring-{key}")


def test_every_child_is_parented_to_the_component_and_in_the_project(monitoring: PlanMocks) -> None:
    component = monitoring.named("launchready:monitoring:Monitoring", "monitoring")
    children = [r for r in monitoring.resources if r is not component]
    assert {r.parent for r in children} == {"monitoring"}
    assert {r.inputs["project"] for r in children} == {PROJECT}


def test_email_notification_channel(monitoring: PlanMocks) -> None:
    (channel,) = monitoring.of_type(CHANNEL)
    assert channel.inputs["type"] == "email"
    assert channel.inputs["labels"] == {"email_address": "ops@example.com"}


def test_every_alert_policy_notifies_the_email_channel(monitoring: PlanMocks) -> None:
    policies = monitoring.of_type(POLICY)
    # One per uptime target and one certificate expiry per host (two hosts here), plus function errors,
    # webhook failures, payment sync lag, dead letters, p95 latency and the endpoints' error rate.
    assert len(policies) == 2 + 2 + 6
    channel_name = f"projects/{PROJECT}/notificationChannels/"
    for resource in policies:
        (channel,) = resource.inputs["notificationChannels"]
        assert channel.startswith(channel_name), resource.name
        assert resource.inputs["combiner"] == "OR"
        assert resource.inputs["documentation"]["content"].strip(), resource.name


def test_one_https_uptime_check_per_target(monitoring: PlanMocks) -> None:
    checks = {r.name: r.inputs for r in monitoring.of_type(UPTIME)}
    assert set(checks) == {"monitoring-uptime-api", "monitoring-uptime-app"}
    api = checks["monitoring-uptime-api"]
    assert api["monitoredResource"] == {
        "type": "uptime_url",
        "labels": {"project_id": PROJECT, "host": "api.example.com"},
    }
    http = api["httpCheck"]
    assert http["requestMethod"] == "GET"
    assert http["path"] == "/healthz"
    assert http["useSsl"] is True
    assert http["validateSsl"] is True
    assert http["port"] == 443


def test_uptime_alert_watches_its_own_check(monitoring: PlanMocks) -> None:
    condition = threshold_of(policy(monitoring, "uptime-api"))
    # The mocks give each check the id shape the API returns: <display id>-<hash>.
    assert 'metric.type="monitoring.googleapis.com/uptime_check/check_passed"' in condition["filter"]
    assert 'metric.label.check_id="monitoring-uptime-api-' in condition["filter"]
    assert condition["comparison"] == "COMPARISON_GT"
    assert condition["thresholdValue"] == 1
    (aggregation,) = condition["aggregations"]
    assert aggregation["crossSeriesReducer"] == "REDUCE_COUNT_FALSE"


def test_an_alert_fires_two_weeks_before_each_hosts_certificate_expires(monitoring: PlanMocks) -> None:
    for target in ("api", "app"):
        resource = policy(monitoring, f"certificate-{target}")
        condition = threshold_of(resource)
        assert 'metric.type="monitoring.googleapis.com/uptime_check/time_until_ssl_cert_expires"' in (
            condition["filter"]
        )
        assert 'resource.type="uptime_url"' in condition["filter"]
        assert condition["comparison"] == "COMPARISON_LT"
        assert condition["thresholdValue"] >= 14
    # One per host, however many paths of that host are checked.
    names = [r.name for r in monitoring.of_type(POLICY) if "certificate" in r.name]
    assert len(names) == 2


def test_uptime_alerts_wait_for_the_certificate_while_the_checks_run() -> None:
    # A first deploy's functions phase: the API host has no certificate yet, so every check fails.
    mocks = build(monitoring_args(uptime_alerts=False))
    assert {r.name for r in mocks.of_type(UPTIME)} == {"monitoring-uptime-api", "monitoring-uptime-app"}
    names = {r.name for r in mocks.of_type(POLICY)}
    assert not any("uptime" in name or "certificate" in name for name in names)
    assert "monitoring-alert-dead-letters" in names


def test_function_errors_alert_on_any_error_log_of_the_functions(monitoring: PlanMocks) -> None:
    errors = metric(monitoring, "function-errors").inputs
    assert "severity>=ERROR" in errors["filter"]
    for service in ("stripe-webhook", "create-checkout", "support-request", "billing-worker"):
        assert f'"{service}"' in errors["filter"]
    # Deliberate 500s that ask Pub/Sub to retry are request-log lines; they must not page anyone.
    assert 'NOT log_id("run.googleapis.com/requests")' in errors["filter"]
    condition = threshold_of(policy(monitoring, "function-errors"))
    assert f'logging.googleapis.com/user/{errors["name"]}"' in condition["filter"]
    assert condition["thresholdValue"] == 0
    assert condition["comparison"] == "COMPARISON_GT"


def test_webhook_failures_alert_after_more_than_three_in_ten_minutes(monitoring: PlanMocks) -> None:
    failures = metric(monitoring, "webhook-failures").inputs
    assert 'resource.labels.service_name="stripe-webhook"' in failures["filter"]
    assert "httpRequest.status>=400" in failures["filter"]
    assert failures["metricDescriptor"]["metricKind"] == "DELTA"
    condition = threshold_of(policy(monitoring, "webhook-failures"))
    assert f'logging.googleapis.com/user/{failures["name"]}"' in condition["filter"]
    assert condition["comparison"] == "COMPARISON_GT"
    assert condition["thresholdValue"] == 3
    (aggregation,) = condition["aggregations"]
    assert aggregation["alignmentPeriod"] == "600s"
    assert aggregation["perSeriesAligner"] == "ALIGN_SUM"


def test_payment_sync_lag_is_a_distribution_alerting_over_five_minutes(monitoring: PlanMocks) -> None:
    lag = metric(monitoring, "payment-sync-lag").inputs
    assert 'jsonPayload.message="payment synced"' in lag["filter"]
    assert lag["valueExtractor"] == "EXTRACT(jsonPayload.sync_lag_seconds)"
    assert lag["metricDescriptor"]["valueType"] == "DISTRIBUTION"
    # A bucket boundary at the threshold keeps percentile interpolation from crossing it.
    assert 300 in lag["bucketOptions"]["explicitBuckets"]["bounds"]
    condition = threshold_of(policy(monitoring, "payment-sync-lag"))
    assert f'logging.googleapis.com/user/{lag["name"]}"' in condition["filter"]
    assert condition["thresholdValue"] == 300
    assert condition["comparison"] == "COMPARISON_GT"
    (aggregation,) = condition["aggregations"]
    assert aggregation["perSeriesAligner"].startswith("ALIGN_PERCENTILE")


def test_dead_letter_alert_fires_on_any_message_in_every_dlq_subscription(monitoring: PlanMocks) -> None:
    condition = threshold_of(policy(monitoring, "dead-letters"))
    assert 'metric.type="pubsub.googleapis.com/subscription/num_undelivered_messages"' in condition["filter"]
    quoted = ", ".join(f'"{name}"' for name in DLQ_SUBSCRIPTIONS)
    assert f"resource.label.subscription_id=one_of({quoted})" in condition["filter"]
    assert condition["thresholdValue"] == 0
    assert condition["comparison"] == "COMPARISON_GT"


def test_default_log_bucket_keeps_logs_for_the_configured_days(monitoring: PlanMocks) -> None:
    (bucket,) = monitoring.of_type(BUCKET)
    assert bucket.inputs["bucketId"] == "_Default"
    assert bucket.inputs["location"] == "global"
    assert bucket.inputs["retentionDays"] == 30


def test_minimum_retention_is_accepted() -> None:
    (bucket,) = build(monitoring_args(log_retention_days=7)).of_type(BUCKET)
    assert bucket.inputs["retentionDays"] == 7


def test_dead_letter_subscriptions_may_be_outputs() -> None:
    mocks = PlanMocks()
    mocks.install()

    def program() -> None:
        names: list[pulumi.Input[str]] = [pulumi.Output.from_input(n) for n in DLQ_SUBSCRIPTIONS]
        Monitoring("monitoring", monitoring_args(dead_letter_subscriptions=names))

    run_under_mocks(program)
    condition = threshold_of(policy(mocks, "dead-letters"))
    assert '"support-dlq-sub"' in condition["filter"]


def test_p95_latency_alert_over_500_ms_on_every_function(monitoring: PlanMocks) -> None:
    condition = threshold_of(policy(monitoring, "function-latency-p95"))
    assert 'metric.type="run.googleapis.com/request_latencies"' in condition["filter"]
    for service in ("stripe-webhook", "create-checkout", "support-request", "billing-worker"):
        assert f'"{service}"' in condition["filter"]
    assert condition["thresholdValue"] == 500  # request_latencies is in milliseconds
    assert condition["comparison"] == "COMPARISON_GT"
    (aggregation,) = condition["aggregations"]
    assert aggregation["perSeriesAligner"] == "ALIGN_PERCENTILE_95"
    assert aggregation["groupByFields"] == ["resource.label.service_name"]


def test_error_rate_alert_is_the_5xx_ratio_over_1_percent_on_the_endpoints(monitoring: PlanMocks) -> None:
    condition = threshold_of(policy(monitoring, "endpoint-error-rate"))
    assert 'metric.type="run.googleapis.com/request_count"' in condition["filter"]
    assert 'metric.label.response_code_class="5xx"' in condition["filter"]
    # The denominator counts every request of the same services, so the threshold is a ratio.
    assert condition["denominatorFilter"] == condition["filter"].replace(
        ' AND metric.label.response_code_class="5xx"', ""
    )
    assert condition["denominatorAggregations"] == condition["aggregations"]
    assert condition["thresholdValue"] == 0.01
    assert condition["comparison"] == "COMPARISON_GT"
    for service in ("stripe-webhook", "create-checkout", "support-request"):
        assert f'"{service}"' in condition["filter"]
    # Workers answer 500 on purpose so Pub/Sub redelivers: they are not automation endpoints.
    assert "billing-worker" not in condition["filter"]


def test_component_outputs_name_every_policy() -> None:
    mocks = PlanMocks()
    mocks.install()
    seen: dict[str, Any] = {}

    def program() -> None:
        component = Monitoring("monitoring", monitoring_args())
        pulumi.Output.all(component.alert_policies, component.log_retention_days).apply(
            lambda values: seen.update(policies=values[0], retention=values[1])
        )

    run_under_mocks(program)
    assert set(seen["policies"]) == {
        "uptime-api",
        "uptime-app",
        "certificate-api",
        "certificate-app",
        "function-errors",
        "webhook-failures",
        "payment-sync-lag",
        "dead-letters",
        "function-latency-p95",
        "endpoint-error-rate",
    }
    assert seen["retention"] == 30
