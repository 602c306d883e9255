"""Listening sockets of live processes, for the tests that check what a run exposes."""

from __future__ import annotations

import ipaddress

import psutil


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    # gRPC may bind 127.0.0.1 on an IPv6 socket, which lists it as ::ffff:127.0.0.1.
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def listening(pids: set[int]) -> list[tuple[int, str, str, int]]:
    """``(pid, process name, ip, port)`` of every listening TCP socket of ``pids``."""
    found = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            try:
                name = psutil.Process(conn.pid).name()
            except psutil.NoSuchProcess:  # exited since the listing; its socket is gone with it
                continue
            found.append((conn.pid, name, conn.laddr.ip, conn.laddr.port))
    return found
