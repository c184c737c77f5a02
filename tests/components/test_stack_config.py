"""Stack configuration: both real stack files parse, and bad values give one readable message."""

from __future__ import annotations

from typing import Any

import pytest

from components.catalog import scaled_max_instances
from components.stack_config import StackConfigError, parse_stack_config
from tests.conftest import stack_values


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_stack_files_parse(stack: str) -> None:
    config = parse_stack_config(stack_values(stack), stack)
    assert config.stack == stack
    assert config.api_host.endswith("." + config.domain)
    assert config.log_retention_days >= 7


def test_staging_and_prod_differ_where_expected() -> None:
    staging = parse_stack_config(stack_values("staging"), "staging")
    prod = parse_stack_config(stack_values("prod"), "prod")
    assert (staging.dmarc_policy, prod.dmarc_policy) == ("quarantine", "reject")
    assert staging.project_id != prod.project_id
    assert staging.api_host != prod.api_host
    assert staging.max_instances_scale < prod.max_instances_scale
    # One zone, one owner of the zone-wide records; each stack its own mail domain and DMARC policy.
    assert (staging.manage_zone, prod.manage_zone) == (False, True)
    assert staging.mail_domain != prod.mail_domain
    # Staging shows both ways of getting a project: created under a folder, or adopted.
    assert staging.new_project is not None and staging.new_project.folder_id
    assert prod.new_project is None


def test_pulumi_engine_strings_parse_like_yaml_values() -> None:
    # The engine passes structured config as JSON text; YAML gives native values. Both must agree.
    import json

    native = stack_values("staging")
    as_engine = {k: v if isinstance(v, str) else json.dumps(v) for k, v in native.items()}
    assert parse_stack_config(as_engine, "staging") == parse_stack_config(native, "staging")


def test_missing_key_names_the_key_and_the_stack_file() -> None:
    values = stack_values("staging")
    del values["launchready:region"]
    with pytest.raises(StackConfigError) as raised:
        parse_stack_config(values, "staging")
    message = str(raised.value)
    assert message.startswith("Pulumi.staging.yaml: invalid configuration:")
    assert "launchready:region is missing (the GCP region for functions, e.g. europe-west1)" in message
    assert "Traceback" not in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("launchready:dmarcPolicy", "block", "launchready:dmarcPolicy must be none, quarantine or reject"),
        ("launchready:logRetentionDays", 3, "launchready:logRetentionDays must be between 7 and 3650"),
        ("launchready:logRetentionDays", "thirty", "launchready:logRetentionDays must be a whole number"),
        ("launchready:apiHost", "api.other.org", "launchready:apiHost must be a subdomain of example.com"),
        ("launchready:createProject", "yes", "launchready:createProject must be true or false"),
        ("launchready:cloudflareZoneId", "zone-1", "launchready:cloudflareZoneId is malformed"),
        ("launchready:alertEmail", "ops at example", "launchready:alertEmail is malformed"),
        ("launchready:maxInstancesScale", 0, "launchready:maxInstancesScale must be greater than 0"),
        ("launchready:authorizedDomains", "app.example.com", "launchready:authorizedDomains must be a list"),
        ("launchready:regoin", "europe-west1", "launchready:regoin is not a known setting; did you mean"),
        ("launchready:mailDomain", "mail.other.org", "launchready:mailDomain must be example.com or a"),
        ("launchready:manageZone", "no", "launchready:manageZone must be true or false"),
    ],
)
def test_malformed_value_is_reported_by_key(key: str, value: Any, expected: str) -> None:
    values = {**stack_values("staging"), key: value}
    with pytest.raises(StackConfigError, match="^Pulumi.staging.yaml: ") as raised:
        parse_stack_config(values, "staging")
    assert expected in str(raised.value)


def test_every_problem_is_listed_in_one_message() -> None:
    values = stack_values("prod")
    del values["launchready:projectId"]
    values["launchready:dmarcPolicy"] = "off"
    with pytest.raises(StackConfigError) as raised:
        parse_stack_config(values, "prod")
    lines = str(raised.value).splitlines()
    assert lines[0] == "Pulumi.prod.yaml: invalid configuration:"
    assert any("launchready:projectId is missing" in line for line in lines)
    assert any("launchready:dmarcPolicy must be" in line for line in lines)


