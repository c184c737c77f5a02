"""Firestore document events as Eventarc delivers them: an HTTP POST carrying a CloudEvent (binary or
structured mode) whose subject names the document (`documents/users/<uid>`).

Only a CloudEvent is accepted (anything else is a 400 before anything is read or written), and only a
subject naming one `users/{uid}` document yields a uid.
"""

import re

import flask
from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_http

from launchready.platform.web import HttpError

# https://cloud.google.com/firestore/docs/extend-with-functions-2nd-gen#event_types
CREATED = "google.cloud.firestore.document.v1.created"
DELETED = "google.cloud.firestore.document.v1.deleted"
# Firestore ids are at most 1,500 bytes and never contain "/"; Auth uids are at most 128 characters.
_USER_SUBJECT = re.compile(r"^documents/users/([^/]{1,128})$")


def cloud_event(request: flask.Request) -> CloudEvent:
    """The request's CloudEvent. Raises HttpError 400 `invalid_cloud_event` for anything else."""
    try:
        return from_http(dict(request.headers), request.get_data())
    except GenericException as exc:
        raise HttpError(400, "invalid_cloud_event", f"not a CloudEvent: {exc}") from exc


def uid_from_subject(subject: str | None) -> str | None:
    """The uid of a `documents/users/<uid>` subject; None for any other document."""
    match = _USER_SUBJECT.match(subject or "")
    return match.group(1) if match else None
