"""Joining or starting Ray: the only place that calls ``ray.init``."""

from __future__ import annotations

import ipaddress
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import ray
from ray._private import ray_constants

log = logging.getLogger(__name__)


def init_ray(*, address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to the cluster at ``address``, or start a local instance reachable from this machine only.

    A local instance gets ``num_cpus`` CPUs and no dashboard, and every process of it (GCS, raylet,
    agents, workers, this driver) listens on the loopback address alone; Ray's token
    authentication stays as Ray sets it (on, for a new local instance), and the notice Ray prints
    about it on every start is left out (see :func:`_without_token_notice`). Connecting to a
    cluster says once what its token authentication means for it. Calling it again is a no-op.
    """
    if ray.is_initialized():
        return
    if address is not None:
        with _keeping_sigterm_handler(), _without_token_notice():
            ray.init(address=address, log_to_driver=False)
        _say_token_auth(address)
        return
    with _single_machine_ray(), _keeping_sigterm_handler(), _without_token_notice():
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


#: Where Ray 2.60 logs its token-authentication notices.
_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"
#: The start of the notice ``ray.init`` logs as a warning each time it turns token authentication
#: on by default (for a new local instance, or on joining ``"auto"`` with a token file at hand).
_TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster"


class _DropTokenNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_TOKEN_NOTICE)


@contextmanager
def _without_token_notice() -> Iterator[None]:
    """Leave out Ray's token notice (:data:`_TOKEN_NOTICE`) while ``ray.init`` runs in here.

    Safe, because it announces a protection and asks nothing of the user: token authentication
    stays on. For a local instance, which listens on loopback alone, it protects against other
    users of this machine; nothing outside it can reach the instance either way. A cluster's mode
    is said by :func:`_say_token_auth` instead, in terms of the cluster joined. Setting
    ``RAY_AUTH_MODE=token`` ourselves would silence it too, but Ray reads that variable into a
    configuration it caches at first use: had anything in this process read it before, the
    instance's processes would require a token this driver does not send, and it would fail to
    reach its own instance. Only this one message is dropped, and only meanwhile: the filter is
    removed afterwards.
    """
    logger = logging.getLogger(_TOKEN_LOGGER)
    notice = _DropTokenNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def _say_token_auth(address: str) -> None:
    """One line on what token authentication means for the cluster at ``address`` just joined."""
    from ray._private.authentication.authentication_utils import is_token_auth_enabled

    if is_token_auth_enabled():
        log.warning(f"Ray token authentication is on for the cluster at {address}: this driver presented the "
                    "token of RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token, which every node of the "
                    "cluster must share")
    else:
        log.warning(f"Ray token authentication is off for the cluster at {address}: whoever reaches its ports "
                    "can run code on it. Keep them behind a firewall, or turn it on (RAY_AUTH_MODE=token and a "
                    "shared token on every node and for the driver: see the README, 'Running on a Ray cluster')")


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

