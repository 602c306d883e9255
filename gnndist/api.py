"""The Python API behind the command line: each function is one job."""

from __future__ import annotations

from pathlib import Path

from gnndist.config import PartitionConfig, SourceConfig
from gnndist.graph import Graph
from gnndist.progress import QuietReporter, Reporter


def load(source: SourceConfig | Graph, reporter: Reporter | None = None) -> Graph:
    """A graph from a source config (or the graph itself, passed through)."""
    if isinstance(source, Graph):
        return source
    from gnndist.sources import load_graph

    return load_graph(source, reporter=reporter or QuietReporter())


def partition(source: SourceConfig | Graph, config: PartitionConfig, out: str | Path, *,
              force: bool = False, reporter: Reporter | None = None) -> Path:
    """Partition a graph and write the partition directory ``out``; returns its path.

    ``out`` must not exist unless ``force`` (and then it must be a partition directory): checked
    first, so a refused ``out`` is found out before the graph is loaded and partitioned.
    """
    from gnndist.partition.format import check_destination
    from partitioners import make_partitioner
    from partitioners.writer import write_partitions

    check_destination(Path(out), force)
    reporter = reporter or QuietReporter()
    graph = load(source, reporter)
    assignment = make_partitioner(config).assign(graph, reporter=reporter)
    return write_partitions(graph, assignment, config, out, force=force, reporter=reporter)
