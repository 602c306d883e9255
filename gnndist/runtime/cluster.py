"""Joining or starting Ray: the only place that calls ``ray.init``."""

from __future__ import annotations

import ipaddress
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import ray
from ray._private import ray_constants


def init_ray(*, address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to the cluster at ``address``, or start a local instance reachable from this machine only.

    A local instance gets ``num_cpus`` CPUs and no dashboard, and every process of it (GCS, raylet,
    agents, workers, this driver) listens on the loopback address alone; Ray's token
    authentication stays as Ray sets it. Calling it again is a no-op.
    """
    if ray.is_initialized():
        return
    if address is not None:
        with _keeping_sigterm_handler():
            ray.init(address=address, log_to_driver=False)
        return
    with _single_machine_ray(), _keeping_sigterm_handler():
        # "local": a new instance even where `ray start` left its address in /tmp/ray (Ray would join that).
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 log_to_driver=False)
    node_ip = ray.util.get_node_ip_address()
    if not ipaddress.ip_address(node_ip).is_loopback:
        ray.shutdown()
        raise RuntimeError(
            f"Ray {ray.__version__} started the local instance on {node_ip}, not on loopback, where other "
            "machines could reach it, so it was shut down. Ray 2.60 keeps it on loopback: install that "
            "version (pip install 'ray[train]==2.60.*')."
        )


@contextmanager
def _single_machine_ray() -> Iterator[None]:
    """Ray's single-machine mode, in this process, while ``ray.init`` starts a local instance.

    The node's address decides where everything listens: Ray's gRPC servers bind loopback when it
    is loopback, and all interfaces otherwise. But on Linux ``ray.init`` replaces a loopback
    ``_node_ip_address`` with this machine's outward address, unless Ray's cluster support is
    off, as it is by default on macOS and Windows (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``). Ray
    reads that variable once, when it is imported, so the flag it sets is switched here instead,
    and back afterwards: only the start-up reads it, and nothing leaks into the user's process.
    The processes started get the node's address on their command lines.
    """
    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


@contextmanager
def _keeping_sigterm_handler() -> Iterator[None]:
    """Keep a SIGTERM handler the caller installed across ``ray.init``, which replaces it with
    ``sys.exit(15)``: ``gnndist train`` stops its workers and servers on SIGTERM and exits 143, and
    Ray's handler would skip that. A SIGTERM that arrives while ``ray.init`` runs ends it in Ray's
    ``SystemExit(15)``, which is handed to the caller's handler instead. Without a handler of the
    caller's, Ray's stays."""
    in_main = threading.current_thread() is threading.main_thread()
    caller = signal.getsignal(signal.SIGTERM) if in_main else None
    if not callable(caller):  # none of the caller's (the default, or set outside Python)
        yield
        return
    try:
        yield
    except SystemExit as e:
        if e.code != signal.SIGTERM:
            raise
        ray.shutdown()  # whatever of the instance had started
        caller(signal.SIGTERM, None)
        raise
    finally:
        signal.signal(signal.SIGTERM, caller)


def shutdown_ray() -> None:
    ray.shutdown()


def worker_room(cpus_per_worker: float, gpus_per_worker: float) -> tuple[int, list[tuple[str, float, float]]]:
    """How many workers reserving ``cpus_per_worker`` CPUs and ``gpus_per_worker`` GPUs each the
    Ray cluster holds, all of its resources counted (running workers' included), and for each
    kind a worker needs: ``(kind, each, the cluster's total)``."""
    resources = ray.cluster_resources()
    needs = [(kind, each, resources.get(kind, 0.0))
             for kind, each in (("CPU", cpus_per_worker), ("GPU", gpus_per_worker)) if each > 0]
    return min(int(have // each) for _, each, have in needs), needs

