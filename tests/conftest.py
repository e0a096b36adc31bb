"""Test-suite fixtures: an isolated yolobench home (store + datasets) and a network guard."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest


@pytest.fixture(scope="module")
def tiny_home(tmp_path_factory):
    """A private YOLOBENCH_HOME for tests that build with the `tiny` profile (never the user's cache).

    Module-scoped on purpose: the variable is restored when the module ends, so later modules (the
    parity tests, which use the real store) never see it.
    """
    home = tmp_path_factory.mktemp("yolobench-home")
    previous = os.environ.get("YOLOBENCH_HOME"), os.environ.get("YOLOBENCH_STORE")
    os.environ["YOLOBENCH_HOME"] = str(home)
    os.environ.pop("YOLOBENCH_STORE", None)
    yield home
    for key, value in zip(("YOLOBENCH_HOME", "YOLOBENCH_STORE"), previous):
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class NetworkAttempt(AssertionError):
    """Raised when code under test tries to reach a non-loopback address."""


def _is_loopback(address) -> bool:
    if isinstance(address, (bytes, str)) and not isinstance(address, tuple):
        return True  # AF_UNIX path
    host = address[0]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost",)


@pytest.fixture
def no_network(monkeypatch):
    """Fail any socket connect to a non-loopback address; records every attempt."""
    attempts: list = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guard(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            attempts.append(address)
            raise NetworkAttempt(f"network connection attempted to {address!r}")
        return real_connect(self, address)

    def guard_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            attempts.append(address)
            raise NetworkAttempt(f"network connection attempted to {address!r}")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setattr(socket.socket, "connect_ex", guard_ex)
    return attempts
