"""Shared fixtures for the tools tests: one provider sandbox over real HTTP on 127.0.0.1 per module."""

from collections.abc import Iterator

import pytest

from tools.sandbox import SandboxServer, start_sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[SandboxServer, str]]:
    server, url = start_sandbox()
    yield server, url
    server.stop()


@pytest.fixture
def url(sandbox: tuple[SandboxServer, str]) -> Iterator[str]:
    """The sandbox's base URL, with its state reset before and after the test."""
    server, base = sandbox
    server.sandbox.reset()
    yield base
    server.sandbox.reset()
