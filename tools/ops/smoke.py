"""`make smoke [STACK=<stack>] [BASE_URL=<url>] [ALLOW_PRODUCTION=1]`: the founder's journey as a smoke test.

    python -m tools.ops.smoke                                  # the running `make up` (.local/endpoints.json)
    python -m tools.ops.smoke --endpoints <state>/endpoints.json
    python -m tools.ops.smoke --stack staging [--base-url https://api-staging.example.com]

The journey is the one `make demo` runs (tools/local/journey.py): sign-up -> CRM, checkout -> paid ->
access, failed payment, support request -> one ticket + one acknowledgement, replayed webhook -> nothing
new, each step timed against its target (60 s, 2 minutes).

Against a deployed stack the safety rules come first, before any request: a production stack
(`launchready:environment: production`) is refused unless `--allow-production`; a live-mode Stripe key in
the environment (`sk_live_`, `rk_live_`, `pk_live_`) is refused always. The public URLs come from the
stack outputs (`pulumi stack output --json`: publicEndpoints) or from `--base-url` plus the catalog's
paths; each must answer its health check. The journey then runs on `DeployedStack`
(tools/ops/deployed.py) with Application Default Credentials: a test Auth
user at a Resend test inbox (`--test-inbox`, default delivered@resend.dev with a +label per run), a
test-mode payment signed with the environment's STRIPE_WEBHOOK_SECRET, outcomes read from Firestore and
from HubSpot, Zendesk, Resend and Stripe through their APIs with the environment's own secrets (each
from the environment, else Secret Manager; an environment whose STRIPE_API_KEY is live-mode is
refused). A read whose secret is missing is listed per step as not checked. Without deployer credentials
(no Application Default Credentials) the test user signs up with a password through the web API key,
its claims are read from its own account record, and what only the deployer can read (the ledger, the
notifications records that tell Resend's emails apart) is listed as not checked.
Exit status: 0 all steps passed, 1 a step failed, 2 refused or bad input, 3 the target cannot be smoked
from here, or every step passed but some outcomes were not checked (the lines say which).
"""

from __future__ import annotations

import argparse
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

from components.catalog import load_catalog
from components.stack_config import StackConfig, StackConfigError, parse_stack_config, read_stack_file
from tools.local.journey import NOT_ALL_CHECKED
from tools.ops.deployed import DEFAULT_TEST_INBOX, TEST_KEY_PREFIXES, test_inbox_problem

if TYPE_CHECKING:
    from tools.local.client import JourneyTarget
    from tools.ops.deployed import DeployedTarget

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ENDPOINTS = ROOT / ".local" / "endpoints.json"
# Stripe's live-mode secret, restricted and publishable keys (https://docs.stripe.com/keys#obtain-api-keys).
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_", "pk_live_")
EXIT_REFUSED = 2
EXIT_UNAVAILABLE = NOT_ALL_CHECKED  # 3, one meaning: not smoked in full from here
WEBHOOK_SECRET = (
    "STRIPE_WEBHOOK_SECRET"  # the env var and the Secret Manager secret id (components/secrets.py)
)
# Read-only uses of the environment's own secrets: the Checkout Session (test mode only) and the
# providers' records (tools/ops/provider_reads.py).
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
        stack_file = read_stack_file(root / f"Pulumi.{stack}.yaml")
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
    catalog = load_catalog()
    if base_url:
        base = base_url.rstrip("/")
        return {spec.name: f"{base}{spec.trigger.base_path}" for spec in catalog.public_http}
    if run is None:
        if shutil.which("pulumi") is None:
            raise SmokeRefused("no --base-url and no Pulumi CLI to read the stack outputs: pass BASE_URL=")
        run = _pulumi_output
    outputs = json.loads(run(["pulumi", "stack", "output", "--json", "--stack", stack]))
    endpoints = outputs.get("publicEndpoints")
    if not isinstance(endpoints, dict) or not endpoints:
        raise SmokeRefused(f"stack {stack} has no publicEndpoints output: deploy it first (make deploy)")
    return {str(name): str(url) for name, url in endpoints.items()}


