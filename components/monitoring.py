"""Cloud Monitoring for one environment: uptime checks, log-based metrics, alert policies, log retention.

Every alert policy notifies one email channel. Thresholds live in module constants so the runbook
(docs/operations.md, "Alerts") and the tests read the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.config_types import EmailAddress, Hostname, LogRetentionDays

UPTIME_PERIOD = "60s"
UPTIME_TIMEOUT = "10s"
# Google's recommended uptime alert: fire when more than one checker region sees a failure.
UPTIME_FAILED_REGIONS_THRESHOLD = 1
# HTTPS uptime checks record the served certificate's remaining lifetime in days ("For HTTPS checks, the
# SSL certificate expiry time is computed based on the server certificate received in the final
# response", https://cloud.google.com/monitoring/uptime-checks; metric uptime_check/
# time_until_ssl_cert_expires, GAUGE DOUBLE in d, https://cloud.google.com/monitoring/api/metrics_gcp).
CERTIFICATE_EXPIRY_METRIC = "monitoring.googleapis.com/uptime_check/time_until_ssl_cert_expires"
CERTIFICATE_MIN_DAYS = 14

FUNCTION_ERROR_WINDOW_SECONDS = 300
FUNCTION_ERROR_THRESHOLD = 0  # Transient failures log WARNING; any ERROR line is a bug or a lost step.

WEBHOOK_FAILURE_WINDOW_SECONDS = 600
WEBHOOK_FAILURE_THRESHOLD = 3  # more than 3 failed deliveries in 10 minutes

PAYMENT_SYNC_LAG_THRESHOLD_SECONDS = 300
PAYMENT_SYNC_LAG_WINDOW_SECONDS = 300
PAYMENT_SYNCED_MESSAGE = "payment synced"
# Explicit bounds with one at the threshold: percentiles are interpolated inside a bucket, so a bucket
# straddling 300 s could report a lag of 290 s as 400 s (or the reverse).
PAYMENT_SYNC_LAG_BOUNDS = [1, 5, 10, 30, 60, 120, 180, 240, 300, 600, 900, 1800, 3600, 21600, 86400]

# Cloud Run's built-in request metrics for the services behind 2nd-gen functions, listed at
# https://cloud.google.com/monitoring/api/metrics_gcp#gcp-run: request_latencies is a distribution in
# milliseconds, request_count a delta count labelled with response_code_class ("2xx" ... "5xx").
REQUEST_LATENCIES_METRIC = "run.googleapis.com/request_latencies"
REQUEST_COUNT_METRIC = "run.googleapis.com/request_count"
LATENCY_P95_THRESHOLD_MS = 500
LATENCY_WINDOW_SECONDS = 300
ERROR_RATE_THRESHOLD = 0.01  # more than 1 % of requests answered 5xx
ERROR_RATE_WINDOW_SECONDS = 300

DEAD_LETTER_THRESHOLD = 0  # any message at all
DEAD_LETTER_ALIGNMENT_SECONDS = 60  # Pub/Sub samples num_undelivered_messages every 60 s

AUTO_CLOSE = "1800s"
RUNBOOK = "docs/operations.md#alerts"


@dataclass
class UptimeTarget:
    """An HTTPS endpoint checked from Google's uptime checkers: https://{host}{path}, expecting 2xx.
    `name` is a catalog function's resource name, `path` its probe path (components/catalog.py)."""

    name: str
    host: Hostname
    path: str


@dataclass
class MonitoringArgs:
    """`function_names` and `webhook_function` accept catalog names (`stripe_webhook`) or the deployed
    Cloud Run service names (`stripe-webhook`); `dead_letter_subscriptions` accepts short names or full
    `projects/.../subscriptions/...` ids (e.g. a Subscription's `name` or `id` output). The names come
    from the catalog, which guarantees what they need: at least one function, one topic and one public
    path (components/catalog.py)."""

    project_id: pulumi.Input[str]
    alert_email: EmailAddress
    uptime_targets: list[UptimeTarget]
    function_names: list[str]
    webhook_function: str
    # Sequence, not list: a list[str] or list[Output[str]] must both be accepted (list is invariant).
    dead_letter_subscriptions: Sequence[pulumi.Input[str]]
    log_retention_days: LogRetentionDays
    # False on a first deploy's foundation phase: the log-based metrics are created, the alert policies
    # that filter on them wait for a later phase (Monitoring answers 404 for a new metric for minutes).
    alerts: bool = True
    # False until the API host's certificate serves (first deploy's last phase): an uptime check fails
    # before it, and its alert would page ops during every first deploy. The checks themselves run earlier.
    uptime_alerts: bool = True
    # The automation endpoints whose 5xx rate is alerted on (catalog or service names); must be a
    # subset of function_names. Workers are left out: their deliberate 500 asks Pub/Sub to retry.
    endpoint_functions: Sequence[str] = ()


