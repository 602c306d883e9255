"""The workers' torch process group, with its rendezvous on loopback when the run is on one machine.

Ray Train's ``TorchConfig`` has rank 0 start torch's ``TCPStore`` (the rendezvous every rank
joins) on a free port, and both of torch's store backends bind every interface (``::``) whatever
host they are given. On a local instance, where every other listener of the run is on 127.0.0.1
(``runtime/cluster.py``), that store was the one socket other machines could reach. So where rank
0's node address is loopback, :class:`LoopbackTorchConfig` builds the store on a socket of our own
bound to 127.0.0.1 (``TCPStore(master_listen_fd=...)``) and joins the group through it; on a
cluster it does what Ray Train does.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from datetime import timedelta

import ray
import torch.distributed as dist
from ray.train._internal.utils import get_address_and_port
from ray.train.torch.config import TorchConfig, _set_torch_distributed_env_vars, _TorchBackend

LOOPBACK = "127.0.0.1"


def free_loopback_port() -> int:
    """A port free on 127.0.0.1 now (as Ray Train picks its port: another process could take it
    before the store binds it, a window of milliseconds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def join_loopback_group(backend: str, rank: int, world_size: int, port: int, timeout_s: float) -> None:
    """Join the process group of ``world_size`` ranks whose store rank 0 serves on 127.0.0.1:``port``."""
    timeout = timedelta(seconds=timeout_s)
    if backend == "nccl":
        # As Ray Train does: a timed-out NCCL collective then fails instead of hanging.
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
    if rank == 0:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, port))
        listener.listen()
        # detach(): the store owns the descriptor from now on; Python must not close it.
        store = dist.TCPStore(LOOPBACK, port, world_size, is_master=True, timeout=timeout,
                              wait_for_workers=False, master_listen_fd=listener.detach())
    else:
        store = dist.TCPStore(LOOPBACK, port, world_size, is_master=False, timeout=timeout)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=timeout)


class _LoopbackTorchBackend(_TorchBackend):
    def on_start(self, worker_group, backend_config: TorchConfig) -> None:
        address, _ = worker_group.execute_single(0, get_address_and_port)
        if not ipaddress.ip_address(address).is_loopback:
            super().on_start(worker_group, backend_config)
            return
        port = worker_group.execute_single(0, free_loopback_port)
        worker_group.execute(_set_torch_distributed_env_vars)  # LOCAL_RANK and the rest, as Ray Train sets them
        world = len(worker_group)
        ray.get([worker_group.execute_single_async(rank, join_loopback_group, backend_config.backend, rank, world,
                                                   port, backend_config.timeout_s) for rank in range(world)])


@dataclass
class LoopbackTorchConfig(TorchConfig):
    """Ray Train's ``TorchConfig``, with the rendezvous on 127.0.0.1 when rank 0's node is loopback."""

    @property
    def backend_cls(self):
        return _LoopbackTorchBackend
