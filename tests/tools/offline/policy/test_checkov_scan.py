"""The offline plan as a Terraform plan for Checkov, and the justification rules of `make scan`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.offline.policy import checkov_scan as policy_scan


def test_inputs_become_snake_case_with_blocks_as_lists_and_maps_as_maps() -> None:
    entry = {
        "urn": "u",
        "type": "gcp:cloudfunctionsv2/function:Function",
        "name": "functions-crm-worker",
        "parent": None,
        "options": {},
        "inputs": {
            "serviceConfig": {
                "ingressSettings": "ALLOW_INTERNAL_ONLY",
                "environmentVariables": {"APP_URL": "https://app.example.com"},
                "secretEnvironmentVariables": [{"key": "HUBSPOT_TOKEN", "secret": "HUBSPOT_TOKEN"}],
            }
        },
    }
    document, skipped = policy_scan.to_terraform_plan([entry])
    (resource,) = document["planned_values"]["root_module"]["resources"]
    assert resource["type"] == "google_cloudfunctions2_function"
    assert resource["address"] == "google_cloudfunctions2_function.functions-crm-worker"
    (service,) = resource["values"]["service_config"]
    assert service["ingress_settings"] == "ALLOW_INTERNAL_ONLY"
    assert service["environment_variables"] == {"APP_URL": "https://app.example.com"}
    assert service["secret_environment_variables"] == [{"key": "HUBSPOT_TOKEN", "secret": "HUBSPOT_TOKEN"}]
    (change,) = document["resource_changes"]
    assert change["change"]["after"] == resource["values"] and change["change"]["actions"] == ["create"]
    assert skipped == []


def test_cloudflare_nested_attributes_stay_objects() -> None:
    entry = {
        "type": "cloudflare:index/zoneSetting:ZoneSetting",
        "name": "edge-security-header",
        "inputs": {"settingId": "security_header", "value": {"strict_transport_security": {"enabled": True}}},
    }
    document, _ = policy_scan.to_terraform_plan([entry])
    values = document["planned_values"]["root_module"]["resources"][0]["values"]
    assert values == {
        "setting_id": "security_header",
        "value": {"strict_transport_security": {"enabled": True}},
    }


def test_components_are_not_converted() -> None:
    document, skipped = policy_scan.to_terraform_plan(
        [{"type": "launchready:edge:Edge", "name": "edge", "inputs": {}}]
    )
    assert document["resource_changes"] == [] and skipped == ["launchready:edge:Edge"]


REPORT = {
    "results": {
        "failed_checks": [
            {
                "check_id": "CKV_GCP_83",
                "resource": "google_pubsub_topic.functions-topic-support",
                "check_name": "x",
            },
            {"check_id": "CKV_GCP_29", "resource": "google_storage_bucket.b", "check_name": "uniform access"},
        ]
    }
}


def test_a_failure_needs_a_justification_and_a_justification_needs_a_failure() -> None:
    justifications = [
        policy_scan.Justification("CKV_GCP_83", "google_pubsub_topic.functions-topic-*", "no sensitive data"),
        policy_scan.Justification("CKV_GCP_62", "google_storage_bucket.b", "fixed since"),
        policy_scan.Justification("CKV_GCP_29", "google_storage_bucket.b", "prod only", stacks=("prod",)),
    ]
    unjustified, justified, stale = policy_scan.judge(REPORT, justifications, "staging")
    assert unjustified == ["CKV_GCP_29 google_storage_bucket.b: uniform access"]
    assert justified == ["CKV_GCP_83 google_pubsub_topic.functions-topic-support: no sensitive data"]
    assert stale == ["CKV_GCP_62 google_storage_bucket.b"]
    assert policy_scan.judge(REPORT, justifications, "prod")[0] == []


def test_the_committed_justifications_name_a_check_a_resource_and_a_reason() -> None:
    justifications = policy_scan.load_justifications()
    assert justifications and all(j.reason and j.check_id.startswith("CKV") for j in justifications)


def test_a_justification_without_a_reason_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    path.write_text(json.dumps({"justifications": [{"check_id": "CKV_GCP_1", "resource": "x"}]}))
    with pytest.raises(policy_scan.ScanError, match="missing reason"):
        policy_scan.load_justifications(path)


def test_every_public_entry_point_and_auth_admin_grant_of_the_catalog_is_justified() -> None:
    # make scan fails on an unjustified failure: each public HTTP function fails CKV_GCP_124 (ingress
    # ALLOW_ALL) and each firebaseauth.admin grant CKV_GCP_42, so each needs its entry.
    from tools.project_files import ROOT, read_catalog

    entries = json.loads((ROOT / "policy" / "checkov-justifications.json").read_text(encoding="utf-8"))
    justified = {(e["check_id"], e["resource"]) for e in entries["justifications"]}
    catalog = read_catalog()
    expected = {
        ("CKV_GCP_124", f"google_cloudfunctions2_function.functions-{spec.resource_name}")
        for spec in catalog.public_http
    } | {
        ("CKV_GCP_42", f"google_project_iam_member.fn-identity-{spec.resource_name}-firebaseauth-admin")
        for spec in catalog.functions
        if any(grant.role == "roles/firebaseauth.admin" for grant in spec.roles)
    }
    assert expected - justified == set()