def service_name(function_name: str) -> str:
    """Cloud Run service backing a 2nd-gen function: service names allow no underscores."""
    return function_name.replace("_", "-")


def subscription_id(subscription: str) -> str:
    return subscription.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class AlertRule:
    """What sets one alert policy apart; the channel, auto-close, labels and runbook link are shared."""

    key: str
    display_name: str
    severity: str
    condition: str
    threshold: float
    window_seconds: int
    aligner: str
    reducer: str
    documentation: str
    group_by: tuple[str, ...] = ()
    duration: str = "0s"
    comparison: str = "COMPARISON_GT"


FUNCTION_ERRORS_ALERT = AlertRule(
    key="function-errors",
    display_name="Launch Ready: function errors",
    severity="ERROR",
    condition=f"Any ERROR log line within {FUNCTION_ERROR_WINDOW_SECONDS // 60} minutes",
    threshold=FUNCTION_ERROR_THRESHOLD,
    window_seconds=FUNCTION_ERROR_WINDOW_SECONDS,
    aligner="ALIGN_SUM",
    reducer="REDUCE_SUM",
    group_by=("metric.label.service",),
    documentation=(
        "A function logged at ERROR: a permanent provider failure (recorded in `sync_failures`), "
        "a provider quota exhausted (`alert=provider_quota_exhausted`, code `quota_exhausted`: raise "
        "the quota or wait for its reset, then replay the dead letters), a message sent to its "
        "dead-letter topic, or an unhandled exception. The `service` label names the function; filter "
        "its logs by `correlation_id`."
    ),
)

WEBHOOK_FAILURES_ALERT = AlertRule(
    key="webhook-failures",
    display_name="Launch Ready: Stripe webhook failures",
    severity="CRITICAL",
    condition=(
        f"More than {WEBHOOK_FAILURE_THRESHOLD} failed deliveries in "
        f"{WEBHOOK_FAILURE_WINDOW_SECONDS // 60} minutes"
    ),
    threshold=WEBHOOK_FAILURE_THRESHOLD,
    window_seconds=WEBHOOK_FAILURE_WINDOW_SECONDS,
    aligner="ALIGN_SUM",
    reducer="REDUCE_SUM",
    documentation=(
        "Stripe deliveries to the webhook are failing. 400 usually means a signature mismatch "
        "(wrong or rotated `STRIPE_WEBHOOK_SECRET`); 5xx means the function or Firestore/Pub/Sub "
        "is failing. Stripe retries for 3 days, then disables the endpoint."
    ),
)

PAYMENT_SYNC_LAG_ALERT = AlertRule(
    key="payment-sync-lag",
    display_name="Launch Ready: payment sync lag over 5 minutes",
    severity="ERROR",
    condition=f"99th percentile sync lag above {PAYMENT_SYNC_LAG_THRESHOLD_SECONDS} s",
    threshold=PAYMENT_SYNC_LAG_THRESHOLD_SECONDS,
    window_seconds=PAYMENT_SYNC_LAG_WINDOW_SECONDS,
    aligner="ALIGN_PERCENTILE_99",
    reducer="REDUCE_MAX",
    documentation=(
        "Paid users waited more than 5 minutes for their plan to unlock. Check the "
        "`billing-events` subscription backlog, billing_worker errors and Stripe's delivery log."
    ),
)

DEAD_LETTERS_ALERT = AlertRule(
    key="dead-letters",
    display_name="Launch Ready: messages in a dead-letter topic",
    severity="ERROR",
    condition="Any undelivered message on a dead-letter subscription",
    threshold=DEAD_LETTER_THRESHOLD,
    window_seconds=DEAD_LETTER_ALIGNMENT_SECONDS,
    aligner="ALIGN_MAX",
    reducer="REDUCE_MAX",
    group_by=("resource.label.subscription_id",),
    documentation=(
        "A message exhausted its delivery attempts and was dead-lettered. Read the error in the "
        "worker's logs (`transient failure, dead-lettering`), fix the cause, then replay the "
        "subscription. The alert closes when the subscription is empty."
    ),
)


