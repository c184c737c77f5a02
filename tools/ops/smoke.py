"""`make smoke`: the demo's journey as a smoke test, on the running `make up` or a deployed stack.

Against a deployed stack the safety rules pass before any request is sent (docs/tools.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import requests

from components.stack_config import StackConfig, StackConfigError, parse_stack_config
from tools.exit_codes import ExitCode
from tools.journey.deployed_stack import DEFAULT_TEST_INBOX, TEST_KEY_PREFIXES, test_inbox_problem
from tools.project_files import ROOT, read_catalog, read_stack

if TYPE_CHECKING:
    from tools.journey.deployed_stack import DeployedTarget
    from tools.journey.target import JourneyTarget

DEFAULT_ENDPOINTS = ROOT / ".local" / "endpoints.json"
# Stripe's live-mode secret, restricted and publishable keys (https://docs.stripe.com/keys#obtain-api-keys).
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_", "pk_live_")
WEBHOOK_SECRET = (
    "STRIPE_WEBHOOK_SECRET"  # the env var and the Secret Manager secret id (components/secrets.py)
)
# Read-only uses of the environment's own secrets: the Checkout Session (test mode only) and the
# providers' records (tools/journey/provider_reads.py).
PROBE_TIMEOUT_SECONDS = 15
READ_SECRETS = ("STRIPE_API_KEY", "HUBSPOT_TOKEN", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN", "RESEND_API_KEY")


class SmokeRefused(Exception):
    """The smoke test must not run against this target; the message says why."""


class SmokeUnavailable(Exception):
    """The target cannot be smoked from here; the message says what is missing."""


def is_live_key(value: str) -> bool:
    return value.strip().startswith(LIVE_KEY_PREFIXES)


def live_key_problem(environ: Mapping[str, str]) -> str | None:
    """The refusal for live-mode Stripe keys in the environment (naming the variables), or None."""
    live = [name for name, value in sorted(environ.items()) if is_live_key(value)]
    if not live:
        return None
    return f"{', '.join(live)} holds a live-mode Stripe key: the smoke test uses test mode only"


def refuse_unsafe(stack: str, root: Path, allow_production: bool, environ: Mapping[str, str]) -> StackConfig:
    """Check the target before any request; returns its stack config. Raises SmokeRefused."""
    live = live_key_problem(environ)
    if live:
        raise SmokeRefused(live)
    try:
        stack_file = read_stack(stack, root)
        config = parse_stack_config(stack_file.config, stack)
    except StackConfigError as error:
        raise SmokeRefused(str(error)) from None
    if config.is_production and not allow_production:
        raise SmokeRefused(
            f"{stack} is a production environment: its users would see the test sign-up, checkout and "
            "ticket; pass ALLOW_PRODUCTION=1 (--allow-production) to run it there anyway"
        )
    return config


def public_urls(
    stack: str, base_url: str | None, run: Callable[[list[str]], str] | None = None
) -> dict[str, str]:
    """Function name -> public URL of each public entry point, from --base-url or the stack outputs."""
    catalog = read_catalog()
    if base_url:
        base = base_url.rstrip("/")
        return {spec.name: f"{base}{spec.trigger.base_path}" for spec in catalog.public_http}
    if run is None:
        if shutil.which("pulumi") is None:
            raise SmokeUnavailable(
                "no --base-url and no Pulumi CLI to read the stack outputs: pass BASE_URL="
            )
        run = _pulumi_output
    outputs = json.loads(run(["pulumi", "stack", "output", "--json", "--stack", stack]))
    endpoints = outputs.get("publicEndpoints")
    if not isinstance(endpoints, dict) or not endpoints:
        raise SmokeUnavailable(f"stack {stack} has no publicEndpoints output: deploy it first (make deploy)")
    return {str(name): str(url) for name, url in endpoints.items()}


def _pulumi_output(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        raise SmokeUnavailable(f"{' '.join(argv)} failed: {result.stderr.strip().splitlines()[-1:]}")
    return result.stdout


def secret_name(project_id: str, name: str) -> str:
    return f"projects/{project_id}/secrets/{name}/versions/latest"


def webhook_secret(
    project_id: str, environ: Mapping[str, str], access: Callable[[str], str] | None = None
) -> str:
    """STRIPE_WEBHOOK_SECRET from the environment, else the latest version in the project's Secret
    Manager (Application Default Credentials). Never printed. Raises SmokeUnavailable."""
    try:
        return environment_secret(project_id, WEBHOOK_SECRET, environ, access)
    except Exception as error:  # no credentials, no access, no such secret: say which, not the value
        raise SmokeUnavailable(
            f"no {WEBHOOK_SECRET} in the environment and {secret_name(project_id, WEBHOOK_SECRET)} could "
            f"not be read ({type(error).__name__}); set it or run `gcloud auth application-default login`"
        ) from None


def environment_secret(
    project_id: str, name: str, environ: Mapping[str, str], access: Callable[[str], str] | None = None
) -> str:
    """`name` from the environment, else its latest version in the project's Secret Manager; raises
    whatever the Secret Manager read raises."""
    return environ.get(name) or (access or _access_secret)(secret_name(project_id, name))


def optional_secrets(
    project_id: str,
    names: tuple[str, ...],
    environ: Mapping[str, str],
    access: Callable[[str], str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """({name: value} of each secret found in the environment or Secret Manager, [why each other one is
    missing]). A missing one only leaves the reads that need it not checked."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        try:
            found[name] = environment_secret(project_id, name, environ, access)
        except Exception as error:  # reported by name and error type, never a value
            missing.append(f"{name} ({type(error).__name__})")
    return found, missing


