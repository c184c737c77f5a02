"""Secret Manager secrets the functions read, with per-secret, per-function access.

The program only creates the secret containers; values are added out of band (`tools/ops/secrets_cli.py`),
so no secret value ever passes through Pulumi state. Each secret's accessor role goes to exactly the
service accounts of the functions that declare it in the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from components.catalog import Catalog

ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"


def secret_resource_suffix(secret_name: str) -> str:
    return secret_name.lower().replace("_", "-")


@dataclass
class SecretsArgs:
    project_id: pulumi.Input[str]
    catalog: Catalog
    # Function name (catalog spelling) -> its runtime service account email.
    function_service_accounts: Mapping[str, pulumi.Input[str]]
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


class Secrets(pulumi.ComponentResource):
    """One secret per name in the catalog (the secret id is the env var name, e.g. STRIPE_API_KEY)."""

    secret_ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: SecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("launchready:secrets:Secrets", name, None, opts)
        self.secrets: dict[str, gcp.secretmanager.Secret] = {}
        self.accessors: list[gcp.secretmanager.SecretIamMember] = []

        for secret_name in args.catalog.secret_names:
            suffix = secret_resource_suffix(secret_name)
            secret = gcp.secretmanager.Secret(
                f"{name}-{suffix}",
                project=args.project_id,
                secret_id=secret_name,
                replication=gcp.secretmanager.SecretReplicationArgs(
                    auto=gcp.secretmanager.SecretReplicationAutoArgs()
                ),
                labels={"managed-by": "launchready"},
                # secret_id is fixed and replication forces a replacement: a second secret with the same id
                # cannot be created beside the old one (409), so a replacement deletes first.
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=list(args.depends_on), delete_before_replace=True
                ),
            )
            self.secrets[secret_name] = secret
            for spec in args.catalog.functions_using_secret(secret_name):
                email = args.function_service_accounts[spec.name]
                self.accessors.append(
                    gcp.secretmanager.SecretIamMember(
                        f"{name}-{suffix}-{spec.resource_name}-accessor",
                        project=args.project_id,
                        secret_id=secret.secret_id,
                        role=ACCESSOR_ROLE,
                        member=pulumi.Output.concat("serviceAccount:", email),
                        opts=pulumi.ResourceOptions(parent=self),
                    )
                )

        self.secret_ids = {secret_name: secret.secret_id for secret_name, secret in self.secrets.items()}
        self.register_outputs({"secret_ids": self.secret_ids})