LATENCY_ALERT = AlertRule(
    key="function-latency-p95",
    display_name="Launch Ready: p95 function execution over 500 ms",
    severity="WARNING",
    condition=f"95th percentile request latency above {LATENCY_P95_THRESHOLD_MS} ms for 5 minutes",
    threshold=LATENCY_P95_THRESHOLD_MS,
    window_seconds=LATENCY_WINDOW_SECONDS,
    aligner="ALIGN_PERCENTILE_95",
    reducer="REDUCE_MAX",
    group_by=("resource.label.service_name",),
    duration=f"{LATENCY_WINDOW_SECONDS}s",
    documentation=(
        "A function's 95th percentile execution time stayed above 500 ms. The `service_name` label "
        "names it; look for a slow provider API (latency_ms in its logs), cold starts after a "
        "deploy, or Firestore contention."
    ),
)

ERROR_RATE_ALERT = AlertRule(
    key="endpoint-error-rate",
    display_name="Launch Ready: error rate over 1 % on the automation endpoints",
    severity="ERROR",
    condition="More than 1 % of requests answered 5xx for 5 minutes",
    threshold=ERROR_RATE_THRESHOLD,
    window_seconds=ERROR_RATE_WINDOW_SECONDS,
    aligner="ALIGN_RATE",
    reducer="REDUCE_SUM",
    group_by=("resource.label.service_name",),
    duration=f"{ERROR_RATE_WINDOW_SECONDS}s",
    documentation=(
        "More than 1 % of the requests to a public endpoint failed with 5xx. The `service_name` "
        "label names it; its logs carry the correlation_id of every failed request."
    ),
)


def _uptime_down_alert(target: UptimeTarget) -> AlertRule:
    return AlertRule(
        key=f"uptime-{target.name}",
        display_name=f"Launch Ready: {target.name} is down",
        severity="CRITICAL",
        condition="Uptime check failing in more than one region",
        threshold=UPTIME_FAILED_REGIONS_THRESHOLD,
        window_seconds=1200,
        aligner="ALIGN_NEXT_OLDER",
        reducer="REDUCE_COUNT_FALSE",
        group_by=("resource.label.*",),
        duration="60s",
        documentation=(
            f"The uptime check for **{target.name}** (path `{target.path}`) fails from more than one "
            "region. Open the function's logs and the Cloudflare dashboard; see the runbook."
        ),
    )


def _certificate_alert(target: UptimeTarget) -> AlertRule:
    """Named after the first uptime target of the host, so a cloned stack's other host keeps the name."""
    host = target.host
    return AlertRule(
        key=f"certificate-{target.name}",
        display_name=f"Launch Ready: {host}'s certificate expires within {CERTIFICATE_MIN_DAYS} days",
        severity="WARNING",
        condition=f"Served certificate valid for fewer than {CERTIFICATE_MIN_DAYS} days",
        threshold=CERTIFICATE_MIN_DAYS,
        window_seconds=1200,
        aligner="ALIGN_NEXT_OLDER",
        reducer="REDUCE_MIN",
        group_by=("metric.label.check_id",),
        duration="600s",
        comparison="COMPARISON_LT",
        documentation=(
            f"The certificate served for **{host}** expires within {CERTIFICATE_MIN_DAYS} days: Firebase "
            "Hosting renews it only while the host's DNS records point at Hosting unproxied. Check the "
            "custom domain in the Firebase console (host and certificate state) and the DNS records in "
            "Cloudflare; see the runbook."
        ),
    )


def _counter(label: str, label_description: str) -> gcp.logging.MetricMetricDescriptorArgs:
    """A log-based counter (one per matching line) broken down by one string label."""
    return gcp.logging.MetricMetricDescriptorArgs(
        metric_kind="DELTA",
        value_type="INT64",
        unit="1",
        labels=[
            gcp.logging.MetricMetricDescriptorLabelArgs(
                key=label, value_type="STRING", description=label_description
            )
        ],
    )


