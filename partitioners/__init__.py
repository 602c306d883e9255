"""Graph partitioners: decide which part owns each node (see :mod:`partitioners.base`).

Methods, chosen by ``PartitionConfig.method``: ``metis`` (minimum edge cut, multi-constraint
balance), ``random`` (hash of node id and seed) and ``streaming`` (LDG over chunked in-edges,
bounded memory). Every method honours ``PartitionConfig.weights`` (heterogeneous part
capacities), so there is no separate "weighted" method.
"""

from __future__ import annotations

from types import MappingProxyType

from gnndist.config import PartitionConfig

from .base import Partitioner, PartitionError, part_targets
from .metis import MetisPartitioner
from .random import RandomPartitioner
from .streaming import StreamingPartitioner

#: Method name (``PartitionConfig.method``) -> partitioner class. Read-only.
REGISTRY = MappingProxyType({
    "metis": MetisPartitioner,
    "random": RandomPartitioner,
    "streaming": StreamingPartitioner,
})


def make_partitioner(config: PartitionConfig) -> Partitioner:
    """The partitioner for ``config.method``, configured by ``config``."""
    try:
        cls = REGISTRY[config.method]
    except KeyError:
        raise PartitionError(f"partition method {config.method!r} is unknown: choose one of "
                             f"{sorted(REGISTRY)}") from None
    return cls(config)


__all__ = ["REGISTRY", "MetisPartitioner", "PartitionError", "Partitioner", "RandomPartitioner",
           "StreamingPartitioner", "make_partitioner", "part_targets"]
