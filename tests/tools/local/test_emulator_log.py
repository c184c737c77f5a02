"""The Firestore emulator's output as the local stack logs it: expected already-exists creates as one
line each, the Java 21 start-up warning as a note, everything else unchanged."""

from __future__ import annotations

from pathlib import Path

from tools.local.emulator_log import JAVA_NOTE, filtered

# A trace as the emulator (gcloud 528.0.0) writes it, shortened.
TRACE = (Path(__file__).parent / "firestore_already_exists.txt").read_text().splitlines()


def test_an_already_exists_trace_becomes_one_line_naming_the_document() -> None:
    lines = list(filtered(["[firestore] Dev App Server is now running.", *TRACE, "[firestore] INFO: next"]))

    assert lines == [
        "[firestore] Dev App Server is now running.",
        "[firestore] create refused, the document already exists (expected: a ledger claim of a duplicate, "
        "or a replay): /events/stripe:evt_1",
        "[firestore] INFO: next",
    ]


def test_any_other_error_is_kept_with_its_trace() -> None:
    other = [
        TRACE[0],
        "[firestore] WARNING: Operation failed: Invalid query: composite index required",
        "[firestore] com.google.cloud.datastore.core.exception.DatastoreException: index",
        "[firestore] \tat com.google.cloud.datastore.Foo.bar(Foo.java:1)",
    ]

    assert list(filtered(other)) == other


def test_the_java_21_warning_becomes_a_note() -> None:
    warning = (
        "WARNING: Cloud Firestore Emulator support for Java JRE version 11 will be dropped after gcloud "
        "command-line tool release 528.0.0. Please upgrade to Java JRE version 21 or higher to continue "
        "using the latest Cloud Firestore Emulator."
    )

    assert list(filtered([warning, "Executing: cloud_firestore_emulator start"])) == [
        JAVA_NOTE, "Executing: cloud_firestore_emulator start"]
