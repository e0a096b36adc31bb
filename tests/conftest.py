"""Test-suite fixtures: an isolated yolobench home (store + datasets) and a network guard."""

from __future__ import annotations

import contextlib
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


def _is_loopback_host(host) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port): this machine's own addresses
    host = host.decode() if isinstance(host, bytes) else str(host)
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost",)


@contextlib.contextmanager
def network_guard(monkeypatch):
    """Within the block, a connect to a non-loopback address or a name lookup (DNS) of any host but this
    machine's raises NetworkAttempt; yields the list of attempts. A lookup is guarded too: a library that
    catches the connect's failure has still asked a DNS server for a name (ultralytics' is_url does)."""
    attempts: list = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo
    real_gethostbyname = socket.gethostbyname
    real_gethostbyname_ex = socket.gethostbyname_ex

    def refuse(what):
        attempts.append(what)
        raise NetworkAttempt(f"network access attempted: {what!r}")

    def guard(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            refuse(address)
        return real_connect(self, address)

    def guard_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            refuse(address)
        return real_connect_ex(self, address)

    def guard_getaddrinfo(host, *args, **kwargs):
        if not _is_loopback_host(host):
            refuse(("getaddrinfo", host))
        return real_getaddrinfo(host, *args, **kwargs)

    def guard_gethostbyname(host):
        if not _is_loopback_host(host):
            refuse(("gethostbyname", host))
        return real_gethostbyname(host)

    def guard_gethostbyname_ex(host):
        if not _is_loopback_host(host):
            refuse(("gethostbyname_ex", host))
        return real_gethostbyname_ex(host)

    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setattr(socket.socket, "connect_ex", guard_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guard_getaddrinfo)
    monkeypatch.setattr(socket, "gethostbyname", guard_gethostbyname)
    monkeypatch.setattr(socket, "gethostbyname_ex", guard_gethostbyname_ex)
    yield attempts


@pytest.fixture
def no_network(monkeypatch):
    """Fail any socket connect to a non-loopback address and any name lookup (DNS) of another host;
    records every attempt."""
    with network_guard(monkeypatch) as attempts:
        yield attempts
