"""Convert the Planetoid Cora raw files into the bundled ``cora.npz`` (run once, by hand).

    .venv/bin/python datasets/cora/convert.py [RAW_PARENT]   # default /work/shared/datasets/planetoid/Cora

Reads ``RAW_PARENT/raw/ind.cora.*`` with gnndist's Planetoid loader (safe unpickler) and writes
``cora.npz`` beside this script in the gnn-benchmark layout (CSR adjacency, CSR features,
labels) plus the public Planetoid split as ``train_mask/val_mask/test_mask``; no object arrays.
Prints the file's sha256 for README.md.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from gnndist.config import SourceConfig
from gnndist.sources.planetoid import load_planetoid


def main(raw_parent: Path) -> None:
    graph = load_planetoid(raw_parent, SourceConfig(dataset=str(raw_parent)))
    n = graph.num_nodes
    src, dst = graph.edge_index().numpy()
    adj = sp.csr_matrix((np.ones(src.size, dtype=np.float32), (src, dst)), shape=(n, n))
    adj.sort_indices()
    attr = sp.csr_matrix(graph.x.numpy())
    out = Path(__file__).with_name("cora.npz")
    np.savez_compressed(
        out,
        adj_data=adj.data, adj_indices=adj.indices.astype(np.int32), adj_indptr=adj.indptr.astype(np.int32),
        adj_shape=np.array(adj.shape, dtype=np.int64),
        attr_data=attr.data.astype(np.float32), attr_indices=attr.indices.astype(np.int32),
        attr_indptr=attr.indptr.astype(np.int32), attr_shape=np.array(attr.shape, dtype=np.int64),
        labels=graph.y.numpy().astype(np.int32),
        train_mask=graph.train_mask.numpy(), val_mask=graph.val_mask.numpy(), test_mask=graph.test_mask.numpy(),
    )
    print(out, hashlib.sha256(out.read_bytes()).hexdigest())


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/datasets/planetoid/Cora"))
