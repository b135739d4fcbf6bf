"""3MF (lib3mf): the triangle mesh in millimetres, optionally the compact beam-lattice form.

``write_3mf(path, vertices, triangles)`` writes one mesh object and a build item.
With ``graph=...`` it writes the 3MF beam-lattice extension instead: a mesh object whose
vertices are the graph nodes, one beam per strut (radii at both ends, spherical caps) and one
ball per node (largest incident radius), whose ``representationmesh`` is the triangle solid,
so viewers without beam-lattice support still show the part. Coordinates are float32 in the
file (relative precision 6e-8).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import lib3mf
import numpy as np

from ..graph import LatticeGraph
from .atomic import atomic_path, check_suffix

__all__ = ["BEAM_MIN_LENGTH", "write_3mf", "read_3mf", "ThreeMFObject"]

#: Beams shorter than this (mm) are not allowed by the 3MF beam-lattice ``minlength``; far
#: below any printable strut and above the float32 resolution of part coordinates.
BEAM_MIN_LENGTH = 1e-4


def _wrapper():
    return lib3mf.get_wrapper()


def _positions(points: np.ndarray):
    arr = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 3)
    return (lib3mf.Position * len(arr)).from_buffer(arr), arr


def _triangles(triangles: np.ndarray):
    arr = np.ascontiguousarray(triangles, dtype=np.uint32).reshape(-1, 3)
    return (lib3mf.Triangle * len(arr)).from_buffer(arr), arr


def write_3mf(
    path,
    vertices: np.ndarray,
    triangles: np.ndarray,
    *,
    graph: LatticeGraph | None = None,
    name: str = "graded lattice",
) -> Path:
    """Write a 3MF package atomically (unit millimetre).

    Parameters
    ----------
    path : str or Path ending in ``.3mf``
    vertices : (V, 3) float, mm
    triangles : (T, 3) int, outward orientation
    graph : LatticeGraph, optional
        Also write the beam lattice (struts as beams, nodes as balls) with the triangle mesh
        as its representation mesh.
    name : str
        Object name.
    """
    path = check_suffix(path, (".3mf",))
    wrapper = _wrapper()
    model = wrapper.CreateModel()
    model.SetUnit(lib3mf.ModelUnit.MilliMeter)
    solid = model.AddMeshObject()
    solid.SetName(name)
    pos, _keep_v = _positions(vertices)
    tri, _keep_t = _triangles(triangles)
    solid.SetGeometry(pos, tri)
    item = solid
    if graph is not None:
        lattice = model.AddMeshObject()
        lattice.SetName(f"{name} (beam lattice)")
        npos, _keep_n = _positions(graph.nodes)
        lattice.SetGeometry(npos, (lib3mf.Triangle * 0)())
        bl = lattice.BeamLattice()
        bl.SetMinLength(BEAM_MIN_LENGTH)
        r = graph.diameters / 2.0
        beams = (lib3mf.Beam * graph.n_struts)()
        arr = np.frombuffer(beams, dtype=np.dtype([("i", "<u4", 2), ("r", "<f8", 2), ("c", "<i4", 2)]))
        arr["i"] = graph.struts
        arr["r"] = r[:, None]
        arr["c"] = int(lib3mf.BeamLatticeCapMode.Sphere)
        bl.SetBeams(beams)
        node_r = np.zeros(graph.n_nodes)
        np.maximum.at(node_r, graph.struts[:, 0], r)
        np.maximum.at(node_r, graph.struts[:, 1], r)
        used = np.flatnonzero(node_r > 0)
        balls = (lib3mf.Ball * len(used))()
        barr = np.frombuffer(balls, dtype=np.dtype([("i", "<u4"), ("r", "<f8")]))
        barr["i"] = used
        barr["r"] = node_r[used]
        bl.SetBallOptions(lib3mf.BeamLatticeBallMode.Mixed, float(r.min()))
        bl.SetBalls(balls)
        bl.SetRepresentation(solid.GetUniqueResourceID())
        item = lattice
    model.AddBuildItem(item, wrapper.GetIdentityTransform())
    writer = model.QueryWriter("3mf")
    with atomic_path(path) as tmp:
        writer.WriteToFile(str(tmp))
    return path


@dataclass
class ThreeMFObject:
    """One mesh object read back from a 3MF file (mm, float64 from the file's float32).

    ``beams`` (K, 2) int, ``beam_radii`` (K, 2), ``balls`` (B,) node index, ``ball_radii`` (B,);
    ``representation`` is the resource id of the representation mesh (or None).
    """

    name: str
    resource_id: int
    vertices: np.ndarray
    triangles: np.ndarray
    beams: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    beam_radii: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    balls: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ball_radii: np.ndarray = field(default_factory=lambda: np.zeros(0))
    representation: int | None = None


def read_3mf(path) -> tuple[str, list[ThreeMFObject], list[int]]:
    """Read a 3MF file: ``(unit name, mesh objects, resource ids of the build items)``."""
    wrapper = _wrapper()
    model = wrapper.CreateModel()
    reader = model.QueryReader("3mf")
    reader.ReadFromFile(str(path))
    unit = lib3mf.ModelUnit(model.GetUnit()).name
    objects = []
    it = model.GetMeshObjects()
    while it.MoveNext():
        obj = it.GetCurrentMeshObject()
        nv = obj.GetVertexCount()
        nt = obj.GetTriangleCount()
        verts = np.frombuffer((lib3mf.Position * nv)(*obj.GetVertices()), dtype=np.float32).reshape(-1, 3)
        tris = np.frombuffer((lib3mf.Triangle * nt)(*obj.GetTriangleIndices()), dtype=np.uint32).reshape(-1, 3)
        rec = ThreeMFObject(obj.GetName(), obj.GetUniqueResourceID(), verts.astype(np.float64), tris.astype(np.int64))
        bl = obj.BeamLattice()
        nb = bl.GetBeamCount()
        if nb:
            raw = np.frombuffer(
                (lib3mf.Beam * nb)(*bl.GetBeams()), dtype=np.dtype([("i", "<u4", 2), ("r", "<f8", 2), ("c", "<i4", 2)])
            )
            rec.beams = raw["i"].astype(np.int64)
            rec.beam_radii = raw["r"].astype(np.float64)
            nball = bl.GetBallCount()
            if nball:
                ball_dtype = np.dtype([("i", "<u4"), ("r", "<f8")])
                braw = np.frombuffer((lib3mf.Ball * nball)(*bl.GetBalls()), dtype=ball_dtype)
                rec.balls = braw["i"].astype(np.int64)
                rec.ball_radii = braw["r"].astype(np.float64)
            has, rid = bl.GetRepresentation()
            rec.representation = int(rid) if has else None
        objects.append(rec)
    build = []
    items = model.GetBuildItems()
    while items.MoveNext():
        build.append(items.GetCurrent().GetObjectResource().GetUniqueResourceID())
    return unit, objects, build
