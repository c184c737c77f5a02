"""Pulumi mocks that answer like the real providers, so the program can be evaluated offline.

Every registered resource is recorded with its options as the engine spells them (docs/tools.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as runtime_mocks

from tools.offline.contracts.check import Environment, Violation, check_resource

DEFAULT_PROJECT = "mock-project"
DEFAULT_REGION = "europe-west1"
# Stable fake project number: the real one is assigned by Google at project creation.
PROJECT_NUMBER = "123456789012"


def _digest(*parts: str, length: int = 10) -> str:
    """Deterministic pseudo-random suffix, like the hashes providers put in generated names."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _project(inputs: dict[str, Any]) -> str:
    value = inputs.get("project")
    return value if isinstance(value, str) and value else DEFAULT_PROJECT


def default_options() -> dict[str, Any]:
    """Resource options of a resource declared with none, as the engine records them."""
    return {
        "protect": False,
        "deleteBeforeReplace": False,
        "retainOnDelete": False,
        "importId": None,
        "aliases": [],
        "ignoreChanges": [],
        "dependsOn": [],
        "provider": None,
    }


@dataclass
class RecordedResource:
    """One resource as the program registered it.

    `parent` is the parent's name and `parent_urn` its URN; both None for a resource directly under
    the stack.
    """

    type: str
    name: str
    inputs: dict[str, Any]
    parent: str | None = None
    custom: bool = True
    urn: str = ""
    parent_urn: str | None = None
    options: dict[str, Any] = field(default_factory=default_options)

    def as_plan_entry(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent_urn,
            "inputs": self.inputs,
            "options": self.options,
        }


