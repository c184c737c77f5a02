"""The Launch Ready policies as plain objects, importable without starting the pack's gRPC server."""

from pulumi_policy import Policy

from . import email, environment, exceptions, reliability, security

PACK_NAME = "launch-ready"

POLICIES: tuple[Policy, ...] = (
    *security.POLICIES,
    *reliability.POLICIES,
    *environment.POLICIES,
    *email.POLICIES,
    *exceptions.POLICIES,
)
