"""The table of a build's output files: spec name -> writer, file name, what it needs.

The spec (``outputs.files``), the CLI and the report all use :data:`WRITERS`; a writer
takes the :class:`graded.build.BuildResult` and the folder to write into and returns the
paths it wrote. The report comes last (it records every other file).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..spec import OUTPUT_FILES

__all__ = ["Writer", "WRITERS", "needs_solid"]


@dataclass(frozen=True)
class Writer:
    """One output of a build.

    Attributes
    ----------
    name : str
        Its name in ``outputs.files``.
    filename : str
        The file it writes (the report also writes PNG figures beside it).
    solid : bool
        Needs the meshed solid (the slow step).
    write : callable(result, folder: Path) -> dict of key -> Path
    description : str
    family : {"any", "truss"}
        The part families it applies to (the strut-graph files exist for trusses only).
    steps : bool
        ``write`` also takes ``progress=`` (``progress(done, total, message)``) and reports
        the files it writes one by one (the report and its figures).
    """

    name: str
    filename: str
    solid: bool
    write: Callable
    description: str
    family: str = "any"
    steps: bool = False


def _stl(result, folder: Path) -> dict:
    from .stl import write_stl

    solid = result.solid
    if solid.mesh is None:  # a tiled solid, already streamed to disk: moved into place
        return {"stl": solid.move_to(folder / "part.stl")}
    m = solid.mesh
    return {"stl": write_stl(folder / "part.stl", m.vertices, m.faces)}


def _arrays(solid):
    """(vertices, triangles) of the solid: the mesh, or a tiled solid welded from its file."""
    if solid.mesh is None:
        return solid.welded()
    return solid.mesh.vertices, solid.mesh.faces


def _3mf(result, folder: Path) -> dict:
    from .threemf import write_3mf, write_3mf_stream

    v, t = _arrays(result.solid)
    if result.solid.mesh is None:  # a tiled (big) solid: streamed, without lib3mf's model in memory
        return {"3mf": write_3mf_stream(folder / "part.3mf", v, t, name="part")}
    return {"3mf": write_3mf(folder / "part.3mf", v, t, name="part")}


def _beams(result, folder: Path) -> dict:
    from .threemf import write_3mf

    v, t = _arrays(result.solid)
    return {"beams": write_3mf(folder / "part_beams.3mf", v, t, graph=result.printed_graph, name="part")}


def _vtu(result, folder: Path) -> dict:
    from .vtu import write_vtu

    return {"vtu": write_vtu(folder / "graph.vtu", result.graph)}


def _json(result, folder: Path) -> dict:
    from .graph_json import write_graph_json

    return {"json": write_graph_json(folder / "graph.json", result.graph)}


def _csv(result, folder: Path) -> dict:
    from .graph_json import write_graph_csv

    return {"csv": write_graph_csv(folder / "graph.csv", result.graph)}


def _png(result, folder: Path) -> dict:
    from ..report import render_graph

    return {"png": render_graph(result.graph, folder / "graph.png", title=result.title)}


def _report(result, folder: Path, progress=None) -> dict:
    family = getattr(result, "family", "truss")
    if family == "spinodoid":
        from ..spinodoid.report import write_spinodoid_report

        return write_spinodoid_report(result, folder, progress=progress)
    if family == "voxel":
        from ..voxelcell.report import write_voxel_report

        return write_voxel_report(result, folder, progress=progress)
    from ..report import write_build_report

    return write_build_report(result, folder, progress=progress)


#: Every output of a build, in writing order (the report last: it lists the others).
WRITERS: dict[str, Writer] = {w.name: w for w in (
    Writer("stl", "part.stl", True, _stl, "the printable solid, binary STL (mm)"),
    Writer("3mf", "part.3mf", True, _3mf, "the printable solid, 3MF mesh (mm)"),
    Writer("beams", "part_beams.3mf", True, _beams, "3MF beam lattice, the solid as its representation", "truss"),
    Writer("vtu", "graph.vtu", False, _vtu, "the beam graph for FE tools (diameters as cell data)", "truss"),
    Writer("json", "graph.json", False, _json, "the beam graph and its provenance, JSON", "truss"),
    Writer("csv", "graph.csv", False, _csv, "the beam graph, one strut a row", "truss"),
    Writer("png", "graph.png", False, _png, "3D preview of the beam graph", "truss"),
    Writer("report", "report.json", True, _report, "what was built, per control point, with figures (PNG)",
           steps=True),
)}

if tuple(sorted(WRITERS)) != tuple(sorted(OUTPUT_FILES)):  # pragma: no cover - a programming error
    raise ImportError("graded.io.writers.WRITERS and graded.spec.OUTPUT_FILES name different outputs")


def needs_solid(files) -> bool:
    """True if any of the output names needs the meshed solid."""
    return any(WRITERS[f].solid for f in files)
