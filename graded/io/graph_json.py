"""The beam graph as JSON (nodes, struts, diameters, meta) and as a flat strut CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from ..graph import LatticeGraph
from ..validation import fail
from .atomic import atomic_path, check_suffix

__all__ = ["GRAPH_FORMAT", "write_graph_json", "read_graph_json", "write_graph_csv", "read_graph_csv"]

#: ``format`` tag of the JSON file; bump ``format_version`` on incompatible changes.
GRAPH_FORMAT = "graded-lattice-graph"
CSV_COLUMNS = ("strut", "node0", "node1", "x0", "y0", "z0", "x1", "y1", "z1", "diameter")


def write_graph_json(path, graph: LatticeGraph) -> Path:
    """Write ``{"format", "format_version", "units": "mm", "nodes", "struts", "diameters", "meta"}``.

    Floats are written with full (round-trip) precision.
    """
    path = check_suffix(path, (".json",))
    doc = {
        "format": GRAPH_FORMAT,
        "format_version": 1,
        "units": "mm",
        "n_nodes": graph.n_nodes,
        "n_struts": graph.n_struts,
        "nodes": graph.nodes.tolist(),
        "struts": graph.struts.tolist(),
        "diameters": graph.diameters.tolist(),
        "meta": graph.meta,
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, default=_jsonable) + "\n")
    return path


def _jsonable(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def read_graph_json(path) -> LatticeGraph:
    """Read a graph written by :func:`write_graph_json`."""
    doc = json.loads(Path(path).read_text())
    if doc.get("format") != GRAPH_FORMAT:
        fail("path", f"{path} is not a {GRAPH_FORMAT} file (format={doc.get('format')!r})",
             "give a file written by write_graph_json")
    return LatticeGraph(
        np.asarray(doc["nodes"], dtype=np.float64).reshape(-1, 3),
        np.asarray(doc["struts"], dtype=np.int64).reshape(-1, 2),
        np.asarray(doc["diameters"], dtype=np.float64),
        doc.get("meta", {}),
    )


def write_graph_csv(path, graph: LatticeGraph) -> Path:
    """One row per strut: ``strut,node0,node1,x0,y0,z0,x1,y1,z1,diameter`` (mm, 17 digits)."""
    path = check_suffix(path, (".csv",))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    p = graph.nodes[graph.struts[:, 0]]
    q = graph.nodes[graph.struts[:, 1]]
    for k in range(graph.n_struts):
        w.writerow(
            [k, int(graph.struts[k, 0]), int(graph.struts[k, 1])]
            + [repr(float(x)) for x in (*p[k], *q[k], graph.diameters[k])]
        )
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())
    return path


def read_graph_csv(path) -> LatticeGraph:
    """Read a strut CSV written by :func:`write_graph_csv` (nodes rebuilt from the node ids)."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or tuple(rows[0]) != CSV_COLUMNS:
        fail("path", f"{path} has no {','.join(CSV_COLUMNS)} header", "give a file written by write_graph_csv")
    data = np.asarray(rows[1:], dtype=np.float64).reshape(-1, len(CSV_COLUMNS))
    struts = data[:, 1:3].astype(np.int64)
    n = int(struts.max()) + 1 if len(struts) else 0
    nodes = np.full((n, 3), np.nan)
    nodes[struts[:, 0]] = data[:, 3:6]
    nodes[struts[:, 1]] = data[:, 6:9]
    if np.isnan(nodes).any():
        fail("path", f"{path} leaves some node ids without coordinates", "node ids must be 0..N-1, all used")
    return LatticeGraph(nodes, struts, data[:, 9])
