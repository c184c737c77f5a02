"""The stores' real client libraries, pointed at a base URL: the real store's, or the sandbox's locally.

The clients are the libraries' own, unchanged but for the URL they send to (docs/tools.md).
"""

from __future__ import annotations

from typing import Any

from appstoreserverlibrary.api_client import AppStoreServerAPIClient
from appstoreserverlibrary.models.Environment import Environment
from google.auth.credentials import Credentials
from googleapiclient.discovery import build

PLAY_SCOPE = "https://www.googleapis.com/auth/androidpublisher"


def app_store_api_client(signing_key: bytes, key_id: str, issuer_id: str, bundle_id: str,
                         environment: Environment, base_url: str = "") -> AppStoreServerAPIClient:
    """Apple's client for `environment` (Production or Sandbox; the library refuses Xcode). `base_url`
    replaces Apple's host, e.g. the sandbox's URL (Sandbox) or its URL + "/production" (Production).
    Raises AttributeError if the library no longer keeps its base URL in `_base_url`."""
    client = AppStoreServerAPIClient(signing_key, key_id, issuer_id, bundle_id, environment)
    if base_url:
        if not isinstance(getattr(client, "_base_url", None), str):
            raise AttributeError("app-store-server-library no longer keeps its base URL in _base_url; "
                                 "the App Store base-URL override needs updating")
        client._base_url = base_url.rstrip("/")
    return client


def play_developer_api(credentials: Credentials, base_url: str = "") -> Any:
    """The androidpublisher v3 service (googleapiclient Resource) with `credentials`; `base_url` replaces
    https://androidpublisher.googleapis.com/."""
    options = {"api_endpoint": base_url.rstrip("/") + "/"} if base_url else None
    return build("androidpublisher", "v3", credentials=credentials, static_discovery=True,
                 cache_discovery=False, client_options=options)