def test_creating_a_project_needs_billing_and_exactly_one_parent() -> None:
    values = {**stack_values("prod"), "launchready:createProject": True}
    with pytest.raises(StackConfigError) as raised:
        parse_stack_config(values, "prod")
    assert "launchready:billingAccount is required when createProject is true" in str(raised.value)
    assert "launchready:folderId or launchready:orgId (exactly one)" in str(raised.value)


def test_defaults_and_scaling() -> None:
    values = stack_values("prod")
    for optional in (
        "launchready:logRetentionDays",
        "launchready:caaIssuers",
        "launchready:maxInstancesScale",
    ):
        values.pop(optional)
    config = parse_stack_config(values, "prod")
    assert config.log_retention_days == 30
    assert config.caa_issuers == ("pki.goog", "letsencrypt.org")
    assert scaled_max_instances(20, config.max_instances_scale) == 20
    half = parse_stack_config({**values, "launchready:maxInstancesScale": 0.5}, "prod")
    assert scaled_max_instances(20, half.max_instances_scale) == 10
    assert scaled_max_instances(1, half.max_instances_scale) == 1


# --- Rules the model adds: values that looked fine but could never deploy ------------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "launchready:region",
            "europe-west99",
            "launchready:region is not one of the Cloud Run functions regions",
        ),
        ("launchready:region", "europe-west2x", "https://cloud.google.com/functions/docs/locations"),
        (
            "launchready:firestoreLocation",
            "eur9",
            "launchready:firestoreLocation is not one of the Firestore",
        ),
        (
            "gcp:project",
            "someone-elses-project",
            "gcp:project is 'someone-elses-project' but launchready:projectId",
        ),
        (
            "launchready:emailFrom",
            "App <hello@other.org>",
            "launchready:emailFrom sends from other.org, outside",
        ),
        ("gcp:userProjectOverride", False, "gcp:userProjectOverride must be true"),
        (
            "launchready:cloudflarePlan",
            "premium",
            "launchready:cloudflarePlan must be free, pro, business or",
        ),
        (
            "launchready:edgeCertificate",
            "wildcard",
            "launchready:edgeCertificate must be universal, advanced or custom",
        ),
        (
            "launchready:edgeCertificate",
            "custom",
            "launchready:edgeCertificate custom needs a Business or Enterprise plan, the zone is on free",
        ),
        ("launchready:environment", "prod", "launchready:environment must be production, staging or preview"),
    ],
)
def test_values_that_cannot_deploy_are_rejected(key: str, value: Any, expected: str) -> None:
    with pytest.raises(StackConfigError) as raised:
        parse_stack_config({**stack_values("staging"), key: value}, "staging")
    assert expected in str(raised.value)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("launchready:domain", "localhost", "launchready:domain is malformed: 'localhost'"),
        ("launchready:apiHost", "@", "launchready:apiHost is malformed: '@'"),
        ("launchready:apiHost", "https://api.example.com", "launchready:apiHost is malformed"),
        ("launchready:cloudflareZoneId", " ", "launchready:cloudflareZoneId is malformed"),
        ("launchready:dmarcRua", "mailto:not-an-address", "launchready:dmarcRua is malformed"),
        ("launchready:alertEmail", "ops", "launchready:alertEmail is malformed: 'ops'"),
        ("launchready:opsEmail", "ops@-.-", "launchready:opsEmail is malformed"),
        ("launchready:logRetentionDays", 4000, "launchready:logRetentionDays must be between 7 and 3650"),
        ("launchready:spfIncludes", ["bad include"], "launchready:spfIncludes[0] is malformed"),
        (
            "launchready:spfIncludes",
            [f"spf{i}.example.net" for i in range(11)],
            "launchready:spfIncludes has more than 10 entries",
        ),
        (
            "launchready:dkimRecords",
            [{"name": "x", "type": "A", "value": "192.0.2.1"}],
            "launchready:dkimRecords[0].type must be TXT, CNAME or MX, got 'A'",
        ),
        (
            "launchready:dkimRecords",
            [{"name": "resend._domainkey", "type": "TXT", "value": "  "}],
            "launchready:dkimRecords[0] has an empty value",
        ),
        (
            "launchready:dkimRecords",
            [{"name": "@", "type": "TXT", "value": "v=spf1 include:x.example ~all"}],
            "launchready:dkimRecords[0] is an SPF record at example.com",
        ),
        (
            "launchready:dkimRecords",
            [{"name": "staging", "type": "TXT", "value": '"v=spf1 include:x.example ~all"'}],
            "launchready:dkimRecords[0] is an SPF record at staging.example.com",
        ),
        ("launchready:emailFrom", "App hello@staging.example.com", "launchready:emailFrom is malformed"),
        ("launchready:caaIodef", "mailto:", "launchready:caaIodef is malformed"),
    ],
)
def test_mail_and_edge_values_are_checked_once_here(key: str, value: Any, expected: str) -> None:
    with pytest.raises(StackConfigError) as raised:
        parse_stack_config({**stack_values("staging"), key: value}, "staging")
    assert expected in str(raised.value)


