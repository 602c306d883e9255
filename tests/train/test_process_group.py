"""The process group's rendezvous on one machine listens on loopback only (``train/process_group.py``)."""

from __future__ import annotations

import ipaddress
import json
import os

import psutil
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gnndist.train.process_group import free_loopback_port, join_loopback_group


def _member(rank: int, world: int, port: int, out: str) -> None:
    join_loopback_group("gloo", rank, world, port, timeout_s=60)
    total = torch.tensor([rank + 1.0])
    dist.all_reduce(total)
    mine = psutil.Process(os.getpid())
    listening = [(c.laddr.ip, c.laddr.port) for c in mine.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN]
    with open(f"{out}.{rank}", "w") as f:
        json.dump({"sum": total.item(), "listening": listening}, f)
    dist.barrier()
    os._exit(0)  # as ddp_gradients: no teardown of gloo's threads, nothing left to clean


def test_every_rank_joins_through_a_store_that_listens_on_loopback_only(tmp_path):
    world, port = 3, free_loopback_port()
    mp.spawn(_member, nprocs=world, args=(world, port, str(tmp_path / "rank")))
    ranks = [json.loads((tmp_path / f"rank.{r}").read_text()) for r in range(world)]
    assert [r["sum"] for r in ranks] == [6.0] * world  # the group is whole: 1 + 2 + 3 everywhere
    store = [(ip, p) for ip, p in ranks[0]["listening"] if p == port]
    assert store == [("127.0.0.1", port)], ranks[0]["listening"]
    for r in ranks:
        exposed = [(ip, p) for ip, p in r["listening"] if not ipaddress.ip_address(ip.split("%")[0]).is_loopback]
        assert not exposed, exposed
