"""Process-wide Google clients, created lazily once per instance (and emulator-aware through the
standard FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST and FIREBASE_AUTH_EMULATOR_HOST variables)."""

import functools

import firebase_admin
from google.cloud import firestore

from launchready.platform.config import settings


@functools.cache
def db() -> firestore.Client:
    return firestore.Client(project=settings().project_id)


@functools.cache
def firebase_app() -> firebase_admin.App:
    return firebase_admin.initialize_app(options={"projectId": settings().project_id})
