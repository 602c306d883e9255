"""A local Ray instance (``init_ray`` without an address) is reachable from this machine only."""

from __future__ import annotations

import ipaddress
import os

import psutil
import ray
from ray._private.authentication.authentication_utils import is_token_auth_enabled


@ray.remote(num_cpus=0)
class _Pid:
    def pid(self) -> int:
        return os.getpid()


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    # gRPC may bind 127.0.0.1 on an IPv6 socket, which lists it as ::ffff:127.0.0.1.
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _listening(pids: set[int]) -> list[tuple[int, str, str, int]]:
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


def test_every_listening_socket_of_a_local_instance_is_on_loopback(ray_session):
    actor = _Pid.remote()
    actor_pid = ray.get(actor.pid.remote())
    try:
        # ray.init started the GCS and the raylet; the raylet starts the agents and every worker.
        driver = psutil.Process()
        session = {driver.pid} | {p.pid for p in driver.children(recursive=True)}
        listening = _listening(session)
        listeners = {pid for pid, *_ in listening}
        names = {name for _, name, *_ in listening}
        # The check covers the processes the issue found listening on every interface.
        assert {driver.pid, actor_pid} <= listeners, listening
        assert {"gcs_server", "raylet"} <= names and any("RuntimeEnvAgent" in n for n in names), listening
        exposed = [s for s in listening if not _is_loopback(s[2])]
        assert not exposed, f"listening beyond loopback (pid, process, ip, port): {exposed}"
        assert ipaddress.ip_address(ray.util.get_node_ip_address()).is_loopback
        assert is_token_auth_enabled()  # loopback is added to token authentication, not instead of it
    finally:
        ray.kill(actor)
