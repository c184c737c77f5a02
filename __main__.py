"""Launch Ready ops stack: reads the stack configuration once and wires the components together."""

from __future__ import annotations

from pathlib import Path

import pulumi

from components.archive import build_archive
from components.catalog import load_catalog
from components.edge import Edge, EdgeArgs
from components.function_env import WEB_API_KEY_VARIABLE
from components.functions import FunctionIdentities, FunctionIdentitiesArgs, Functions, FunctionsArgs
from components.hosting import ApiHosting, HostingArgs
from components.monitoring import Monitoring, MonitoringArgs, UptimeTarget
from components.phases import current_phase, reaches
from components.project import FirebaseProject, NewProjectSpec, ProjectArgs, parse_indexes
from components.protection import protect_data_in_production
from components.secrets import Secrets, SecretsArgs
from components.stack_config import StackConfigError, parse_stack_config, runtime_config_values

ROOT = Path(__file__).resolve().parent
WEBHOOK_FUNCTION = "stripe_webhook"


def main() -> None:
    try:
        config = parse_stack_config(runtime_config_values(), pulumi.get_stack())
    except StackConfigError as error:
        # RunError ends the program with just this message, no stack trace.
        raise pulumi.RunError(str(error)) from None
    # Before any resource: production protects its data-bearing resources.
    protect_data_in_production(config.environment)
    # A first deploy runs in phases (components/phases.py); a normal run registers everything.
    phase = current_phase()

    catalog = load_catalog(ROOT / "components" / "data" / "catalog.json")
    webhook = catalog.function(WEBHOOK_FUNCTION)
    archives = {
        spec.name: build_archive(ROOT / "functions_src", ROOT / "build" / "functions",
                                 name=spec.resource_name, entry_point=spec.entry_point)
        for spec in catalog.functions
    }

    project = FirebaseProject(
        "project",
        ProjectArgs(
            project_id=config.project_id,
            region=config.region,
            firestore_location=config.firestore_location_id,
            environment=config.environment,
            firestore_rules=(ROOT / "firestore.rules").read_text(encoding="utf-8"),
            indexes=parse_indexes((ROOT / "firestore.indexes.json").read_text(encoding="utf-8")),
            authorized_domains=list(config.authorized_domains),
            new_project=(
                NewProjectSpec(
                    billing_account=config.new_project.billing_account,
                    folder_id=config.new_project.folder_id,
                    org_id=config.new_project.org_id,
                )
                if config.new_project
                else None
            ),
            labels={"environment": config.environment},
            identity_platform=config.identity_platform,
            adopting=not config.create_project and not reaches(phase, "functions"),
        ),
    )

    identities = FunctionIdentities(
        "fn-identity",
        FunctionIdentitiesArgs(project_id=project.project_id, catalog=catalog, depends_on=project.services),
    )
    secrets = Secrets(
        "secrets",
        SecretsArgs(
            project_id=project.project_id,
            catalog=catalog,
            function_service_accounts=identities.emails,
            depends_on=project.services,
        ),
    )
    functions: Functions | None = None
    if reaches(phase, "functions"):
        # Functions read `latest` secret versions: they come after the secrets have values.
        functions = Functions(
            "functions",
            FunctionsArgs(
                project_id=project.project_id,
                region=config.region,
                environment=config.environment,
                catalog=catalog,
                archives=archives,
                identities=identities,
                secret_ids=secrets.secret_ids,
                settings={
                    "OPS_EMAIL": config.ops_email,
                    "EMAIL_FROM": config.email_from,
                    "APP_URL": config.app_url,
                    "ZENDESK_BASE_URL": config.zendesk_base_url,
                    "STRIPE_PRICE_ID": config.stripe_price_id,
                },
                console_settings=(
                    {WEB_API_KEY_VARIABLE: config.firebase_web_api_key} if config.firebase_web_api_key else {}
                ),
                max_instances_scale=config.max_instances_scale,
                firestore_database=project.database_name,
                firestore_region=config.firestore_location_id,
                depends_on=[
                    *project.services,
                    project.database,
                    project.eventarc_agent,
                    *secrets.accessors,
                    *identities.role_grants,
                ],
            ),
        )
    hosting = ApiHosting(
        "api",
        HostingArgs(
            project_id=project.project_id,
            site_id=config.site_id,
            region=config.region,
            api_host=config.api_host,
            catalog=catalog,
            service_names=functions.service_names if functions else {},
            firebase_project=project.firebase,
            routes=functions is not None,
        ),
    )
    Edge(
        "edge",
        EdgeArgs(
            zone_id=config.cloudflare_zone_id,
            domain=config.domain,
            api_host=config.api_host,
            api_target=hosting.cname_target,
            dmarc_policy=config.dmarc_policy,
            dmarc_rua=config.dmarc_rua,
            dkim_records=config.dkim_records,
            spf_includes=config.spf_includes,
            caa_issuers=config.caa_issuers,
            caa_iodef=config.caa_iodef,
            # Exact API paths; a prefix route (the ops console) is behind its own sign-in instead.
            rate_limited_paths=[
                str(spec.trigger.path) for spec in catalog.public_http if not spec.trigger.is_prefix
            ],
            manage_zone=config.manage_zone,
            mail_domain=config.sending_domain,
            cloudflare_plan=config.cloudflare_plan,
        ),
    )
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            project_id=project.project_id,
            alert_email=config.alert_email,
            # Public entry points answer GET with a health response, so each check covers the whole
            # path a client takes: Cloudflare, Firebase Hosting, the rewrite and the function.
            uptime_targets=[
                UptimeTarget(name=spec.resource_name, host=config.api_host, path=str(spec.trigger.probe_path))
                for spec in catalog.public_http
            ],
            function_names=[spec.name for spec in catalog.functions],
            webhook_function=webhook.name,
            dead_letter_subscriptions=list(functions.dead_letter_subscriptions.values()) if functions else [],
            log_retention_days=config.log_retention_days,
            alerts=functions is not None,
            uptime_alerts=reaches(phase, "complete"),
            endpoint_functions=[spec.name for spec in catalog.public_http],
        ),
        opts=pulumi.ResourceOptions(depends_on=project.services),
    )

    api_base = f"https://{config.api_host}"
    pulumi.export("projectId", project.project_id)
    pulumi.export("region", config.region)
    pulumi.export("apiBaseUrl", api_base)
    pulumi.export(
        "publicEndpoints", {spec.name: f"{api_base}{spec.trigger.base_path}" for spec in catalog.public_http}
    )
    # Register this URL in the Stripe dashboard as the webhook endpoint.
    pulumi.export("stripeWebhookUrl", f"{api_base}{webhook.trigger.path}")
    pulumi.export("apiHostingDefaultHost", hosting.default_host)
    pulumi.export("apiDnsRecordsRequested", hosting.required_dns_updates)
    pulumi.export("apiCertificateState", hosting.certificate_state)
    pulumi.export("secretIds", secrets.secret_ids)
    pulumi.export("deployPhase", phase)
    if functions is not None:
        pulumi.export("functionServiceUrls", functions.urls)
        pulumi.export("deadLetterSubscriptions", functions.dead_letter_subscriptions)
        pulumi.export(
            "functionsSourceObjects", {fn: obj.output_name for fn, obj in functions.source_objects.items()}
        )
    pulumi.export("alertNotificationChannel", monitoring.notification_channel)


main()
