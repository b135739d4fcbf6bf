"""Writers (and readers, for round trips) of printable meshes and beam graphs.

Every writer is atomic: it writes a temporary file next to the target and renames it.
The outputs of a build are listed in :data:`graded.io.writers.WRITERS`; a build writes
them into a staging folder swapped in whole (:mod:`graded.io.staging`).
"""

from .atomic import atomic_path
from .graph_json import read_graph_csv, read_graph_json, write_graph_csv, write_graph_json
from .stl import read_stl, write_stl
from .threemf import ThreeMFObject, read_3mf, write_3mf
from .vtu import read_vtu, write_vtu

__all__ = [
    "atomic_path",
    "write_stl",
    "read_stl",
    "write_3mf",
    "read_3mf",
    "ThreeMFObject",
    "write_vtu",
    "read_vtu",
    "write_graph_json",
    "read_graph_json",
    "write_graph_csv",
    "read_graph_csv",
]