def test_the_zone_owner_lists_the_certificate_authorities() -> None:
    prod = stack_values("prod")
    assert parse_stack_config(prod, "prod").manage_zone
    with pytest.raises(StackConfigError, match="launchready:caaIssuers is empty"):
        parse_stack_config({**prod, "launchready:caaIssuers": []}, "prod")
    # A stack that does not own the zone publishes no CAA records: nothing to list.
    staging = parse_stack_config({**stack_values("staging"), "launchready:caaIssuers": []}, "staging")
    assert not staging.manage_zone and staging.caa_issuers == ()


def test_a_bare_sender_address_and_a_named_one_are_both_accepted() -> None:
    values = stack_values("staging")
    domain = parse_stack_config(values, "staging").sending_domain
    for sender in (f"hello@{domain}", f"Launch Ready <hello@{domain}>", f"<hello@{domain}>"):
        assert parse_stack_config({**values, "launchready:emailFrom": sender}, "staging").email_from == sender


def test_environment_rules_read_the_environment_key_not_the_stack_name() -> None:
    values = {**stack_values("staging"), "launchready:authorizedDomains": ["app.example.com", "localhost"]}
    assert "localhost" in parse_stack_config(values, "prod").authorized_domains  # a staging kind named prod
    with pytest.raises(StackConfigError, match="must not include localhost in a production environment"):
        parse_stack_config({**values, "launchready:environment": "production"}, "staging")


def test_quota_project_is_required() -> None:
    values = stack_values("prod")
    del values["gcp:billingProject"]
    with pytest.raises(StackConfigError, match="gcp:billingProject is missing"):
        parse_stack_config(values, "prod")


def test_a_deeper_api_host_is_accepted_with_an_advanced_certificate_or_unproxied() -> None:
    deep = {**stack_values("staging"), "launchready:apiHost": "api.staging.example.com"}
    assert (
        parse_stack_config({**deep, "launchready:edgeCertificate": "advanced"}, "staging").api_host_depth == 2
    )
    assert parse_stack_config({**deep, "launchready:proxyApiHost": False}, "staging").api_host_depth == 2


def test_a_proxied_api_host_is_refused_with_the_reason() -> None:
    # A proxied Hosting custom domain resolves to Cloudflare: HOST_MISMATCH, then no certificate renewal.
    with pytest.raises(StackConfigError, match="proxyApiHost true is refused: .*HOST_MISMATCH"):
        parse_stack_config({**stack_values("staging"), "launchready:proxyApiHost": True}, "staging")


def test_every_region_in_the_committed_lists_is_accepted() -> None:
    from components.stack_config import FIRESTORE_LOCATIONS, FUNCTION_REGIONS, LOCATIONS

    assert LOCATIONS["retrieved"] and "https://" in LOCATIONS["firestore"]["source"]
    for region in FUNCTION_REGIONS:
        parse_stack_config({**stack_values("staging"), "launchready:region": region}, "staging")
    for location in FIRESTORE_LOCATIONS:
        parse_stack_config({**stack_values("staging"), "launchready:firestoreLocation": location}, "staging")


def test_yaml_syntax_error_is_one_line_with_file_line_column(tmp_path: Any) -> None:
    from components.stack_config import read_stack_file

    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text("config:\n  launchready:region: europe-west1\n  launchready:domain: [example.com\n")
    with pytest.raises(StackConfigError) as raised:
        read_stack_file(path)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("Pulumi.broken.yaml:4:1: YAML syntax error")


def test_schema_and_docs_are_up_to_date() -> None:
    from tools.offline.plan.stack_schema import stale

    assert stale() == [], "run: python -m tools stack-schema"


