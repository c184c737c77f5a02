"""The diff's parts without evaluating the program: comparison rules, rendering limits, the output scan."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tools.offline.diff.compare import compare, counts, is_immutable
from tools.offline.diff.output_scan import scan, withhold
from tools.offline.diff.program_diff import failure_report, run_policy
from tools.offline.diff.render import MARKER, MAX_COMMENT, StackDiff, render_json, render_markdown
from tools.offline.plan.credential_shapes import SHAPES, value_pattern
from tools.offline.plan.mocks import default_options

STACK_URN = "urn:pulumi:staging::launch-ready::"


def resource(typ: str, resource_name: str, parent: str = "", **inputs: Any) -> dict[str, Any]:
    prefix = f"{parent}$" if parent else ""
    return {
        "urn": f"{STACK_URN}{prefix}{typ}::{resource_name}",
        "type": typ,
        "name": resource_name,
        "parent": None,
        "inputs": inputs,
        "options": default_options(),
    }


DATABASE = "gcp:firestore/database:Database"
INDEX = "gcp:firestore/index:Index"
ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"
TOPIC = "gcp:pubsub/topic:Topic"


def only(steps: list[Any], op: str) -> list[Any]:
    return [s for s in steps if s.op == op]


@pytest.mark.parametrize(
    ("typ", "path", "immutable"),
    [
        (DATABASE, "locationId", True),
        (DATABASE, "pointInTimeRecoveryEnablement", False),
        (INDEX, "fields[2].order", True),  # list indexes are not in the contracts' paths
        ("gcp:secretmanager/secret:Secret", "replication", True),  # a whole block added
        ("gcp:secretmanager/secret:Secret", "replication.userManaged.replicas[0].location", True),
        ("gcp:cloudfunctionsv2/function:Function", "serviceConfig.availableMemory", False),
        ("launchready:project:FirebaseProject", "anything", False),
    ],
)
def test_immutable_paths_follow_the_contracts(typ: str, path: str, immutable: bool) -> None:
    assert is_immutable(typ, path) is immutable


def test_update_replace_and_destructive() -> None:
    base = [
        resource(DATABASE, "db", locationId="europe-west1", pointInTimeRecoveryEnablement="ENABLED"),
        resource(TOPIC, "events", name="events", messageRetentionDuration="600s"),
    ]
    head = copy.deepcopy(base)
    head[0]["inputs"]["locationId"] = "eur3"
    head[1]["inputs"]["messageRetentionDuration"] = "900s"
    steps = compare(base, head)
    (replace,) = only(steps, "replace")
    assert replace.name == "db" and replace.replace_reasons == ["locationId"]
    assert replace.destructive == [f"replaces a data-bearing {DATABASE} (locationId)"]
    (update,) = only(steps, "update")
    assert update.name == "events" and not update.destructive
    assert [(c.path, c.kind, c.old, c.new) for c in update.changes] == [
        ("messageRetentionDuration", "update", "600s", "900s")
    ]


def test_dropping_protect_is_destructive_without_any_input_change() -> None:
    base = [resource(TOPIC, "events", name="events")]
    base[0]["options"]["protect"] = True
    head = copy.deepcopy(base)
    head[0]["options"]["protect"] = False
    (step,) = compare(base, head)
    assert step.op == "same" and step.option_changes == {"protect": (True, False)}
    assert step.destructive == ["drops protect"]


def test_stack_on_one_side_only() -> None:
    plan = [resource(DATABASE, "db", locationId="eur3"), resource(TOPIC, "t", name="t")]
    assert counts(compare(None, plan)) == {"create": 2}
    deleted = compare(plan, None)
    assert counts(deleted) == {"delete": 2}
    assert [s.name for s in deleted if s.destructive] == ["db"]


def test_rename_needs_the_same_identity_inputs() -> None:
    base = [resource(TOPIC, "old", name="events"), resource(TOPIC, "other", name="audit")]
    head = [resource(TOPIC, "new", name="events"), resource(TOPIC, "fresh", name="billing")]
    steps = compare(base, head)
    renamed = [s for s in steps if s.rename_of]
    assert [(s.name, s.rename_of) for s in renamed] == [("new", base[0]["urn"])]
    assert next(s for s in steps if s.name == "fresh").rename_of is None


DNS = "cloudflare:index/dnsRecord:DnsRecord"
ZONE = "023e105f4ecef8ad9ca31a8372d0c353"


def test_a_dns_type_change_on_one_resource_is_refused_unless_deleted_first() -> None:
    base = [resource(DNS, "edge-api", zoneId=ZONE, name="api.example.com", type="A", content="192.0.2.1")]
    head = [resource(DNS, "edge-api", zoneId=ZONE, name="api.example.com", type="CNAME", content="x.web.app")]
    (step,) = compare(base, head)
    assert step.op == "replace" and step.replace_reasons == ["type"]
    (why,) = step.refused
    assert "type A -> CNAME on api.example.com" in why and "81053" in why and "deleteBeforeReplace" in why
    head[0]["options"] = {**head[0]["options"], "deleteBeforeReplace": True}
    assert compare(base, head)[0].refused == []


def test_a_dns_name_moving_to_a_new_resource_of_another_type_is_refused() -> None:
    base = [resource(DNS, "edge-api-a", zoneId=ZONE, name="api.example.com", type="A", content="192.0.2.1")]
    head = [resource(DNS, "edge-api-cname", zoneId=ZONE, name="api.example.com", type="CNAME", content="x.a")]
    steps = compare(base, head)
    (create,) = only(steps, "create")
    (why,) = create.refused
    assert "moves from A" in why and "creates before it deletes" in why
    markdown = render_markdown("main", [StackDiff("staging", steps, "0 mandatory")], False, "ACK", limit=None)
    assert "refused as planned: api.example.com moves from A" in markdown
    # Two address records on one name may coexist: nothing to refuse.
    head[0]["inputs"]["type"] = "AAAA"
    assert all(s.refused == [] for s in compare(base, head))


def test_rename_of_a_type_identified_only_by_project_needs_equal_inputs() -> None:
    base = [resource(ALERT, "old", project="p", displayName="5xx")]
    same = compare(base, [resource(ALERT, "new", project="p", displayName="5xx")])
    assert [s.rename_of for s in same if s.op == "create"] == [base[0]["urn"]]
    different = compare(base, [resource(ALERT, "new", project="p", displayName="p95")])
    assert [s.rename_of for s in different if s.op == "create"] == [None]


def test_oversized_diff_keeps_its_summary_under_the_limit() -> None:
    base = [resource(TOPIC, f"topic-{i:04d}", name=f"t{i}", labels={"k": "x" * 300}) for i in range(800)]
    base.append(resource(DATABASE, "zz-db", locationId="europe-west1"))
    head = copy.deepcopy(base)
    for entry in head:
        entry["inputs"].setdefault("labels", {})["k"] = "y" * 300
    head[-1]["inputs"]["locationId"] = "eur3"
    stacks = [StackDiff("staging", compare(base, head), "not run: test")]
    full = render_markdown("main", stacks, False, "ACK_DESTRUCTIVE=1", limit=None)
    cut = render_markdown("main", stacks, False, "ACK_DESTRUCTIVE=1")
    assert len(full) > MAX_COMMENT >= len(cut)
    summary = full.split("\n#### ")[0]
    assert cut.startswith(summary) and cut.startswith(MARKER)
    assert "| staging | 0 | 800 | 1 | 0 | 0 | 1 | not run: test |" in summary
    assert "zz-db" in summary  # the destructive change is in the summary, never cut
    assert "more resource(s) not shown" in cut and "diff-full.md" in cut
    shown = cut.count("<details>")
    assert 0 < shown < 801 and f"… {801 - shown} more resource(s)" in cut


def test_json_is_shaped_like_the_preview_digest() -> None:
    base = [resource(DATABASE, "db", locationId="europe-west1")]
    head = copy.deepcopy(base)
    head[0]["inputs"]["locationId"] = "eur3"
    data = json.loads(render_json("main", [StackDiff("staging", compare(base, head), "-")], False))
    digest = data["stacks"]["staging"]
    assert digest["changeSummary"] == {"replace": 1}
    (step,) = digest["steps"]
    assert {"op", "urn", "oldState", "newState", "diffReasons", "replaceReasons", "detailedDiff"} <= set(step)
    assert step["detailedDiff"] == {"locationId": {"kind": "update-replace", "inputDiff": True}}


FAKE = {
    "Stripe secret or restricted key": "rk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "Stripe webhook signing secret": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "HubSpot private app token": "pat-na1-" + "11111111-2222-3333-4444-555555555555",
    "Resend API key": "re_" + "123456789_AbCdEfGhIjKlMnOp",
    "PEM private key": "-----BEGIN RSA " + "PRIVATE KEY-----",
    "PEM block": "-----BEGIN " + "CERTIFICATE-----",
    "Zendesk API token": '"zendesk_api_token": "' + "a1B2c3D4e5" * 4 + '"',
    "Cloudflare API token or global key": "CLOUDFLARE_API_TOKEN=" + "Ab-1_cD2eF" * 4,
    "Cloudflare Origin CA key": "v1.0-" + "a" * 24 + "-" + "b" * 146,
}


@pytest.mark.parametrize("shape", sorted(FAKE))
def test_scan_finds_every_shape_by_line_without_the_value(shape: str) -> None:
    findings = scan({"diff.md": f"line one\nvalue: {FAKE[shape]} end\n"})
    assert [(f.document, f.line, f.shape) for f in findings] == [("diff.md", 2, shape)]
    assert FAKE[shape] not in str(findings[0])


def test_every_shape_has_a_test() -> None:
    assert {s.name for s in SHAPES} - set(FAKE) <= {
        "Google API key",
        "AWS access key id",
        "GitHub token",
        "Slack token",
    }


def test_scan_leaves_hashes_ids_and_markers_alone() -> None:
    text = json.dumps(
        {
            "zoneId": "0123456789abcdef0123456789abcdef",
            "commit": "4c88122bc3e4" + "0" * 28,
            "object": "functions-fc06607131361583.zip",
            "password": "[credential-shaped plaintext]",
            "token": "[secret]",
            "price": "price_1QExampleStagingPrice00",
        }
    )
    assert scan({"diff.json": text}) == []


def test_plan_value_check_still_flags_whole_values_only() -> None:
    pattern = value_pattern()
    assert pattern.search("sk_test_" + "abcdefgh12345678")
    assert not pattern.search("see sk_test_" + "abcdefgh12345678")  # only a value that is the credential
    assert not pattern.search("zendesk_token: " + "a" * 40)  # context shapes are for text scans


def test_failure_report_withholds_credential_lines(tmp_path: Path) -> None:
    log = tmp_path / "diff.log"
    log.write_text("\n".join([f"line {i}" for i in range(50)] + [f"value {FAKE['Resend API key']}"]))
    out = tmp_path / "diff.md"
    failure_report(log, out)
    text = out.read_text(encoding="utf-8")
    assert text.startswith(MARKER) and "Infrastructure diff failed" in text
    assert "line 49" in text and "line 19" not in text  # the last 30 lines
    assert FAKE["Resend API key"] not in text and "[line withheld: a Resend API key shape]" in text
    assert withhold("plain") == "plain"


def test_policy_column_says_why_the_runner_did_not_run(tmp_path: Path) -> None:
    plan = [resource(TOPIC, "t", name="t")]
    assert run_policy(tmp_path, "staging", plan, tmp_path) == ("not run: no policy runner on this branch", [])
    runner = tmp_path / "tools" / "offline" / "policy" / "runner.py"
    runner.parent.mkdir(parents=True)
    runner.write_text("")
    assert run_policy(tmp_path, "staging", plan, tmp_path)[0] == "not run: `make setup-policy` first"
    assert run_policy(tmp_path, "staging", None, tmp_path)[0] == "no stack"


def test_scan_passes_the_configured_public_value_only() -> None:
    key, other = "AIza" + "Q" * 35, "AIza" + "R" * 35
    text = f"FIREBASE_WEB_API_KEY={key}\nMAPS_KEY={other}\n"
    assert [f.line for f in scan({"diff.md": text}, public=frozenset({key}))] == [2]
    assert [f.line for f in scan({"diff.md": text})] == [1, 2]


def test_a_first_configuration_says_so_and_is_not_gated(tmp_path: Path) -> None:
    import subprocess

    from components.example_values import EXAMPLE_VALUES
    from tools.offline.diff.program_diff import template_example

    example = EXAMPLE_VALUES["launchready:projectId"][0]
    (tmp_path / "Pulumi.staging.yaml").write_text(f"config:\n  launchready:projectId: {example}\n")
    (tmp_path / "Pulumi.prod.yaml").write_text("config:\n  launchready:projectId: myapp-prod-4821\n")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    assert template_example(tmp_path, "HEAD", "staging") == f"launchready:projectId = {example}"
    assert template_example(tmp_path, "HEAD", "prod") is None
    assert template_example(tmp_path, "HEAD", "pr") is None  # no such stack file at the base

    base = [resource(DATABASE, "db", locationId="europe-west1")]
    head = copy.deepcopy(base)
    head[0]["inputs"]["locationId"] = "eur3"
    steps = compare(base, head)
    assert StackDiff("staging", steps, "-").destructive
    first = StackDiff("staging", steps, "-", note="first configuration", first_configuration=True)
    assert first.destructive == []
    assert "not acknowledged" not in render_markdown("main", [first], False, "ACK_DESTRUCTIVE=1")