def _access_secret(name: str) -> str:
    from google.cloud import secretmanager

    client = secretmanager.SecretManagerServiceClient()
    return client.access_secret_version(name=name).payload.data.decode()


def deployed_target(
    config: StackConfig,
    urls: Mapping[str, str],
    environ: Mapping[str, str],
    access: Callable[[str], str] | None = None,
    *,
    test_inbox: str = DEFAULT_TEST_INBOX,
    deployer: bool = True,
    say: Callable[[str], None] = lambda line: None,
) -> DeployedTarget:
    """Everything the journey needs to reach the deployed stack, with the environment's provider
    credentials for reading outcomes back. Raises SmokeRefused (the environment's Stripe key is
    live-mode) or SmokeUnavailable."""
    from tools.journey.deployed_stack import DeployedTarget
    from tools.journey.provider_reads import ProviderCredentials

    api_key = config.firebase_web_api_key or environ.get("FIREBASE_WEB_API_KEY")
    if not api_key:
        raise SmokeUnavailable(
            "no web API key to exchange the test user's token: set launchready:firebaseWebApiKey "
            "(or FIREBASE_WEB_API_KEY)"
        )
    if not deployer and access is None:
        access = _no_secret_manager
    secret = webhook_secret(config.project_id, environ, access)
    found, missing = optional_secrets(config.project_id, READ_SECRETS, environ, access)
    stripe_key = found.pop("STRIPE_API_KEY", None)
    if stripe_key and is_live_key(stripe_key):
        raise SmokeRefused(
            f"{config.project_id}'s STRIPE_API_KEY is a live-mode key: the smoke test runs only against "
            "environments in Stripe test mode"
        )
    if missing:
        say(f"provider reads without: {', '.join(missing)} (those outcomes will be listed as not checked)")
    providers = ProviderCredentials(secrets=found, zendesk_base_url=config.zendesk_base_url)
    try:
        return DeployedTarget(
            project_id=config.project_id,
            urls=dict(urls),
            web_api_key=api_key,
            webhook_secret=secret,
            stripe_api_key=stripe_key,
            signer_service_account=environ.get("FIREBASE_SERVICE_ACCOUNT_ID") or None,
            providers=providers,
            test_inbox=test_inbox,
            deployer=deployer,
        )
    except ValueError as error:  # a secret or setting in the wrong shape: bad input
        raise SmokeRefused(str(error)) from None


class NoDeployerCredentials(Exception):
    """Secret Manager is not asked without deployer credentials."""


def _no_secret_manager(name: str) -> str:
    raise NoDeployerCredentials(name)


def input_problems(
    stack: str, base_url: str | None, test_inbox: str, environ: Mapping[str, str]
) -> list[str]:
    """Every problem with the values given (command line and environment), all at once, before anything
    is read or sent. Names variables, never values."""
    problems = []
    if not stack.strip():
        problems.append("STACK is empty: name a stack (Pulumi.<stack>.yaml), or leave STACK out for make up")
    if base_url is not None:
        problem = base_url_problem(base_url)
        if problem:
            problems.append(problem)
    inbox = test_inbox_problem(test_inbox)
    if inbox:
        problems.append(inbox)
    live = live_key_problem(environ)
    if live:
        problems.append(live)
    webhook = environ.get(WEBHOOK_SECRET)
    if webhook and not webhook.startswith("whsec_"):
        problems.append(f"{WEBHOOK_SECRET} in the environment is not a whsec_ signing secret")
    stripe_key = environ.get("STRIPE_API_KEY")
    if stripe_key and not is_live_key(stripe_key) and not stripe_key.startswith(TEST_KEY_PREFIXES):
        problems.append("STRIPE_API_KEY in the environment is not a test-mode key (sk_test_, rk_test_)")
    return problems


def base_url_problem(base_url: str) -> str | None:
    """Why BASE_URL is not an http(s)://host[:port][/path] URL without credentials, or None."""
    shape = f"BASE_URL {base_url!r} is not an http(s)://host[:port][/path] URL"
    if any(character.isspace() or ord(character) < 32 for character in base_url):
        return shape
    try:
        parts = urlparse(base_url)
        parts.port  # noqa: B018  # raises ValueError for a port out of range or not a number
    except ValueError:
        return shape
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        return shape
    if parts.username is not None or parts.password is not None:
        return "BASE_URL carries credentials (user:password@): give the public URL only"
    return None


