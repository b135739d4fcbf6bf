"""Writers (and readers, for round trips) of printable meshes and beam graphs.

Every writer is atomic: it writes a temporary file next to the target and renames it.
"""

from .atomic import atomic_path
from .graph_json import read_graph_csv, read_graph_json, write_graph_csv, write_graph_json
from .printable import SOLID_FILES, PrintableOutputs, control_point_data, write_printable, write_solid_outputs
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
    "PrintableOutputs",
    "write_printable",
    "write_solid_outputs",
    "control_point_data",
    "SOLID_FILES",
]
