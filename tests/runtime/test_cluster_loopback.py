"""A local Ray instance (``init_ray`` without an address) is reachable from this machine only."""

from __future__ import annotations

import ipaddress
import os

import psutil
import ray
from listening import is_loopback, listening
from ray._private.authentication.authentication_utils import is_token_auth_enabled


@ray.remote(num_cpus=0)
class _Pid:
    def pid(self) -> int:
        return os.getpid()


def test_every_listening_socket_of_a_local_instance_is_on_loopback(ray_session):
    actor = _Pid.remote()
    actor_pid = ray.get(actor.pid.remote())
    try:
        # ray.init started the GCS and the raylet; the raylet starts the agents and every worker.
        driver = psutil.Process()
        session = {driver.pid} | {p.pid for p in driver.children(recursive=True)}
        found = listening(session)
        listeners = {pid for pid, *_ in found}
        names = {name for _, name, *_ in found}
        # The check covers the processes the issue found listening on every interface.
        assert {driver.pid, actor_pid} <= listeners, found
        assert {"gcs_server", "raylet"} <= names and any("RuntimeEnvAgent" in n for n in names), found
        exposed = [s for s in found if not is_loopback(s[2])]
        assert not exposed, f"listening beyond loopback (pid, process, ip, port): {exposed}"
        assert ipaddress.ip_address(ray.util.get_node_ip_address()).is_loopback
        assert is_token_auth_enabled()  # loopback is added to token authentication, not instead of it
    finally:
        ray.kill(actor)
