"""`make scan`: Checkov on the offline plan converted to a Terraform plan, an independent cross-check.

Every failed check is justified in policy/checkov-justifications.json, and no justification is stale.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.exit_codes import ExitCode
from tools.project_files import ROOT

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
JUSTIFICATIONS = ROOT / "policy" / "checkov-justifications.json"

# Pulumi type token -> Terraform resource type, as pulumi-gcp and pulumi-cloudflare map them
# (provider/resources.go of github.com/pulumi/pulumi-gcp and pulumi-cloudflare; each SDK module's
# docstring names its Terraform resource too).
TERRAFORM_TYPES: dict[str, str] = {
    "gcp:cloudfunctionsv2/function:Function": "google_cloudfunctions2_function",
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": "google_cloud_run_v2_service_iam_member",
    "gcp:cloudscheduler/job:Job": "google_cloud_scheduler_job",
    "gcp:firebase/hostingCustomDomain:HostingCustomDomain": "google_firebase_hosting_custom_domain",
    "gcp:firebase/hostingRelease:HostingRelease": "google_firebase_hosting_release",
    "gcp:firebase/hostingSite:HostingSite": "google_firebase_hosting_site",
    "gcp:firebase/hostingVersion:HostingVersion": "google_firebase_hosting_version",
    "gcp:firebase/project:Project": "google_firebase_project",
    "gcp:firebaserules/release:Release": "google_firebaserules_release",
    "gcp:firebaserules/ruleset:Ruleset": "google_firebaserules_ruleset",
    "gcp:firestore/database:Database": "google_firestore_database",
    "gcp:firestore/index:Index": "google_firestore_index",
    "gcp:identityplatform/config:Config": "google_identity_platform_config",
    "gcp:logging/metric:Metric": "google_logging_metric",
    "gcp:logging/projectBucketConfig:ProjectBucketConfig": "google_logging_project_bucket_config",
    "gcp:monitoring/alertPolicy:AlertPolicy": "google_monitoring_alert_policy",
    "gcp:monitoring/notificationChannel:NotificationChannel": "google_monitoring_notification_channel",
    "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig": "google_monitoring_uptime_check_config",
    "gcp:organizations/project:Project": "google_project",
    "gcp:projects/iAMMember:IAMMember": "google_project_iam_member",
    "gcp:projects/service:Service": "google_project_service",
    "gcp:projects/serviceIdentity:ServiceIdentity": "google_project_service_identity",
    "gcp:pubsub/subscription:Subscription": "google_pubsub_subscription",
    "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember": "google_pubsub_subscription_iam_member",
    "gcp:pubsub/topic:Topic": "google_pubsub_topic",
    "gcp:pubsub/topicIAMMember:TopicIAMMember": "google_pubsub_topic_iam_member",
    "gcp:secretmanager/secret:Secret": "google_secret_manager_secret",
    "gcp:secretmanager/secretIamMember:SecretIamMember": "google_secret_manager_secret_iam_member",
    "gcp:serviceaccount/account:Account": "google_service_account",
    "gcp:serviceaccount/iAMMember:IAMMember": "google_service_account_iam_member",
    "gcp:storage/bucket:Bucket": "google_storage_bucket",
    "gcp:storage/bucketObject:BucketObject": "google_storage_bucket_object",
    "cloudflare:index/dnsRecord:DnsRecord": "cloudflare_dns_record",
    "cloudflare:index/ruleset:Ruleset": "cloudflare_ruleset",
    "cloudflare:index/zoneSetting:ZoneSetting": "cloudflare_zone_setting",
}
PROVIDERS = {
    "google": "registry.terraform.io/hashicorp/google",
    "cloudflare": "registry.terraform.io/cloudflare/cloudflare",
}
# Map-typed arguments (string maps, not blocks) of the Google provider: they stay objects.
MAP_ATTRIBUTES = frozenset(
    {"labels", "annotations", "environment_variables", "user_labels", "label_extractors", "headers"}
)


class ScanError(Exception):
    """Bad input; printed without a trace."""


def snake(name: str) -> str:
    """camelCase -> snake_case, the bridge's renaming undone (`serviceConfig` -> `service_config`)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def terraform_value(value: Any, key: str, sdk_v2: bool) -> Any:
    """A Pulumi input as Terraform's plan JSON shows it. The Google provider (SDKv2) writes nested
    blocks as lists, so a flattened max-one block becomes a list of one; Cloudflare v5 (plugin
    framework) has nested attributes, which stay objects. Map arguments stay maps."""
    if isinstance(value, dict):
        if key in MAP_ATTRIBUTES:
            return dict(value)
        block = {snake(k): terraform_value(v, snake(k), sdk_v2) for k, v in value.items()}
        return [block] if sdk_v2 else block
    if isinstance(value, list):
        items = [terraform_value(v, key, sdk_v2) for v in value]
        # A list of blocks is already a list: unwrap the one-element lists the dict branch made.
        return [
            i[0] if sdk_v2 and isinstance(i, list) and len(i) == 1 and isinstance(i[0], dict) else i
            for i in items
        ]
    return value