def test_schema_validates_the_stack_files_and_names_bad_keys(repo_root: Any) -> None:
    import json

    import jsonschema
    import yaml

    schema = json.loads((repo_root / "docs" / "stack-config.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    for stack in ("staging", "prod", "pr"):
        text = (repo_root / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
        assert text.startswith("# yaml-language-server: $schema=./docs/stack-config.schema.json")
        document = yaml.safe_load(text)
        assert list(validator.iter_errors(document)) == []
    document["config"]["launchready:regoin"] = "europe-west1"
    document["config"]["launchready:region"] = "mars-1"
    assert len(list(validator.iter_errors(document))) == 2


def test_the_ops_console_web_api_key_is_optional_and_checked() -> None:
    setting = "launchready:firebaseWebApiKey"
    assert parse_stack_config(stack_values("staging"), "staging").firebase_web_api_key is None
    well_formed = "AIza" + "x" * 35
    values = {**stack_values("staging"), setting: well_formed}
    assert parse_stack_config(values, "staging").firebase_web_api_key == well_formed
    values[setting] = "x" * 8  # not the AIza... form of a Google API key
    with pytest.raises(StackConfigError, match=setting):
        parse_stack_config(values, "staging")


def test_spf_includes_take_rfc_7208_domain_specs() -> None:
    # Google Workspace and Cloudflare Email Routing publish their SPF under underscored labels.
    includes = ["_spf.google.com", "_spf.mx.cloudflare.net", "spf.protection.outlook.com"]
    values = {**stack_values("prod"), "launchready:spfIncludes": includes}
    assert parse_stack_config(values, "prod").spf_includes == tuple(includes)
    with pytest.raises(StackConfigError, match=r"spfIncludes\[0\] is malformed: 'google\.com-'"):
        parse_stack_config({**values, "launchready:spfIncludes": ["google.com-"]}, "prod")


def _patterns(annotation: Any) -> list[str]:
    """Every string pattern constraining a field's type, through Annotated, unions and tuples."""
    from typing import get_args

    found = [m.pattern for m in getattr(annotation, "__metadata__", ()) if getattr(m, "pattern", None)]
    for meta in getattr(annotation, "__metadata__", ()):
        found += [m.pattern for m in getattr(meta, "metadata", ()) if getattr(m, "pattern", None)]
    for arg in get_args(annotation):
        found += _patterns(arg)
    return found


def _constrained_fields() -> list[tuple[str, bool, str]]:
    """(key, takes a list, pattern) for every stack setting whose values must match a pattern."""
    from typing import get_args, get_origin

    from components.stack_config import StackConfig

    fields = []
    for field in StackConfig.model_fields.values():
        annotation = field.rebuild_annotation()
        patterns = sorted(set(_patterns(annotation)))
        is_list = any(get_origin(arg) is tuple for arg in (annotation, *get_args(annotation)))
        fields += [(str(field.alias), is_list, pattern) for pattern in patterns]
    return fields


@pytest.mark.parametrize(("key", "is_list", "pattern"), _constrained_fields())
def test_every_malformed_value_error_names_the_expected_form(key: str, is_list: bool, pattern: str) -> None:
    from components.config_types import expected_form

    form = expected_form(pattern)
    assert form, f"{key}: its type's pattern has no expected form in components/config_types.py"
    bad = "not a valid value"
    with pytest.raises(StackConfigError) as raised:
        parse_stack_config({**stack_values("prod"), key: [bad] if is_list else bad}, "prod")
    (line,) = [line for line in str(raised.value).splitlines() if key in line]
    assert f"is malformed: {bad!r}, expected {form}" in line


def test_the_walk_covers_the_constrained_settings() -> None:
    keys = {key for key, _, _ in _constrained_fields()}
    assert {"launchready:projectId", "launchready:spfIncludes", "launchready:folderId", "gcp:project"} <= keys


def test_an_unquoted_numeric_folder_id_reads_as_the_engine_hands_it() -> None:
    # The Pulumi engine hands the program every value as text: YAML's number 123456789012 is "123456789012".
    values = stack_values("staging")
    assert values["launchready:createProject"] is True and "launchready:orgId" not in values
    config = parse_stack_config({**values, "launchready:folderId": 123456789012}, "staging")
    assert config.folder_id == "123456789012"
