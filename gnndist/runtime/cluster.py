"""Joining or starting Ray: the only place that calls ``ray.init``."""

from __future__ import annotations

import ray


def init_ray(*, address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to the cluster at ``address``, or start a local instance bound to 127.0.0.1.

    A local instance gets ``num_cpus`` CPUs and no dashboard. Calling it again is a no-op.
    """
    if ray.is_initialized():
        return
    if address is not None:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)


def shutdown_ray() -> None:
    ray.shutdown()
