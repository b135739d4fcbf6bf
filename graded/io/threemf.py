"""3MF (lib3mf): the triangle mesh in millimetres, optionally the compact beam-lattice form.

``write_3mf(path, vertices, triangles)`` writes one mesh object and a build item.
With ``graph=...`` it writes the 3MF beam-lattice extension instead: a mesh object whose
vertices are the graph nodes, one beam per strut (radii at both ends, spherical caps) and one
ball per node (largest incident radius), whose ``representationmesh`` is the triangle solid,
so viewers without beam-lattice support still show the part. Coordinates are float32 in the
file (relative precision 6e-8).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import lib3mf
import numpy as np

from ..graph import LatticeGraph
from .atomic import atomic_path, check_suffix

__all__ = ["BEAM_MIN_LENGTH", "PARALLEL_ROWS", "STREAM_BLOCK", "write_3mf", "write_3mf_stream", "read_3mf",
           "ThreeMFObject"]

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


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="model" ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>'
    "</Types>\n"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Target="/3D/3dmodel.model" Id="rel0" '
    'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>'
    "</Relationships>\n"
)
#: Vertices or triangles formatted per block by :func:`write_3mf_stream` (bounds its text buffer
#: to a few tens of MB).
STREAM_BLOCK = 200_000

#: Vertices + triangles above which :func:`write_3mf_stream` formats its text in worker
#: processes: formatting costs about 0.7 us a row (a 22-million-triangle part: 24 s on one
#: core) against about 1 s to start a worker.
PARALLEL_ROWS = 2_000_000

_ROW_FORMATS = {"vertex": '<vertex x="%.9g" y="%.9g" z="%.9g"/>',
                "triangle": '<triangle v1="%d" v2="%d" v3="%d"/>'}


def _format_rows(kind: str, rows: np.ndarray) -> bytes:
    """One block of ``<vertex .../>`` or ``<triangle .../>`` lines, newline-terminated."""
    fmt = _ROW_FORMATS[kind]
    return ("\n".join(fmt % tuple(r) for r in rows.tolist()) + "\n").encode()


def _formatted_blocks(blocks, workers: int):
    """Yield ``_format_rows(kind, rows)`` for each ``(kind, rows)`` of ``blocks``, in order.

    With ``workers`` > 1 the blocks are formatted in that many processes, at most two blocks
    per worker in flight (memory stays a few blocks of text), while this process writes.
    """
    if workers <= 1:
        for kind, rows in blocks:
            yield _format_rows(kind, rows)
        return
    from collections import deque

    from ..workers import process_pool

    with process_pool(workers) as pool:
        pending = deque()
        for kind, rows in blocks:
            pending.append(pool.submit(_format_rows, kind, rows))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def write_3mf_stream(path, vertices: np.ndarray, triangles: np.ndarray, *, name: str = "graded lattice",
                     workers: int | None = None) -> Path:
    """Write a mesh-only 3MF package block by block, without lib3mf's in-memory model.

    The model XML is written straight into the zip entry (deflated, zip64), so memory is the
    arrays given plus a few blocks of text; lib3mf's model of a 22-million-triangle part took
    several GB more. Coordinates are written with 9 significant digits, which gives back the
    float32 values exactly. Same content as :func:`write_3mf` without ``graph``.

    Parameters
    ----------
    path : str or Path ending in ``.3mf``
    vertices : (V, 3) float, mm
    triangles : (T, 3) int, outward orientation
    name : str
        Object name (XML-escaped).
    workers : int, optional
        Processes that format the text while this one compresses and writes it. Default: one
        per core for meshes of more than :data:`PARALLEL_ROWS` vertices + triangles, none
        (formatted here) below. The file is the same for any number.
    """
    import zipfile
    from xml.sax.saxutils import quoteattr

    path = check_suffix(path, (".3mf",))
    v = np.asarray(vertices, dtype=np.float32).reshape(-1, 3)
    t = np.asarray(triangles).reshape(-1, 3)
    if workers is None:
        workers = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) \
            if len(v) + len(t) > PARALLEL_ROWS else 1
    workers = max(1, int(workers))
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n<model unit="millimeter" xml:lang="en-US" '
            'xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">\n<resources>\n'
            f'<object id="1" name={quoteattr(name)} type="model">\n<mesh>\n<vertices>\n').encode()
    n_vertex_blocks = -(-len(v) // STREAM_BLOCK)
    blocks = [("vertex", v[b:b + STREAM_BLOCK]) for b in range(0, len(v), STREAM_BLOCK)]
    blocks += [("triangle", t[b:b + STREAM_BLOCK]) for b in range(0, len(t), STREAM_BLOCK)]
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
            zf.writestr("_rels/.rels", _RELS)
            with zf.open("3D/3dmodel.model", "w", force_zip64=True) as fh:
                fh.write(head)
                if n_vertex_blocks == 0:
                    fh.write(b"</vertices>\n<triangles>\n")
                for i, text in enumerate(_formatted_blocks(blocks, workers)):
                    fh.write(text)
                    if i + 1 == n_vertex_blocks:
                        fh.write(b"</vertices>\n<triangles>\n")
                fh.write(b'</triangles>\n</mesh>\n</object>\n</resources>\n<build>\n<item objectid="1"/>\n'
                         b"</build>\n</model>\n")
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