def to_terraform_plan(plan: list[Mapping[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """(Terraform plan JSON, Pulumi types with no Terraform counterpart: components, provider instances)."""
    resources, changes, skipped = [], [], []
    for entry in plan:
        typ = TERRAFORM_TYPES.get(str(entry["type"]))
        if typ is None:
            skipped.append(str(entry["type"]))
            continue
        sdk_v2 = typ.startswith("google_")
        values = {snake(k): terraform_value(v, snake(k), sdk_v2) for k, v in entry["inputs"].items()}
        address = f"{typ}.{entry['name']}"
        provider = PROVIDERS[typ.split("_", 1)[0]]
        common = {
            "address": address,
            "mode": "managed",
            "type": typ,
            "name": entry["name"],
            "provider_name": provider,
        }
        resources.append({**common, "schema_version": 0, "values": values})
        changes.append(
            {
                **common,
                "change": {"actions": ["create"], "before": None, "after": values, "after_unknown": {}},
            }
        )
    document = {
        "format_version": "1.2",
        "terraform_version": "1.9.8",
        "planned_values": {"root_module": {"resources": resources}},
        "resource_changes": changes,
        "configuration": {"root_module": {"resources": []}},
    }
    return document, sorted(set(skipped))


@dataclass(frozen=True)
class Justification:
    """A failed Checkov check accepted on purpose. `resource` is a Terraform address or an fnmatch
    pattern of addresses; `stacks` limits it to some stacks (empty: every stack)."""

    check_id: str
    resource: str
    reason: str
    stacks: tuple[str, ...] = ()

    def covers(self, check_id: str, resource: str) -> bool:
        return check_id == self.check_id and fnmatch.fnmatchcase(resource, self.resource)


def load_justifications(path: Path = JUSTIFICATIONS) -> list[Justification]:
    document = json.loads(path.read_text(encoding="utf-8"))
    result = []
    for index, item in enumerate(document.get("justifications", [])):
        missing = [k for k in ("check_id", "resource", "reason") if not str(item.get(k, "")).strip()]
        if missing:
            raise ScanError(f"{path.name} justifications[{index}]: missing {', '.join(missing)}")
        stacks = tuple(str(stack) for stack in item.get("stacks", []))
        result.append(Justification(item["check_id"], item["resource"], item["reason"], stacks))
    return result


def run_checkov(tfplan: Path) -> dict[str, Any]:
    if not CHECKOV.is_file():
        raise ScanError(f"{CHECKOV} not found: run `make setup-checkov`")
    completed = subprocess.run(
        [str(CHECKOV), "-f", str(tfplan), "--framework", "terraform_plan", "-o", "json", "--skip-download"],
        capture_output=True,
        text=True,
    )
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        raise ScanError(
            f"checkov failed (exit {completed.returncode}): {completed.stderr.strip()[-2000:]}"
        ) from None
    return report[0] if isinstance(report, list) else report


def judge(
    report: Mapping[str, Any], justifications: list[Justification], stack: str
) -> tuple[list[str], list[str], list[str]]:
    """(unjustified failures, justified failures, stale justifications) as printable lines."""
    mine = [j for j in justifications if not j.stacks or stack in j.stacks]
    failed = [
        (c["check_id"], c["resource"], c.get("check_name", ""))
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    unjustified, justified = [], []
    for check_id, resource, name in failed:
        match = next((j for j in mine if j.covers(check_id, resource)), None)
        if match is None:
            unjustified.append(f"{check_id} {resource}: {name}")
        else:
            justified.append(f"{check_id} {resource}: {match.reason}")
    stale = [
        f"{j.check_id} {j.resource}" for j in mine if not any(j.covers(cid, res) for cid, res, _ in failed)
    ]
    return unjustified, justified, stale


def run(stack: str, plan_path: Path) -> ExitCode:
    """Convert the plan, run Checkov, judge its failures: OK, FAILED (unjustified failure or stale
    justification) or USAGE (bad input)."""
    try:
        plan = json.loads(plan_path.read_text(encoding="utf-8"))
        justifications = load_justifications()
        document, skipped = to_terraform_plan(plan)
        tfplan = ROOT / "build" / f"tfplan-{stack}.json"
        tfplan.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        converted = len(document["resource_changes"])
        print(f"==> {converted} resources -> {tfplan} (not converted: {', '.join(skipped)})")
        print("==> checkov (terraform_plan framework)")
        report = run_checkov(tfplan)
    except (OSError, json.JSONDecodeError, ScanError) as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    summary = report.get("summary", {})
    passed, failed = int(summary.get("passed", 0)), int(summary.get("failed", 0))
    unjustified, justified, stale = judge(report, justifications, stack)
    checks = {
        c["check_id"]
        for kind in ("passed_checks", "failed_checks")
        for c in report.get("results", {}).get(kind, [])
    }
    print(
        f"{stack}: {len(checks)} Checkov checks applied, {passed + failed} resource checks: "
        f"{passed} passed, {failed} failed ({len(justified)} justified)"
    )
    for line in justified:
        print(f"  justified  {line}")
    for line in unjustified:
        print(f"  FAILED     {line}")
    for line in stale:
        print(f"  STALE      justification matches no failure: {line}")
    return ExitCode.FAILED if unjustified or stale else ExitCode.OK

