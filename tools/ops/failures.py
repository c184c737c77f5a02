"""One line that says what to do when a command acting on Google Cloud fails outside its control: no or
unusable credentials, missing permission, an unknown project, an unreachable service (exit ENVIRONMENT).

`explain` returns None for anything else, so the caller re-raises it: a bug keeps its traceback.
"""

from __future__ import annotations

import os

from google.api_core import exceptions as api
from google.auth import exceptions as auth

LOGIN = "run `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS to a key file)"


def explain(
    exc: BaseException, *, project: str | None, needs: str, service: str = "Google Cloud"
) -> str | None:
    """The one-line explanation of `exc`, or None when it is not an environment problem.

    `needs` names the IAM role(s) the command needs on `project`; `service` names what was being called.
    """
    where = f"project {project}" if project else "the project"
    if isinstance(exc, auth.DefaultCredentialsError):
        key_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if key_file and not os.path.isfile(key_file):
            return (f"GOOGLE_APPLICATION_CREDENTIALS points to {key_file}, which does not exist: fix the "
                    "path, or unset it and run `gcloud auth application-default login`")
        return f"no Google Cloud credentials found: {LOGIN}, then retry"
    if isinstance(exc, (auth.RefreshError, api.Unauthenticated)):
        return f"the Google Cloud credentials were refused or have expired: {LOGIN}, then retry"
    if isinstance(exc, api.PermissionDenied):
        return (f"permission denied on {where} (or it does not exist): check the project id, and that your "
                f"account has {needs} on it")
    if isinstance(exc, api.NotFound) and "project" in str(exc.message).lower():
        return f"{where} was not found: check the project id (`gcloud projects list` shows yours)"
    if isinstance(exc, api.RetryError) and exc.cause is not None:
        inner = explain(exc.cause, project=project, needs=needs, service=service)
        if inner is not None:
            return inner
    if isinstance(exc, (api.ServiceUnavailable, api.DeadlineExceeded, api.RetryError, auth.TransportError,
                        ConnectionError, TimeoutError)):
        host = os.environ.get("PUBSUB_EMULATOR_HOST") if service == "Pub/Sub" else None
        target = f"the {service} emulator at {host}" if host else service
        return f"cannot reach {target}: check the network connection (and that it is running), then retry"
    return None
