"""What a function needs from the catalog, as the environment variables its code reads
(functions_src/launchready/platform/config.py), for the Pulumi program and the local runner alike.

Each function receives only facts of its own entry or of the triggers it has, so a change to another
function's catalog entry never changes its deployment. Standard library only (the local runner imports
it without Pulumi).
"""

from __future__ import annotations

from components.catalog import Catalog, FunctionSpec

TIMEOUT_SECONDS = "LAUNCHREADY_TIMEOUT_SECONDS"
PUBLISHES = "LAUNCHREADY_PUBLISHES"
MAX_DELIVERY_ATTEMPTS = "LAUNCHREADY_MAX_DELIVERY_ATTEMPTS"
MAX_BACKOFF_SECONDS = "LAUNCHREADY_MAX_BACKOFF_SECONDS"
FUNCTIONS = "LAUNCHREADY_FUNCTIONS"
# Eventarc redelivers a failed Firestore event with its Pub/Sub transport's default backoff, "up to a
# maximum of 600 seconds" (https://cloud.google.com/eventarc/docs/retry-events); the program does not
# change that subscription.
EVENTARC_MAX_BACKOFF_SECONDS = 600
# The function that shows every other one (its health table) and replays dead letters.
CONSOLE = "ops_console"
# The Firebase web app's apiKey (launchready:firebaseWebApiKey), which the console's sign-in form posts to
# Identity Toolkit's accounts:signInWithPassword. Public by design: it is in every Firebase client config
# (https://firebase.google.com/docs/projects/api-keys), so it is a plain setting of the console alone.
WEB_API_KEY_SETTING = "launchready:firebaseWebApiKey"
WEB_API_KEY_VARIABLE = "FIREBASE_WEB_API_KEY"
# The functions' source archives live in the bucket <project id><suffix>.
SOURCE_BUCKET_SUFFIX = "-functions-source"


def catalog_environment(catalog: Catalog, spec: FunctionSpec) -> dict[str, str]:
    """The catalog's facts `spec` uses, by variable name (values are strings, lists comma-separated)."""
    env = {TIMEOUT_SECONDS: str(spec.limits.timeout_seconds)}
    if spec.publishes:
        env[PUBLISHES] = ",".join(spec.publishes)
    if spec.trigger.type == "pubsub":
        env[MAX_DELIVERY_ATTEMPTS] = str(catalog.push_subscription.max_delivery_attempts)
        env[MAX_BACKOFF_SECONDS] = str(catalog.push_subscription.max_backoff_seconds)
    elif spec.trigger.type == "firestore":
        env[MAX_BACKOFF_SECONDS] = str(EVENTARC_MAX_BACKOFF_SECONDS)
    if spec.name == CONSOLE:
        env[FUNCTIONS] = ",".join(function.name for function in catalog.functions)
    return env