def computed_state(typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Return (id, outputs) for a resource in the shape the real provider returns them."""
    project = _project(inputs)
    location = inputs.get("location") or inputs.get("region") or DEFAULT_REGION
    state: dict[str, Any] = {}

    if typ == "gcp:organizations/project:Project":
        project_id = inputs.get("projectId", project)
        state = {"number": PROJECT_NUMBER, "projectId": project_id}
        return project_id, state
    if typ == "gcp:projects/service:Service":
        return f"{project}/{inputs.get('service')}", state
    if typ == "gcp:projects/serviceIdentity:ServiceIdentity":
        # Google-managed service agents: service-<project number>@gcp-sa-<service>.iam.gserviceaccount.com
        agent = str(inputs.get("service", "")).split(".")[0]
        email = f"service-{PROJECT_NUMBER}@gcp-sa-{agent}.iam.gserviceaccount.com"
        return f"projects/{project}/services/{inputs.get('service')}", {
            "email": email,
            "member": f"serviceAccount:{email}",
        }
    if typ == "gcp:firebase/project:Project":
        state = {"projectNumber": PROJECT_NUMBER, "displayName": project}
        return f"projects/{project}", state
    if typ == "gcp:firestore/database:Database":
        db = inputs.get("name", "(default)")
        state = {
            "uid": _digest(project, db, length=32),
            "etag": _digest("etag", name),
            "keyPrefix": _digest("key", project, length=8),
            "versionRetentionPeriod": "604800s",
            "earliestVersionTime": "2026-01-01T00:00:00Z",
        }
        return f"projects/{project}/databases/{db}", state
    if typ == "gcp:firestore/index:Index":
        index_id = "CICAgO" + _digest(name, length=10)
        db = inputs.get("database", "(default)")
        group = inputs.get("collection")
        full = f"projects/{project}/databases/{db}/collectionGroups/{group}/indexes/{index_id}"
        return full, {"name": full}
    if typ == "gcp:firebaserules/ruleset:Ruleset":
        # The provider reports the generated ruleset id as `name`; the resource id is the full path.
        ruleset_id = (
            f"{_digest(name, length=8)}-{_digest('r', name, length=4)}-{_digest('s', name, length=12)}"
        )
        return f"projects/{project}/rulesets/{ruleset_id}", {
            "name": ruleset_id,
            "createTime": "2026-01-01T00:00:00Z",
        }
    if typ == "gcp:firebaserules/release:Release":
        return f"projects/{project}/releases/{inputs.get('name')}", {}
    if typ == "gcp:identityplatform/config:Config":
        return f"projects/{project}/config", {"name": f"projects/{project}/config"}
    if typ == "gcp:secretmanager/secret:Secret":
        secret_id = inputs.get("secretId", name)
        # The API reports secrets under the project number, Pulumi's id uses the project id.
        state = {"name": f"projects/{PROJECT_NUMBER}/secrets/{secret_id}"}
        return f"projects/{project}/secrets/{secret_id}", state
    if typ == "gcp:storage/bucket:Bucket":
        bucket = inputs.get("name", name)
        state = {
            "url": f"gs://{bucket}",
            "selfLink": f"https://www.googleapis.com/storage/v1/b/{bucket}",
            "projectNumber": PROJECT_NUMBER,
        }
        return bucket, state
    if typ == "gcp:storage/bucketObject:BucketObject":
        bucket, object_name = inputs.get("bucket"), inputs.get("name", name)
        state = {
            "outputName": object_name,
            "md5hash": _digest("md5", str(object_name), length=24),
            "generation": 1767225600000000,
            "selfLink": f"https://www.googleapis.com/storage/v1/b/{bucket}/o/{object_name}",
            "mediaLink": f"https://storage.googleapis.com/download/storage/v1/b/{bucket}/o/{object_name}?alt=media",
        }
        return f"{bucket}-{object_name}", state
    if typ == "gcp:serviceaccount/account:Account":
        email = f"{inputs.get('accountId')}@{project}.iam.gserviceaccount.com"
        state = {
            "email": email,
            "member": f"serviceAccount:{email}",
            "name": f"projects/{project}/serviceAccounts/{email}",
            "uniqueId": str(int(_digest(email, length=12), 16)),
        }
        return state["name"], state
    if typ == "gcp:cloudfunctionsv2/function:Function":
        fn = inputs.get("name", name)
        service_config = dict(inputs.get("serviceConfig") or {})
        # Cloud Run service backing a 2nd-gen function carries the function's name.
        service_config["service"] = f"projects/{project}/locations/{location}/services/{fn}"
        service_config["uri"] = f"https://{fn}-{_digest(project, fn, length=10)}-ew.a.run.app"
        state = {
            "serviceConfig": service_config,
            "url": f"https://{location}-{project}.cloudfunctions.net/{fn}",
            "state": "ACTIVE",
            "environment": "GEN_2",
        }
        trigger = inputs.get("eventTrigger")
        if isinstance(trigger, dict):
            state["eventTrigger"] = {
                **trigger,
                "trigger": f"projects/{project}/locations/{location}/triggers/{fn}-{_digest(fn, length=6)}",
            }
        return f"projects/{project}/locations/{location}/functions/{fn}", state
    if typ == "gcp:pubsub/topic:Topic":
        return f"projects/{project}/topics/{inputs.get('name', name)}", state
    if typ == "gcp:pubsub/subscription:Subscription":
        return f"projects/{project}/subscriptions/{inputs.get('name', name)}", state
    if typ == "gcp:cloudscheduler/job:Job":
        return f"projects/{project}/locations/{location}/jobs/{inputs.get('name', name)}", {
            "state": "ENABLED"
        }
    if typ == "gcp:firebase/hostingSite:HostingSite":
        site = inputs.get("siteId", name)
        state = {
            "name": f"projects/{project}/sites/{site}",
            "defaultUrl": f"https://{site}.web.app",
            "type": "USER_SITE",
        }
        return state["name"], state
    if typ == "gcp:firebase/hostingVersion:HostingVersion":
        version_id = _digest("version", name, length=16)
        state = {"name": f"sites/{inputs.get('siteId')}/versions/{version_id}", "versionId": version_id}
        return state["name"], state
    if typ == "gcp:firebase/hostingRelease:HostingRelease":
        release_id = _digest("release", name, length=16)
        state = {"name": f"sites/{inputs.get('siteId')}/releases/{release_id}", "releaseId": release_id}
        return state["name"], state
    if typ == "gcp:firebase/hostingCustomDomain:HostingCustomDomain":
        site, domain = inputs.get("siteId"), inputs.get("customDomain")
        state = {
            "name": f"projects/{project}/sites/{site}/customDomains/{domain}",
            "hostState": "HOST_ACTIVE",
            "ownershipState": "OWNERSHIP_ACTIVE",
            "requiredDnsUpdates": [
                {
                    "checkTime": "2026-01-01T00:00:00Z",
                    "desireds": [
                        {
                            "domainName": domain,
                            "records": [{"domainName": domain, "type": "CNAME", "rdata": f"{site}.web.app."}],
                        }
                    ],
                }
            ],
        }
        return state["name"], state
    if typ == "gcp:monitoring/notificationChannel:NotificationChannel":
        full = f"projects/{project}/notificationChannels/{int(_digest(name, length=12), 16)}"
        return full, {"name": full}
    if typ == "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig":
        check_id = f"{name}-{_digest(name, length=8)}"
        full = f"projects/{project}/uptimeCheckConfigs/{check_id}"
        return full, {"name": full, "uptimeCheckId": check_id}
    if typ == "gcp:monitoring/alertPolicy:AlertPolicy":
        full = f"projects/{project}/alertPolicies/{int(_digest(name, length=12), 16)}"
        return full, {"name": full}
    if typ == "gcp:logging/metric:Metric":
        return inputs.get("name", name), {}
    if typ.startswith("cloudflare:"):
        return _digest("cf", typ, name, length=32), {}
    if typ.startswith("random:"):
        return _digest("random", name, length=8), {
            "result": _digest("result", name, length=8),
            "hex": _digest(name),
        }
    # IAM members and everything else: an etag-bearing resource with a stable id.
    if "iam" in typ.lower():
        return f"{name}-{_digest(name, length=6)}", {"etag": "BwY" + _digest("etag", name, length=9)}
    return f"{name}-id", state


class PlanMocks(pulumi.runtime.Mocks):
    """Mocks returning realistic computed outputs and recording every registered resource.

    Use `install()` to also record each resource's URN, parent and options;
    `pulumi.runtime.set_mocks(PlanMocks())` works too, but then those stay empty.
    """

    def __init__(
        self,
        project_number: str = PROJECT_NUMBER,
        environment: Environment | None = None,
        preview: bool = False,
    ) -> None:
        self.project_number = project_number
        # Stack config the environment-dependent contracts read (adopt mode, Cloudflare plan...).
        self.environment = environment or Environment()
        # preview=True answers like `pulumi preview` of a first deploy: outputs the cloud computes
        # stay unknown, so inputs built from them are unknown too.
        self.preview = preview
        self.resources: list[RecordedResource] = []
        # Provider-contract violations of every registered resource, in registration order.
        self.violations: list[Violation] = []
        # `pulumi.export` values once settled, filled by `run_under_mocks(..., mocks)`.
        self.stack_outputs: dict[str, Any] = {}
        # The configured values of the stack's public settings (evaluate.PUBLIC_SETTINGS), never redacted.
        self.public_values: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._registering = threading.local()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        # URN, parent and options come from the RegisterResource request `PlanMonitor` is answering.
        registration: dict[str, Any] = getattr(self._registering, "value", None) or {}
        recorded = RecordedResource(
            type=args.typ,
            name=args.name,
            inputs=inputs,
            custom=bool(args.custom),
            urn=registration.get("urn", ""),
            parent_urn=registration.get("parent"),
            parent=registration["parent"].split("::")[-1] if registration.get("parent") else None,
            options=registration.get("options") or default_options(),
        )
        violations = (
            check_resource(args.typ, args.name, inputs, recorded.options, self.environment)
            if recorded.custom
            else []
        )
        with self._lock:
            self.resources.append(recorded)
            self.violations.extend(violations)
        if self.preview:
            # A create in preview: the engine knows the inputs, not the id or computed outputs.
            return "", inputs
        resource_id, computed = computed_state(args.typ, args.name, inputs)
        return resource_id, {**inputs, **computed}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "gcp:organizations/getProject:getProject":
            project = args.args.get("projectId") or DEFAULT_PROJECT
            return {"projectId": project, "number": self.project_number, "name": project, "id": project}, []
        if args.token == "gcp:organizations/getClientConfig:getClientConfig":
            return {"project": DEFAULT_PROJECT, "region": DEFAULT_REGION, "id": DEFAULT_PROJECT}, []
        return {}, []

    # ---- queries used by tests and the planner ----------------------------------------------------

    def install(self, project: str = "launch-ready", stack: str = "staging") -> None:
        """Point the Pulumi runtime at these mocks, recording URNs and options through `PlanMonitor`."""
        pulumi.runtime.set_mocks(
            self, project=project, stack=stack, preview=self.preview, monitor=PlanMonitor(self)
        )

    def of_type(self, typ: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == typ]

    def named(self, typ: str, name: str) -> RecordedResource:
        matches = [r for r in self.resources if r.type == typ and r.name == name]
        if len(matches) != 1:
            raise LookupError(f"expected one {typ} named {name!r}, found {len(matches)}")
        return matches[0]

    def plan(self) -> list[dict[str, Any]]:
        return [r.as_plan_entry() for r in self.resources]


def _provider_urn(reference: str) -> str | None:
    """A provider reference is `<provider URN>::<provider id>`; the plan names the provider by URN."""
    return reference.rsplit("::", 1)[0] if reference else None


def _alias(alias: Any) -> str | dict[str, Any]:
    """An alias as a URN, or as the spec the engine resolves into one (only the fields that are set)."""
    if alias.HasField("urn"):
        return str(alias.urn)
    spec = alias.spec
    fields = ("name", "type", "stack", "project", "parentUrn", "noParent")
    return {name: getattr(spec, name) for name in fields if getattr(spec, name)}


def request_options(request: Any) -> dict[str, Any]:
    """The resource options carried by a RegisterResourceRequest, spelled as the engine spells them."""
    return {
        "protect": bool(request.protect),
        "deleteBeforeReplace": bool(request.deleteBeforeReplace),
        "retainOnDelete": bool(request.retainOnDelete),
        "importId": request.importId or None,
        "aliases": [*request.aliasURNs, *(_alias(alias) for alias in request.aliases)],
        "ignoreChanges": list(request.ignoreChanges),
        "dependsOn": sorted(set(request.dependencies)),
        "provider": _provider_urn(request.provider),
    }


class PlanMonitor(runtime_mocks.MockMonitor):
    """MockMonitor that hands the mocks each resource's URN, parent and options."""

    def __init__(self, mocks: PlanMocks) -> None:
        super().__init__(mocks)
        self.plan_mocks = mocks

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The engine leaves the root stack out of a URN's type chain (MockMonitor does not).
        if parent and parent.split("::")[2].endswith("pulumi:pulumi:Stack"):
            parent = ""
        return super().make_urn(parent, type_, name)

    def _transformed_options(self, request: Any) -> dict[str, Any]:
        """The request's options after the stack transforms, which the engine (not the SDK) runs.

        Only the options a transform returns are applied here; the inputs stay as the program sent them.
        """
        options = request_options(request)
        for transform in self._stack_transforms:
            opts = pulumi.ResourceOptions(
                protect=options["protect"],
                delete_before_replace=options["deleteBeforeReplace"],
                retain_on_delete=options["retainOnDelete"],
                ignore_changes=options["ignoreChanges"],
                import_=options["importId"],
            )
            args = pulumi.ResourceTransformArgs(
                custom=bool(request.custom), type_=request.type, name=request.name, props={}, opts=opts
            )
            result = transform(args)
            if inspect.isawaitable(result):
                result = asyncio.run(_awaited(result))
            if result is None:
                continue
            new = result.opts
            options.update(
                protect=bool(new.protect),
                deleteBeforeReplace=bool(new.delete_before_replace),
                retainOnDelete=bool(new.retain_on_delete),
                ignoreChanges=list(new.ignore_changes or []),
                importId=new.import_ or None,
            )
        return options

    def RegisterResource(self, request: Any) -> Any:
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        parent_urn: str = request.parent
        # The stack itself is no useful parent: top-level resources report None.
        parent = None
        if parent_urn and not parent_urn.split("::")[2].endswith("pulumi:pulumi:Stack"):
            parent = parent_urn
        registering = self.plan_mocks._registering
        registering.value = {
            "urn": self.make_urn(parent_urn, request.type, request.name),
            "parent": parent,
            "options": self._transformed_options(request),
        }
        try:
            return super().RegisterResource(request)
        finally:
            registering.value = None


async def _awaited(value: Any) -> Any:
    return await value


def run_under_mocks(program: Callable[[], object], mocks: PlanMocks | None = None) -> None:
    """Run `program` in the mocked Pulumi runtime and wait until every resource and output settles.

    With `mocks`, the program's `pulumi.export` values are resolved into `mocks.stack_outputs`.
    Exceptions raised by the program or inside an `apply` propagate to the caller.
    """

    def settled() -> pulumi.Output[Any] | None:
        # The runtime awaits the return value; a component or module namespace is not awaitable.
        program()
        stack = pulumi.runtime.get_root_resource()
        if mocks is None or stack is None:
            return None
        exports: dict[str, Any] = dict(getattr(stack, "outputs", {}))
        return pulumi.Output.from_input(exports).apply(mocks.stack_outputs.update)

    pulumi.runtime.test(settled)()
