"""A graded spinodoid part from a spec whose control points are spinodoid cells.

The spinodoid branch of :func:`graded.build.build` (``spec.family == "spinodoid"``):

1. every control point's ``spinodoid: {rho, theta, R, wavelength, n_waves}`` becomes a
   :class:`~graded.spinodoid.SpinodoidDesign`, its waves drawn from a generator seeded by
   ``(spec.seed, point index)`` (the same spec gives the same part);
2. the point's own periodic cell is voxelised at :data:`FE_RESOLUTION` and homogenized by
   the periodic voxel FE (:func:`graded.fem.homogenize_voxels`): the designed stiffness;
3. the fields are superposed with the grading's RBF weights (``zeta``), thresholded at the
   blended density and meshed into one watertight solid clipped to the body
   (:func:`graded.spinodoid.mesh.mesh_graded_spinodoid`, ``voxel_size``);
4. the as-built stiffness at each point is the voxel FE of the periodic cell the part has
   there (:func:`graded.spinodoid.mesh.local_cell`, blend weights frozen at the point), and
   its relative Frobenius error against the designed cell is reported.

A control point with a ``target:`` (in a spec with ``family: spinodoid``) gets its cell by
inverse design (:func:`graded.inverse.spinodoid.design.design_spinodoid`: the target's principal
frame, the inverse and forward models, FE verification of several realisations); the part uses
the verified realisation's waves, and the report gives the designed cell's error against the
target next to the as-built error.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..elastic.metrics import relative_frobenius
from ..elastic.rotation import as_rotation
from ..grading.body import Body
from ..spec import Spec
from ..validation import ValidationError
from .cell import threshold
from .connectivity import ConnectivityReport, keep_percolating
from .field import RHO_RANGE, SpinodoidDesign, WaveSet, field_on_grid, sample_waves
from .mesh import GradedSpinodoid, local_cell, mesh_graded_spinodoid
from .printability import THIN_WARN, thin_fraction

__all__ = ["FE_RESOLUTION", "VOXELS_PER_CELL", "SpinodoidPoint", "SpinodoidBuild", "build_spinodoid"]

#: Voxels per cell edge of the FE of a point's cell: 32^3 is within about 5 % of 96^3 for an
#: isotropic cell and 1-1.5 % for columnar and lamellar ones (docs/voxel.md) at 1.5-10 s per
#: cell on one core; finer grids cost 16x per doubling.
FE_RESOLUTION = 32
#: Default sampling of the part: voxels per cell edge (``voxel_size = cell_size / 32``), above
#: the 13 the default wavelength needs (graded.spinodoid.mesh.MIN_CELL_VOXELS).
VOXELS_PER_CELL = 32


@dataclass
class SpinodoidPoint:
    """One spinodoid control point: its cell, designed and as-built stiffness.

    Attributes
    ----------
    index : int
    name : str
    position : ndarray, shape (3,)
        mm.
    design : SpinodoidDesign
    waves : WaveSet
    C_cell : ndarray, shape (6, 6)
        Voxel FE of the point's own periodic cell, normalised by E_s.
    density_cell : float
        Solid fraction of that cell after island removal.
    connectivity : ConnectivityReport
        Of the own cell.
    C_as_built : ndarray, shape (6, 6) or None
        Voxel FE of the part's local cell at the point (None if it holds no solid).
    error_vs_cell : float or None
        ``||C_as_built - C_cell||_F / ||C_cell||_F``.
    C_target : ndarray, shape (6, 6) or None
        The target of a designed point, normalised by E_s (None for an explicit cell).
    units : str
        The units the spec wrote the target in.
    design_error : float or None
        ``||C_cell - C_target||_F / ||C_target||_F`` of a designed point.
    wave_seed : int or None
        Seed of the designed point's verified realisation.
    non_orthotropic : float or None
        Relative Mandel norm of the target's non-orthotropic part in its principal frame: what no
        spinodoid (orthotropic in the frame of its cones) has.
    thin_fraction : float or None
        Share of the cell's solid volume thinner than ``min_strut_diameter``
        (:func:`graded.spinodoid.printability.thin_fraction`; None when the spec sets no minimum).
    design_error_expected : float or None
        ``||C_mean - C_target||_F / ||C_target||_F`` of a designed point, ``C_mean`` the mean of
        the design's verified cells (its expected stiffness, what a region of several cells has).
    scatter : float or None
        Median relative distance of one verified cell from that mean (the realisation scatter).
    """

    index: int
    name: str
    position: np.ndarray
    design: SpinodoidDesign
    waves: WaveSet
    C_cell: np.ndarray
    density_cell: float
    connectivity: ConnectivityReport
    C_as_built: np.ndarray | None = None
    error_vs_cell: float | None = None
    C_target: np.ndarray | None = None
    units: str = "normalized"
    design_error: float | None = None
    wave_seed: int | None = None
    non_orthotropic: float | None = None
    design_error_expected: float | None = None
    scatter: float | None = None
    thin_fraction: float | None = None


@dataclass
class SpinodoidBuild:
    """Everything a spinodoid build made (the spinodoid counterpart of :class:`graded.build.BuildResult`)."""

    spec: Spec
    body: Body
    points: list[SpinodoidPoint]
    solid: GradedSpinodoid | None
    resolution: int
    files: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    family: str = "spinodoid"

    @property
    def title(self) -> str:
        name = Path(self.spec.source).name if self.spec.source else "graded spinodoid"
        return f"{name}: spinodoid, {len(self.points)} control points"


def _designed(spec: Spec, i: int, progress):
    """Inverse design of a target point: the best verified design result and the target (/ E_s)."""
    from ..inverse.design import TargetOutOfReachWarning, parse_target
    from ..inverse.spinodoid.design import design_spinodoid

    cp = spec.control_points[i]
    where = ("control_points", i, "target")
    try:
        C_t = parse_target(cp.target.stiffness, E=spec.material.E, units=cp.target.units)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            best = design_spinodoid(cp.target.stiffness, E=spec.material.E, units=cp.target.units,
                                    seed=spec.seed + 1000 * i, progress=progress)[0]
    except ValidationError as exc:
        raise spec.error(where, exc.problem, exc.hint) from None
    for w in caught:
        if isinstance(w.message, TargetOutOfReachWarning):
            # a part built for a target no cell reaches would be wrong everywhere near the point
            raise spec.error(where, str(w.message).split("; the designs returned")[0],
                             "give a target inside that range (check units and material.E), or family: truss")
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return best, C_t


def _design(spec: Spec, i: int) -> SpinodoidDesign:
    s = spec.control_points[i].spinodoid
    where = ("control_points", i, "spinodoid")
    if not RHO_RANGE[0] <= s.rho <= RHO_RANGE[1]:
        raise spec.error(where + ("rho",), f"{s.rho:g} is outside the spinodoid design space "
                         f"[{RHO_RANGE[0]:g}, {RHO_RANGE[1]:g}] (below it the solid falls apart)",
                         f"give rho between {RHO_RANGE[0]:g} and {RHO_RANGE[1]:g}")
    try:
        return SpinodoidDesign(rho=s.rho, theta=tuple(s.theta), R=as_rotation("R", s.R), wavelength=s.wavelength,
                               n_waves=s.n_waves)
    except ValidationError as exc:
        raise spec.error(where + (exc.field,), exc.problem, exc.hint) from None


def build_spinodoid(spec: Spec, body: Body, *, mesh: bool = True, resolution: int = FE_RESOLUTION,
                    progress=None, mesh_progress=None, timings: dict | None = None) -> SpinodoidBuild:
    """Design cells, mesh the graded part and measure it at the control points (module docstring).

    Parameters
    ----------
    spec : Spec
        ``spec.family == "spinodoid"``.
    body : Body
    mesh : bool
        Mesh the part (the slow step); without it only the cells and as-built figures.
    resolution : int
        Voxels per cell edge of the FE.
    progress : callable, optional
        ``progress(done, total, message)`` per point (cell and as-built FE).
    mesh_progress : callable, optional
        The same for the stages of meshing.
    timings : dict, optional
        Filled with seconds per stage.
    """
    from ..fem import homogenize_voxels

    timings = {} if timings is None else timings
    k = len(spec.control_points)
    total = 2 * k
    tell = progress or (lambda *a: None)
    t = time.perf_counter()
    points = []
    for i, cp in enumerate(spec.control_points):
        name = cp.name or f"point {i}"
        C_t = best = None
        if cp.target is not None:
            def sub(done, n, msg, i=i, name=name):
                tell(i, total, f"{name}: spinodoid design, {msg} ({done}/{n})")

            tell(i, total, f"{name}: spinodoid design for the target")
            best, C_t = _designed(spec, i, sub)
            from ..inverse.spinodoid.dataset import RESOLUTION as best_resolution
            d, waves = best.design, best.waves
        else:
            d = _design(spec, i)
            waves = sample_waves(d, np.random.default_rng([spec.seed, i]))
        tell(i, total, f"{name}: spinodoid cell FE ({resolution}^3 voxels)")
        phi = field_on_grid(waves, resolution)
        solid, conn = keep_percolating(phi <= threshold(phi, d.rho))
        if best is not None and resolution == best_resolution and abs(spec.material.nu - 0.3) < 1e-12:
            C = best.C_cell  # the design step homogenized this very cell (same waves, grid and nu)
        else:
            C = homogenize_voxels(solid, nu=spec.material.nu).C[0]
        point = SpinodoidPoint(i, name, np.asarray(cp.position, dtype=np.float64), d, waves, C,
                               float(solid.mean()), conn)
        if spec.min_strut_diameter > 0:
            point.thin_fraction = thin_fraction(solid, spec.cell_size / resolution, spec.min_strut_diameter)
            if point.thin_fraction > THIN_WARN:
                warnings.warn(f"{name}: {100 * point.thin_fraction:.0f} % of the spinodoid's solid is thinner than "
                              f"min_strut_diameter {spec.min_strut_diameter:g} mm, which the printer cannot make; "
                              "use a larger cell_size or wavelength, or a higher rho", stacklevel=2)
        if C_t is not None:
            point.C_target, point.units, point.wave_seed = C_t, cp.target.units, best.wave_seed
            point.non_orthotropic = best.residual
            point.design_error_expected, point.scatter = best.frobenius_fe, best.scatter
            point.design_error = float(relative_frobenius(C_t, C))
        points.append(point)
    designs = [p.design for p in points]
    timings["cells"] = time.perf_counter() - t

    xs = np.array([p.position for p in points])
    waves = [p.waves for p in points]
    rho = np.array([d.rho for d in designs])
    t = time.perf_counter()
    for p in points:
        tell(k + p.index, total, f"{p.name}: as-built cell FE")
        local = local_cell(p.position, xs, waves, rho, cell_size=spec.cell_size, resolution=resolution,
                           zeta=spec.zeta)
        if local.any():
            p.C_as_built = homogenize_voxels(local, nu=spec.material.nu).C[0]
            p.error_vs_cell = float(relative_frobenius(p.C_cell, p.C_as_built))
    timings["as_built"] = time.perf_counter() - t

    solid = None
    if mesh:
        t = time.perf_counter()
        if mesh_progress:
            mesh_progress(0, 4, "meshing the spinodoid part")
        voxel = spec.voxel_size or spec.cell_size / VOXELS_PER_CELL
        try:
            solid = mesh_graded_spinodoid(body, xs, waves, rho, cell_size=spec.cell_size, voxel_size=voxel,
                                          zeta=spec.zeta, progress=mesh_progress)
        except ValidationError as exc:
            field_name = "voxel_size" if exc.field == "voxel_size" else exc.field
            raise spec.error((field_name,), exc.problem, exc.hint) from None
        timings["mesh"] = time.perf_counter() - t
    tell(total, total, "spinodoid cells measured")
    return SpinodoidBuild(spec, body, points, solid, resolution, timings=timings)
