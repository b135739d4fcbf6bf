"""``graded.build``: the one build pipeline, from a spec to a printable part.

Stages, each a function of the previous stage's result (DESIGN §3)::

    Spec --make_body/check_body--> Body
         --resolve_cells--> [CellDesign]          (graded.cells: explicit or inverse design, FE once)
         --prepare--> Prepared                    (graded.grading: blended basis, phase fields)
         --correct--> Prepared, ClosedLoopReport  (graded.grading: as-built closed loop per point)
         --assemble--> Lattice                    (graded.grading: cells, nodes, diameters, clean-up)
         --measure_as_built--> [AsBuilt]          (graded.grading: FE of the local cell per point)
         --map_as_built--> AsBuiltMap             (graded.grading: the same at every built cell)
         --check_windows--> [WindowCheck]         (graded.grading: beam FE of the built graph per point)
         --mesh_graph--> SolidMesh                (graded.mesh: watertight solid, clipped to the body)
         --WRITERS--> files                       (graded.io: STL, 3MF, graph files, report)

:func:`build` runs them and returns a :class:`BuildResult` with everything each stage
made; nothing is parsed, read or homogenized twice. Files are written into a staging
folder and swapped in as a whole (:mod:`graded.io.staging`).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cells import CellDesign, resolve_cells
from .grading.asbuilt_map import AsBuiltMap, map_as_built
from .grading.body import Body
from .grading.correction import correct
from .grading.pipeline import (
    AsBuilt,
    Lattice,
    Prepared,
    assemble,
    check_body,
    check_printable,
    check_windows,
    graph_meta,
    make_body,
    measure_as_built,
    point_references,
    prepare,
)
from .graph import LatticeGraph
from .progress import Progress, StageProgress, within
from .spec import Spec, load_spec, parse_spec

__all__ = ["BuildResult", "STAGES", "build", "build_graph"]

_log = logging.getLogger("graded.build")


#: A box body clips the solid this far (mm) outside its faces. Nodes on a face come out of
#: the phase fields within ~1e-8 mm of it; clipping exactly there leaves slivers that an STL
#: reader fuses (not watertight). 1e-5 mm is 100 times below the excursion the report allows.
CLIP_MARGIN = 1e-5

#: Name of the binary STL a tiled solid is streamed to in the staging folder (renamed to
#: part.stl when the spec asks for it, removed otherwise).
SPOOL_NAME = ".spool-part.stl"

#: Vertices of the solid checked against an STL/3MF body for the report's maximum excursion
#: (a box checks all of them exactly).
EXCURSION_SAMPLE = 50_000

#: The stages of a build and their share of the progress bar (rough shares of the time of the
#: bundled main job: inverse design and meshing dominate).
STAGES = {"cells": 40, "phase": 5, "closed_loop": 5, "graph": 12, "as_built": 3, "as_built_map": 3, "window": 5,
          "mesh": 20, "write": 7}


@dataclass
class BuildResult:
    """Everything a build made, stage by stage.

    Attributes
    ----------
    spec : Spec
    body : Body
    cells : list of CellDesign
        The cell of every control point, its provenance and design error.
    grading : Prepared
        Blended field and phase fields.
    lattice : Lattice
        The graded strut graph and its clean-up counts.
    as_built : list of AsBuilt
        As-built stiffness at every control point.
    closed_loop : graded.grading.correction.ClosedLoopReport
        Before and after of the closed-loop correction at every point.
    windows : list of graded.grading.window.WindowCheck or None
        The independent check: apparent stiffness of a window of the built graph per point.
    as_built_map : graded.grading.asbuilt_map.AsBuiltMap or None
        As-built stiffness sampled at the built cells over the whole part.
    solid : graded.mesh.SolidMesh or None
        The printable solid (None when no output needed it).
    files : dict of str -> Path
        Final paths of the written files (empty when nothing was written).
    timings : dict of str -> float
        Seconds per stage and ``total``.
    """

    spec: Spec
    body: Body
    cells: list[CellDesign]
    grading: Prepared
    lattice: Lattice
    as_built: list[AsBuilt]
    closed_loop: object | None = None
    windows: list = field(default_factory=list)
    as_built_map: AsBuiltMap | None = None
    solid: object | None = None
    files: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    @property
    def graph(self) -> LatticeGraph:
        """The graded strut graph (mm)."""
        return self.lattice.graph

    @property
    def printed_graph(self) -> LatticeGraph:
        """The struts the solid holds (the graph less the struts meshing dropped)."""
        g = self.graph
        if self.solid is None or len(self.solid.dropped_struts) == 0:
            return g
        keep = self.solid.kept_struts
        used, inv = np.unique(g.struts[keep], return_inverse=True)
        return LatticeGraph(g.nodes[used], inv.reshape(-1, 2), g.diameters[keep], dict(g.meta))

    @property
    def title(self) -> str:
        name = Path(self.spec.source).name if self.spec.source else "graded lattice"
        return f"{name}: {self.graph.n_struts} struts"


def _as_spec(spec_or_path) -> Spec:
    if isinstance(spec_or_path, (str, Path)):
        return load_spec(spec_or_path)
    if isinstance(spec_or_path, dict):
        return parse_spec(spec_or_path)
    if isinstance(spec_or_path, Spec):
        return spec_or_path
    raise TypeError("spec_or_path: give a Spec, a dict or the path of a spec.yaml")


def _inputs(spec: Spec) -> list[Path]:
    paths = []
    if spec.source:
        paths.append(Path(spec.source))
    if spec.body.file is not None:
        paths.append(spec.resolve(spec.body.file))
    return paths


def build(spec_or_path, progress: Progress | None = None, *, output_dir=None, write: bool = False,
          mesh: bool | None = None, output_field: str = "outputs.directory", scheduler=None,
          tiled_above: int | None = None, tile_struts: int | None = None,
          on_cluster: Callable[[dict], None] | None = None) -> BuildResult:
    """Build the graded part of a spec: cells, lattice, as-built figures, solid and files.

    Parameters
    ----------
    spec_or_path : Spec, dict, or path to spec.yaml
    progress : callable, optional
        ``progress(done, total, message)``, called at least at every stage and inside the
        long ones (inverse design, placement, meshing).
    output_dir : path-like, optional
        Write the spec's ``outputs.files`` there (implies ``write``).
    write : bool
        Write them into the spec's ``outputs.directory`` (relative to the spec file).
    mesh : bool, optional
        Mesh the solid (default: when writing an output that needs it).
    output_field : str
        How the caller names the output folder in error messages (the CLI says ``--outdir``).
    scheduler : None, "local", "serial", an address or a distributed.Client
        Where the tiles of a big part are meshed (:func:`graded.mesh.tiles.mesh_graph_tiled`):
        by default a Dask LocalCluster of the local cores; ``"tcp://host:8786"`` a running cluster.
    tiled_above : int, optional
        Mesh in tiles above this many struts (default :data:`graded.mesh.tiles.TILED_ABOVE`).
        The solid of a tiled build is streamed to disk and is a
        :class:`~graded.mesh.tiles.TiledSolid` (``solid.path``; no ``solid.mesh``).
    tile_struts : int, optional
        Struts per tile (default :data:`graded.mesh.tiles.TILE_STRUTS`).
    on_cluster : callable(dict), optional
        Called with the Dask scheduler's address, dashboard and worker count when tiles start.

    Returns
    -------
    BuildResult

    Raises
    ------
    ValidationError
        Bad spec, or an output folder that cannot be written (checked before any work).
    """
    t_all = time.perf_counter()
    spec = _as_spec(spec_or_path)
    files = list(dict.fromkeys(spec.outputs.files))
    writing = output_dir is not None or write
    folder = None
    if writing:
        from .io.staging import open_output_folder

        out = Path(output_dir) if output_dir is not None else spec.resolve(spec.outputs.directory)
        folder = open_output_folder(out, inputs=_inputs(spec), field=output_field)
    stage = StageProgress(progress, STAGES)
    timings: dict = {}
    try:
        from .io.writers import WRITERS, needs_solid

        meshing = mesh if mesh is not None else (writing and needs_solid(files))
        if spec.family == "spinodoid":
            from .spinodoid.part import build_spinodoid

            body = make_body(spec)
            check_body(spec, body)
            result = build_spinodoid(spec, body, mesh=meshing, progress=stage("cells"), mesh_progress=stage("mesh"),
                                     timings=timings)
            files = [f for f in files if WRITERS[f].family in ("any", "spinodoid")]
        elif spec.family == "voxel":
            from .voxelcell.part import build_voxel

            body = make_body(spec)
            check_body(spec, body)
            result = build_voxel(spec, body, mesh=meshing, progress=stage("cells"), mesh_progress=stage("mesh"),
                                 timings=timings)
            files = [f for f in files if WRITERS[f].family == "any"]
        else:
            spool = folder.path(SPOOL_NAME) if folder is not None else None
            options = dict(spool=spool, scheduler=scheduler, tiled_above=tiled_above, tile_struts=tile_struts,
                           on_cluster=on_cluster)
            result = _truss(spec, stage, timings, meshing, options)
        if writing:
            t = time.perf_counter()
            tell = stage("write")
            order = [w for w in WRITERS.values() if w.name in files]
            written: dict = {}
            for k, w in enumerate(order):
                if tell:
                    tell(k, len(order), f"writing {w.filename}")
                if w.name == "report":
                    result.files = {key: folder.final(p.name) for key, p in written.items()}
                if w.steps:
                    sub = None if tell is None else within(tell, k, len(order))
                    written.update(w.write(result, folder.staging, progress=sub))
                else:
                    written.update(w.write(result, folder.staging))
            timings["write"] = time.perf_counter() - t
            timings["total"] = time.perf_counter() - t_all
            folder.path(SPOOL_NAME).unlink(missing_ok=True)  # a tiled solid no output kept as part.stl
            final = folder.commit()
            result.files = {key: final[p.name] for key, p in written.items() if p.name in final}
    except BaseException:
        if folder is not None:
            folder.discard()
        raise
    timings["total"] = time.perf_counter() - t_all
    stage.finish()
    return result


def build_graph(spec, progress=None) -> LatticeGraph:
    """The graded strut graph of a spec (cells, field and phase, graph; no as-built FE, no files).

    Parameters
    ----------
    spec : Spec, dict, or path to spec.yaml
    progress : callable, optional
        ``progress(done, total, message)``.

    Returns
    -------
    LatticeGraph
        Nodes and struts in mm; ``meta`` records the cell of every control point.
    """
    spec = _as_spec(spec)
    body = make_body(spec)
    check_body(spec, body)
    designs = resolve_cells(spec, progress=progress)
    check_printable(spec, designs)
    prep = prepare(spec, body, designs, progress)
    prep, _ = correct(prep, designs, progress)
    lattice = assemble(prep, progress)
    lattice.graph.meta = graph_meta(spec, designs, prep)
    return lattice.graph


def _truss(spec: Spec, stage: StageProgress, timings: dict, meshing: bool, mesh_options: dict) -> BuildResult:
    """The truss stages of :func:`build` (module docstring), from the spec to the solid."""
    t = time.perf_counter()
    body = make_body(spec)
    check_body(spec, body)
    cells = resolve_cells(spec, progress=stage("cells"))
    check_printable(spec, cells)
    timings["cells"] = time.perf_counter() - t

    t = time.perf_counter()
    grading = prepare(spec, body, cells, stage("phase"))
    timings["phase"] = time.perf_counter() - t

    t = time.perf_counter()
    tell = stage("closed_loop")
    if tell:
        tell(0, 1, "as-built check and correction at the control points")
    grading, loop = correct(grading, cells, tell)
    timings["closed_loop"] = time.perf_counter() - t

    t = time.perf_counter()
    lattice = assemble(grading, stage("graph"))
    lattice.graph.meta = graph_meta(spec, cells, grading)
    timings["graph"] = time.perf_counter() - t

    t = time.perf_counter()
    as_built = measure_as_built(grading, cells, loop)
    timings["as_built"] = time.perf_counter() - t

    t = time.perf_counter()
    tell = stage("as_built_map")
    if tell:
        tell(0, 1, "as-built map over the part")
    as_built_map = map_as_built(grading, [ref for ref, _, _ in point_references(cells)], progress=tell)
    timings["as_built_map"] = time.perf_counter() - t
    if as_built_map.empty.any():
        where = as_built_map.points[as_built_map.empty]
        lo, hi = (", ".join(f"{v:.3g}" for v in a) for a in (where.min(axis=0), where.max(axis=0)))
        warnings.warn(f"{int(as_built_map.empty.sum())} of {len(as_built_map.points)} cells of the part hold no "
                      f"printable strut (between [{lo}] and [{hi}] mm): the blend thins every strut there below "
                      "min_strut_diameter; raise rho or cell_size at the control points, or lower "
                      "min_strut_diameter", stacklevel=3)

    t = time.perf_counter()
    tell = stage("window")
    if tell:
        tell(0, 1, "window check of the built graph at the control points")
    windows = check_windows(grading, lattice.graph, cells, as_built)
    timings["window"] = time.perf_counter() - t

    result = BuildResult(spec, body, cells, grading, lattice, as_built, closed_loop=loop, windows=windows,
                         as_built_map=as_built_map, timings=timings)

    if meshing:
        t = time.perf_counter()
        result.solid = _mesh(result, stage("mesh"), **mesh_options)
        timings["mesh"] = time.perf_counter() - t
    return result


def _check_one_piece(spec: Spec, n_struts: int, memory: int | None = None) -> None:
    """Refuse a skinned part whose one-piece mesh would not fit this machine's memory.

    A skin is one wall around the whole part, united with the lattice in one boolean, so a
    skinned part is meshed in one piece however many struts it has (tiles would cut the wall
    at their seams); above :data:`graded.mesh.tiles.TILED_ABOVE` struts that costs
    :data:`graded.mesh.solid.ONE_PIECE_BYTES_PER_STRUT` per strut.
    """
    from .grading.estimate import MEMORY_SHARE, available_memory
    from .mesh.solid import ONE_PIECE_BYTES_PER_STRUT

    memory = available_memory() if memory is None else memory
    need = n_struts * ONE_PIECE_BYTES_PER_STRUT
    if memory <= 0 or need <= MEMORY_SHARE * memory:
        return
    most = int(MEMORY_SHARE * memory / ONE_PIECE_BYTES_PER_STRUT)
    factor = (n_struts / most) ** (1 / 3)
    raise spec.error(("skin",), f"a skinned part is meshed in one piece, and this one's {n_struts:,} struts need "
                     f"about {need / 2**30:.3g} GiB, more than this machine's {memory / 2**30:.3g} GiB allow "
                     f"(about {most:,} struts)", f"use a cell_size of at least {factor * spec.cell_size:.3g} mm, "
                     "or leave out skin (parts without one are meshed in tiles)")


def _mesh(result: BuildResult, progress: Progress | None, *, spool=None, scheduler=None,
          tiled_above: int | None = None, tile_struts: int | None = None, on_cluster=None):
    """The printable solid of a build: struts and joints, clipped to the body, one body.

    Graphs above ``tiled_above`` struts are meshed in tiles (:mod:`graded.mesh.tiles`) and
    streamed to ``spool`` (a binary STL; a temporary file when None).
    """
    from .mesh import mesh_graph
    from .mesh.solid import Float32ClosureError
    from .mesh.tiles import TILE_STRUTS, TILED_ABOVE, mesh_graph_tiled

    spec = result.spec
    if progress:
        progress(0, 1, "meshing the solid")
    limit = TILED_ABOVE if tiled_above is None else tiled_above

    def tiled(n_tile: int, where, skin=None):
        path = spool
        if path is None:
            import tempfile

            path = Path(tempfile.mkdtemp(prefix="graded-mesh-")) / "part.stl"
        solid = mesh_graph_tiled(
            result.graph,
            path,
            min_diameter=spec.min_strut_diameter or None,
            body=result.body.surface(margin=CLIP_MARGIN),
            drop_islands=True,
            tile_struts=n_tile,
            scheduler=where,
            on_cluster=on_cluster,
            progress=progress,
            skin=skin,
        )
        solid.stats["max_excursion_mm"] = result.body.excursion(solid.stats.pop("excursion_sample"))
        return solid

    if result.graph.n_struts > limit and spec.skin is not None:
        _check_one_piece(spec, result.graph.n_struts)
    elif result.graph.n_struts > limit:
        return tiled(TILE_STRUTS if tile_struts is None else tile_struts, scheduler)
    skin = None
    if spec.skin is not None:
        from .mesh.skin import skin_shell

        skin = skin_shell(result.body.surface(), spec.skin.thickness)
    try:
        solid = mesh_graph(
            result.graph,
            min_diameter=spec.min_strut_diameter or None,
            body=result.body.surface(margin=CLIP_MARGIN),
            skin=skin,
            drop_islands=True,
            progress=progress,
        )
    except Float32ClosureError:
        # the tiled path's own float32 clean-up (sliver collapse, back-to-back pairs) on one tile
        _log.info("mesh: the one-piece solid does not stay closed in float32; meshing it as one tile")
        if progress:
            progress(0, 1, "meshing again as one tile (float32 clean-up)")
        solid = tiled(result.graph.n_struts + 1, "serial", skin)
        solid.stats["float32_fallback"] = "one tile"
    if skin is not None:
        solid.stats["skin_mm"] = spec.skin.thickness
        solid.stats["skin_volume_mm3"] = float(skin.wall.volume())
    if solid.mesh is None:  # meshed as one tile: its excursion is set from the tile's sample
        return solid
    v = solid.mesh.vertices
    if result.body.mesh is not None and len(v) > EXCURSION_SAMPLE:  # the mesh inside test costs per point
        v = v[np.random.default_rng(0).choice(len(v), EXCURSION_SAMPLE, replace=False)]
    solid.stats["max_excursion_mm"] = result.body.excursion(v)
    return solid
