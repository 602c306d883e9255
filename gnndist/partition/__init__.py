"""The on-disk partition format and its in-memory views."""

from gnndist.partition.book import PartitionBook
from gnndist.partition.format import PartArrays, PartitionFormatError, load_part, read_manifest

__all__ = ["PartArrays", "PartitionBook", "PartitionFormatError", "load_part", "read_manifest"]