def _user_metric_filter(metric: gcp.logging.Metric) -> pulumi.Output[str]:
    # Built from the metric's output so the policy waits for the metric to exist.
    return metric.name.apply(
        lambda name: (
            f'metric.type="logging.googleapis.com/user/{name}" AND resource.type="cloud_run_revision"'
        )
    )


class Monitoring(pulumi.ComponentResource):
    """Uptime checks, log-based metrics and alert policies (all notifying one email channel)."""

    notification_channel: pulumi.Output[str]
    alert_policies: pulumi.Output[dict[str, str]]
    uptime_check_ids: pulumi.Output[dict[str, str]]
    log_retention_days: pulumi.Output[int]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("launchready:monitoring:Monitoring", name, None, opts)
        self._name = name
        self._project = args.project_id
        self._child = pulumi.ResourceOptions(parent=self)
        self._alerts = args.alerts
        services = sorted({service_name(n) for n in args.function_names})

        channel = gcp.monitoring.NotificationChannel(
            f"{name}-email",
            project=args.project_id,
            type="email",
            display_name=f"Launch Ready ops ({args.alert_email})",
            labels={"email_address": args.alert_email},
            opts=self._child,
        )
        self._channels = [channel.name]

        policies: dict[str, pulumi.Output[str]] = {}
        checks: dict[str, pulumi.Output[str]] = {}
        # One certificate alert per host, on the first uptime check of that host.
        certificate_checks: dict[str, tuple[UptimeTarget, gcp.monitoring.UptimeCheckConfig]] = {}
        for target in args.uptime_targets if args.alerts else []:
            check = self._uptime_check(target)
            checks[target.name] = check.uptime_check_id
            if args.uptime_alerts:
                policies[f"uptime-{target.name}"] = self._uptime_alert(target, check).name
                certificate_checks.setdefault(target.host, (target, check))
        for first, check in certificate_checks.values():
            policies[_certificate_alert(first).key] = self._certificate_alert(first, check).name

        metric_alerts = {
            "function-errors": self._function_errors(services),
            "webhook-failures": self._webhook_failures(service_name(args.webhook_function)),
            "payment-sync-lag": self._payment_sync_lag(services),
        }
        policies.update({key: policy.name for key, policy in metric_alerts.items() if policy is not None})
        if args.alerts:
            policies["dead-letters"] = self._dead_letters(args.dead_letter_subscriptions).name
            policies["function-latency-p95"] = self._policy(
                LATENCY_ALERT, _run_metric_filter(REQUEST_LATENCIES_METRIC, services)
            ).name
            endpoints = sorted({service_name(n) for n in args.endpoint_functions})
            policies["endpoint-error-rate"] = self._policy(
                ERROR_RATE_ALERT,
                _run_metric_filter(REQUEST_COUNT_METRIC, endpoints)
                + ' AND metric.label.response_code_class="5xx"',
                denominator_filter=_run_metric_filter(REQUEST_COUNT_METRIC, endpoints),
            ).name

        retention = gcp.logging.ProjectBucketConfig(
            f"{name}-log-retention",
            project=args.project_id,
            location="global",
            # _Default is created by Google with every project: this resource adopts and configures it.
            bucket_id="_Default",
            retention_days=args.log_retention_days,
            opts=self._child,
        )

        self.notification_channel = channel.name
        self.alert_policies = pulumi.Output.all(**policies).apply(lambda named: dict(named))
        self.uptime_check_ids = pulumi.Output.all(**checks).apply(lambda named: dict(named))
        self.log_retention_days = retention.retention_days.apply(lambda days: int(days or 0))
        self.register_outputs(
            {
                "notification_channel": self.notification_channel,
                "alert_policies": self.alert_policies,
                "uptime_check_ids": self.uptime_check_ids,
                "log_retention_days": self.log_retention_days,
            }
        )

    # ---- uptime ---------------------------------------------------------------------------------

    def _uptime_check(self, target: UptimeTarget) -> gcp.monitoring.UptimeCheckConfig:
        return gcp.monitoring.UptimeCheckConfig(
            f"{self._name}-uptime-{target.name}",
            project=self._project,
            display_name=f"Launch Ready {target.name}",
            period=UPTIME_PERIOD,
            timeout=UPTIME_TIMEOUT,
            monitored_resource=gcp.monitoring.UptimeCheckConfigMonitoredResourceArgs(
                type="uptime_url",
                labels={"project_id": self._project, "host": target.host},
            ),
            http_check=gcp.monitoring.UptimeCheckConfigHttpCheckArgs(
                request_method="GET",
                path=target.path,
                port=443,
                use_ssl=True,
                validate_ssl=True,
                accepted_response_status_codes=[
                    gcp.monitoring.UptimeCheckConfigHttpCheckAcceptedResponseStatusCodeArgs(
                        status_class="STATUS_CLASS_2XX"
                    )
                ],
            ),
            opts=self._child,
        )

    def _uptime_alert(
        self, target: UptimeTarget, check: gcp.monitoring.UptimeCheckConfig
    ) -> gcp.monitoring.AlertPolicy:
        check_filter = check.uptime_check_id.apply(
            lambda check_id: (
                'metric.type="monitoring.googleapis.com/uptime_check/check_passed" '
                f'AND metric.label.check_id="{check_id}" AND resource.type="uptime_url"'
            )
        )
        return self._policy(_uptime_down_alert(target), check_filter)

    def _certificate_alert(
        self, target: UptimeTarget, check: gcp.monitoring.UptimeCheckConfig
    ) -> gcp.monitoring.AlertPolicy:
        check_filter = check.uptime_check_id.apply(
            lambda check_id: (
                f'metric.type="{CERTIFICATE_EXPIRY_METRIC}" '
                f'AND metric.label.check_id="{check_id}" AND resource.type="uptime_url"'
            )
        )
        return self._policy(_certificate_alert(target), check_filter)

    # ---- log-based metrics and their alerts -----------------------------------------------------

    def _function_errors(self, services: list[str]) -> gcp.monitoring.AlertPolicy | None:
        metric = self._log_metric(
            "function-errors",
            "ERROR log lines written by the Launch Ready functions",
            # Request logs are excluded: a worker's deliberate 500 (retry later) is not an error.
            log_filter=(
                f'resource.type="cloud_run_revision" AND {_services_clause(services)} '
                'AND severity>=ERROR AND NOT log_id("run.googleapis.com/requests")'
            ),
            descriptor=_counter("service", "Cloud Run service of the function"),
            label_extractors={"service": "EXTRACT(resource.labels.service_name)"},
        )
        return self._metric_policy(FUNCTION_ERRORS_ALERT, metric)

    def _webhook_failures(self, webhook_service: str) -> gcp.monitoring.AlertPolicy | None:
        metric = self._log_metric(
            "webhook-failures",
            "Stripe webhook deliveries answered with 4xx or 5xx",
            # Cloud Run's own request log: it also covers crashes and timeouts the function never logged.
            log_filter=(
                f'resource.type="cloud_run_revision" AND resource.labels.service_name="{webhook_service}" '
                'AND log_id("run.googleapis.com/requests") AND httpRequest.status>=400'
            ),
            descriptor=_counter("status", "HTTP status answered to Stripe"),
            label_extractors={"status": "EXTRACT(httpRequest.status)"},
        )
        return self._metric_policy(WEBHOOK_FAILURES_ALERT, metric)

    def _payment_sync_lag(self, services: list[str]) -> gcp.monitoring.AlertPolicy | None:
        metric = self._log_metric(
            "payment-sync-lag",
            "Seconds from a Stripe event's creation to the CRM write that follows it",
            log_filter=(
                f'resource.type="cloud_run_revision" AND {_services_clause(services)} '
                f'AND jsonPayload.message="{PAYMENT_SYNCED_MESSAGE}" AND jsonPayload.sync_lag_seconds>=0'
            ),
            descriptor=gcp.logging.MetricMetricDescriptorArgs(
                metric_kind="DELTA", value_type="DISTRIBUTION", unit="s"
            ),
            value_extractor="EXTRACT(jsonPayload.sync_lag_seconds)",
            bucket_options=gcp.logging.MetricBucketOptionsArgs(
                explicit_buckets=gcp.logging.MetricBucketOptionsExplicitBucketsArgs(
                    bounds=[float(b) for b in PAYMENT_SYNC_LAG_BOUNDS]
                )
            ),
        )
        return self._metric_policy(PAYMENT_SYNC_LAG_ALERT, metric)

    # ---- dead letters -----------------------------------------------------------------------------

    def _dead_letters(self, subscriptions: Sequence[pulumi.Input[str]]) -> gcp.monitoring.AlertPolicy:
        dlq_filter = pulumi.Output.all(*subscriptions).apply(
            lambda names: (
                'metric.type="pubsub.googleapis.com/subscription/num_undelivered_messages" '
                'AND resource.type="pubsub_subscription" AND resource.label.subscription_id=one_of('
                + ", ".join(f'"{subscription_id(n)}"' for n in names)
                + ")"
            )
        )
        return self._policy(DEAD_LETTERS_ALERT, dlq_filter)

    # ---- shared ---------------------------------------------------------------------------------------

    def _log_metric(
        self,
        key: str,
        description: str,
        log_filter: str,
        descriptor: gcp.logging.MetricMetricDescriptorArgs,
        label_extractors: dict[str, str] | None = None,
        value_extractor: str | None = None,
        bucket_options: gcp.logging.MetricBucketOptionsArgs | None = None,
    ) -> gcp.logging.Metric:
        return gcp.logging.Metric(
            f"{self._name}-{key}",
            project=self._project,
            name=f"launchready_{key.replace('-', '_')}",
            description=description,
            filter=log_filter,
            metric_descriptor=descriptor,
            label_extractors=label_extractors,
            value_extractor=value_extractor,
            bucket_options=bucket_options,
            opts=self._child,
        )

    def _metric_policy(
        self, alert: AlertRule, metric: gcp.logging.Metric
    ) -> gcp.monitoring.AlertPolicy | None:
        """The alert on a log-based metric, ordered after the metric explicitly, not only by its name."""
        if not self._alerts:
            return None
        return self._policy(alert, _user_metric_filter(metric), depends_on=[metric])

    def _policy(
        self,
        alert: AlertRule,
        metric_filter: pulumi.Input[str],
        denominator_filter: str | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> gcp.monitoring.AlertPolicy:
        """One threshold alert; with `denominator_filter` the threshold applies to the ratio (MetricThreshold
        denominatorFilter, https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies)
        of metric_filter to denominator_filter, both aggregated the same way."""
        aggregations = [
            gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                alignment_period=f"{alert.window_seconds}s",
                per_series_aligner=alert.aligner,
                cross_series_reducer=alert.reducer,
                group_by_fields=list(alert.group_by),
            )
        ]
        condition = gcp.monitoring.AlertPolicyConditionArgs(
            display_name=alert.condition,
            condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                filter=metric_filter,
                comparison=alert.comparison,
                threshold_value=alert.threshold,
                duration=alert.duration,
                aggregations=aggregations,
                denominator_filter=denominator_filter,
                denominator_aggregations=[
                    gcp.monitoring.AlertPolicyConditionConditionThresholdDenominatorAggregationArgs(
                        alignment_period=f"{alert.window_seconds}s",
                        per_series_aligner=alert.aligner,
                        cross_series_reducer=alert.reducer,
                        group_by_fields=list(alert.group_by),
                    )
                ]
                if denominator_filter
                else None,
                trigger=gcp.monitoring.AlertPolicyConditionConditionThresholdTriggerArgs(count=1),
            ),
        )
        return gcp.monitoring.AlertPolicy(
            f"{self._name}-alert-{alert.key}",
            project=self._project,
            display_name=alert.display_name,
            combiner="OR",
            severity=alert.severity,
            conditions=[condition],
            notification_channels=self._channels,
            alert_strategy=gcp.monitoring.AlertPolicyAlertStrategyArgs(auto_close=AUTO_CLOSE),
            documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                content=f"{alert.documentation}\n\nRunbook: `{RUNBOOK}`",
                mime_type="text/markdown",
            ),
            user_labels={"app": "launchready"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )


def _run_metric_filter(metric_type: str, services: list[str]) -> str:
    """A Cloud Run built-in metric restricted to the given services (monitoring filter syntax)."""
    quoted = ", ".join(f'"{s}"' for s in services)
    return (
        f'metric.type="{metric_type}" AND resource.type="cloud_run_revision" '
        f"AND resource.label.service_name=one_of({quoted})"
    )


def _services_clause(services: list[str]) -> str:
    quoted = " OR ".join(f'"{s}"' for s in services)
    return f"resource.labels.service_name=({quoted})"