def _pulumi_output(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        raise SmokeRefused(f"{' '.join(argv)} failed: {result.stderr.strip().splitlines()[-1:]}")
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
    from tools.ops.deployed import DeployedTarget
    from tools.ops.provider_reads import ProviderCredentials

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


def smoke_deployed(stack: JourneyTarget, out: Callable[[str], None]) -> int:
    """The journey against a deployed target: 0 all passed, 1 a step failed, 3 some outcome unchecked."""
    from tools.local.journey import Journey, run_steps, steps

    journey = Journey(stack)
    return run_steps(journey, steps(journey), None, out)


def smoke_local(endpoints_path: Path, out: Callable[[str], None]) -> int:
    """The journey against a running local stack (`make up`), health-checked first as `make demo` does."""
    from tools.local.client import LocalStack, load_endpoints
    from tools.local.demo import unhealthy_parts
    from tools.local.journey import Journey, run_steps, steps

    if not endpoints_path.exists():
        out(f"✗ {endpoints_path} not found: is the stack running? Start it with `make up`.")
        return EXIT_UNAVAILABLE
    endpoints = load_endpoints(endpoints_path)
    dead = unhealthy_parts(endpoints_path, endpoints)
    if dead:
        out(f"✗ the stack is not healthy: {', '.join(check.part for check in dead)}; restart `make up`")
        return EXIT_UNAVAILABLE
    journey = Journey(LocalStack(endpoints))
    out(f"Smoke test against {endpoints_path} (project {endpoints['project_id']})\n")
    return run_steps(journey, steps(journey, endpoints), Path(endpoints["logs_dir"]), out)


def main(argv: list[str] | None = None, out: Callable[[str], None] | None = None) -> int:
    say = out or (lambda line: print(line, flush=True))
    description = (__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(prog="python -m tools.ops.smoke", description=description)
    parser.add_argument("--stack", help="a deployed stack (Pulumi.<stack>.yaml); default: the local stack")
    parser.add_argument("--base-url", help="the API's public base URL instead of the stack outputs")
    parser.add_argument("--allow-production", action="store_true", help="run against a production stack")
    parser.add_argument("--endpoints", type=Path, default=DEFAULT_ENDPOINTS, help="local endpoints.json")
    parser.add_argument(
        "--test-inbox",
        default=DEFAULT_TEST_INBOX,
        help=f"the test user's mailbox; each run adds a +label ({DEFAULT_TEST_INBOX})",
    )
    options = parser.parse_args(argv)
    if options.stack is None:
        return smoke_local(options.endpoints, say)
    problems = input_problems(options.stack, options.base_url, options.test_inbox, os.environ)
    if problems:
        for problem in problems:
            print(f"refused: {problem}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        config = refuse_unsafe(options.stack, ROOT, options.allow_production, os.environ)
        urls = public_urls(options.stack, options.base_url)
    except SmokeRefused as error:
        print(f"refused: {error}", file=sys.stderr)
        return EXIT_REFUSED
    listed = ", ".join(f"{name} {url}" for name, url in sorted(urls.items()))
    say(f"{options.stack} ({config.environment}, project {config.project_id}): {listed}")
    dead = unreachable(urls)
    if dead:
        print(f"unavailable: no health answer from {'; '.join(dead)}: check BASE_URL or the stack outputs, "
              "and that the stack is deployed", file=sys.stderr)
        return EXIT_UNAVAILABLE
    deployer = deployer_credentials()
    if not deployer:
        say("no deployer credentials (Application Default Credentials): the test user signs up with a "
            "password as the app does, Firestore is read only as that user, secrets come only from the "
            "environment (not Secret Manager)")
    try:
        target = deployed_target(config, urls, os.environ, test_inbox=options.test_inbox, deployer=deployer,
                                 say=say)
    except SmokeRefused as error:
        print(f"refused: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except SmokeUnavailable as error:
        print(f"unavailable: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    from tools.ops.deployed import DeployedStack

    stack = DeployedStack(target)
    try:
        return smoke_deployed(stack, say)
    finally:
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