def unreachable(urls: Mapping[str, str], http: requests.Session | None = None) -> list[str]:
    """The public entry points that do not answer their health check (GET: 200), as "name: why"."""
    session = http or requests.Session()
    failing = []
    for name, url in sorted(urls.items()):
        try:
            status = session.get(url, timeout=PROBE_TIMEOUT_SECONDS).status_code
        except requests.RequestException as error:
            failing.append(f"{name}: {type(error).__name__}")
            continue
        if status != 200:
            failing.append(f"{name}: GET answered {status}")
    return failing


def deployer_credentials() -> bool:
    """Whether Application Default Credentials are available (https://google.aip.dev/auth/4110)."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default()
    except DefaultCredentialsError:
        return False
    return True


def smoke_deployed(stack: JourneyTarget, out: Callable[[str], None]) -> ExitCode:
    """The journey against a deployed target: OK, FAILED (a step) or NOT_ALL_CHECKED."""
    from tools.journey.steps import Journey, run_steps, steps

    journey = Journey(stack)
    return run_steps(journey, steps(journey), None, out)


def smoke_local(endpoints_path: Path, out: Callable[[str], None]) -> ExitCode:
    """The journey against a running local stack (`make up`), health-checked first as `make demo` does."""
    from tools.journey.local_stack import LocalStack, load_endpoints
    from tools.journey.steps import Journey, run_steps, steps
    from tools.local.demo import unhealthy_parts

    if not endpoints_path.exists():
        out(f"✗ {endpoints_path} not found: is the stack running? Start it with `make up`.")
        return ExitCode.ENVIRONMENT
    endpoints = load_endpoints(endpoints_path)
    dead = unhealthy_parts(endpoints_path, endpoints)
    if dead:
        out(f"✗ the stack is not healthy: {', '.join(check.part for check in dead)}; restart `make up`")
        return ExitCode.ENVIRONMENT
    journey = Journey(LocalStack(endpoints))
    out(f"Smoke test against {endpoints_path} (project {endpoints['project_id']})\n")
    return run_steps(journey, steps(journey, endpoints), Path(endpoints["logs_dir"]), out)


def run(
    *,
    stack: str | None = None,
    base_url: str | None = None,
    allow_production: bool = False,
    endpoints: Path = DEFAULT_ENDPOINTS,
    test_inbox: str | None = None,
    out: Callable[[str], None] | None = None,
) -> ExitCode:
    """The journey on the running local stack (no `stack`) or on a deployed one: OK; FAILED when a step
    failed; USAGE when refused or for bad input; ENVIRONMENT when the target cannot be smoked from here;
    NOT_ALL_CHECKED when every step passed but some outcomes could not be read."""
    say = out or (lambda line: print(line, flush=True))
    test_inbox = test_inbox or DEFAULT_TEST_INBOX
    if stack is None:
        return smoke_local(endpoints, say)
    problems = input_problems(stack, base_url, test_inbox, os.environ)
    if problems:
        for problem in problems:
            print(f"refused: {problem}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        config = refuse_unsafe(stack, ROOT, allow_production, os.environ)
        urls = public_urls(stack, base_url)
    except SmokeRefused as error:
        print(f"refused: {error}", file=sys.stderr)
        return ExitCode.USAGE
    except SmokeUnavailable as error:
        print(f"unavailable: {error}", file=sys.stderr)
        return ExitCode.ENVIRONMENT
    listed = ", ".join(f"{name} {url}" for name, url in sorted(urls.items()))
    say(f"{stack} ({config.environment}, project {config.project_id}): {listed}")
    dead = unreachable(urls)
    if dead:
        print(f"unavailable: no health answer from {'; '.join(dead)}: check BASE_URL or the stack outputs, "
              "and that the stack is deployed", file=sys.stderr)
        return ExitCode.ENVIRONMENT
    deployer = deployer_credentials()
    if not deployer:
        say("no deployer credentials (Application Default Credentials): the test user signs up with a "
            "password as the app does, Firestore is read only as that user, secrets come only from the "
            "environment (not Secret Manager)")
    try:
        target = deployed_target(config, urls, os.environ, test_inbox=test_inbox, deployer=deployer, say=say)
    except SmokeRefused as error:
        print(f"refused: {error}", file=sys.stderr)
        return ExitCode.USAGE
    except SmokeUnavailable as error:
        print(f"unavailable: {error}", file=sys.stderr)
        return ExitCode.ENVIRONMENT
    from tools.journey.deployed_stack import DeployedStack

    deployed = DeployedStack(target)
    try:
        return smoke_deployed(deployed, say)
    finally:
        deployed.close()
