"""Random connected, printable, cubic-symmetric voxel cells without topology optimisation.

A draw picks a field family (:mod:`graded.voxelcell.fields`) and a target volume fraction and
thresholds the field at the matching quantile. Islands (components that do not wind around
the periodic cell, :mod:`graded.spinodoid.connectivity`) are left out and the threshold raised
over the other voxels until the solid has the target volume fraction and no islands. A draw is
rejected, and drawn again, when its level set does not percolate, when the islands left out
exceed :data:`MAX_ISLAND_FRACTION` of the solid, when the solid is not one component winding
along all three axes, or when too much of it lies in features thinner than two voxels.

Thresholds are taken over the symmetry orbits (8, 24 or 48 voxels with one field value), so
the volume fraction is hit to within half an orbit, at most 24 voxels: within ``24 / n^3`` of
the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spinodoid.connectivity import ConnectivityReport, keep_percolating
from ..validation import check_choice, check_count, check_positive, check_range, fail
from .fields import NoiseParams, TrigParams, noise_field, sample_noise, sample_trig, trig_field
from .symmetry import is_cubic_symmetric, octant_of, orbit_index

__all__ = [
    "FAMILIES",
    "RHO_RANGE",
    "MAX_THIN_FRACTION",
    "MAX_ISLAND_FRACTION",
    "ISLAND_ROUNDS",
    "GeneratorSettings",
    "VoxelCell",
    "cubic_level_set",
    "level_set_cell",
    "thin_fraction",
    "generate_cell",
    "generate_cells",
]

#: Field families of :mod:`graded.voxelcell.fields`.
FAMILIES = ("trig", "noise")
#: Default range of the sampled volume fraction.
RHO_RANGE = (0.15, 0.6)
#: Largest fraction of the solid allowed outside every 2x2x2 solid block (one-voxel features).
#: Hex8 elements are over-stiff on single-voxel features (docs/voxel.md) and a printer cannot
#: resolve them, but the voxelised surface of any smooth solid has a few such voxels, so a
#: tolerance is needed. Measured on 60 level sets at 32^3 (before this check): median 0.3 %
#: (trig) and 0 % (noise), 90th percentile 1.5 % and 1 %; at 16^3, where the same cell-unit
#: features are half as many voxels across, median 3 % and 1 %, 90th percentile 12 % and 9 %.
#: 5 % keeps the smooth cells and rejects those whose features are one voxel across.
MAX_THIN_FRACTION = 0.05
#: Largest volume of islands left out, relative to the target solid volume. Islands are left
#: out and the threshold raised over the other voxels to restore the volume fraction; while
#: they are small that only thickens the solid near its surface, but a level set that is mostly
#: islands would grow into thin filaments that are no longer a level set of its field: its
#: field does not percolate at that volume fraction, so the draw is rejected.
MAX_ISLAND_FRACTION = 0.2
#: Rounds of leaving islands out and re-thresholding before a draw is given up.
ISLAND_ROUNDS = 8


@dataclass(frozen=True)
class GeneratorSettings:
    """What :func:`generate_cell` draws from.

    Attributes
    ----------
    rho_range : (float, float)
        Target volume fraction, uniform in this interval (inside (0, 1)).
    families : tuple of str
        Families drawn from (uniformly), a subset of :data:`FAMILIES`.
    n_terms : (int, int)
        Inclusive range of the number of terms of a trig field.
    k_max : int
        Largest wave number of a trig field.
    length_scale : (float, float)
        Range of the noise filter width, in cell edges (log-uniform).
    max_thin_fraction : float
        :data:`MAX_THIN_FRACTION`.
    max_attempts : int
        Draws before :func:`generate_cell` gives up.
    """

    rho_range: tuple[float, float] = RHO_RANGE
    families: tuple[str, ...] = FAMILIES
    n_terms: tuple[int, int] = (2, 5)
    k_max: int = 3
    length_scale: tuple[float, float] = (0.05, 0.12)
    max_thin_fraction: float = MAX_THIN_FRACTION
    max_attempts: int = 100

    def __post_init__(self):
        lo, hi = check_range("rho_range", self.rho_range, 0.0, 1.0, inclusive=False,
                             hint="give volume fractions strictly between 0 and 1")
        if lo > hi:
            fail("rho_range", f"{tuple(self.rho_range)} is decreasing", "give (low, high)")
        if not self.families:
            fail("families", "is empty", f"give some of {list(FAMILIES)}")
        for f in self.families:
            check_choice("families", f, FAMILIES)
        a, b = (check_count("n_terms", t, 1) for t in self.n_terms)
        if a > b:
            fail("n_terms", f"{tuple(self.n_terms)} is decreasing", "give (fewest, most)")
        check_count("k_max", self.k_max, 1)
        ls = check_positive("length_scale", self.length_scale, hint="give filter widths in cell edges")
        if ls.shape != (2,) or ls[0] > ls[1]:
            fail("length_scale", f"{self.length_scale!r} is not an increasing pair", "give (low, high)")
        check_range("max_thin_fraction", self.max_thin_fraction, 0.0, 1.0)
        check_count("max_attempts", self.max_attempts, 1)


@dataclass(frozen=True)
class VoxelCell:
    """One generated cell.

    Attributes
    ----------
    solid : ndarray of bool, shape (n, n, n)
        Cubic-symmetric, one face-connected component percolating along all three axes.
    octant : ndarray of bool, shape (n/2, n/2, n/2)
        ``solid[:n/2, :n/2, :n/2]``; :func:`graded.voxelcell.symmetry.expand_octant` gives ``solid``.
    volume_fraction : float
        Solid voxels over all voxels.
    target_volume_fraction : float
        The sampled target (``volume_fraction`` is within ``24 / n^3`` of it).
    family : str
        ``"trig"`` or ``"noise"``.
    params : TrigParams or NoiseParams
        The field; with ``threshold`` it gives the cell again.
    threshold : float
        Solid is ``field <= threshold`` on the kept voxels.
    thin_fraction : float
        :func:`thin_fraction` of ``solid``.
    connectivity : ConnectivityReport
        Of the final solid.
    rejected : tuple of str
        Why each earlier draw of this call was rejected: ``"percolation"`` (a level set with no
        winding component, or not one component winding along all three axes), ``"islands"``
        (more than :data:`MAX_ISLAND_FRACTION` of the target solid left out as islands, or
        islands left after :data:`ISLAND_ROUNDS`), ``"thin"`` (:func:`thin_fraction` above the
        tolerance); its length plus one is the number of draws.
    """

    solid: np.ndarray
    octant: np.ndarray
    volume_fraction: float
    target_volume_fraction: float
    family: str
    params: TrigParams | NoiseParams
    threshold: float
    thin_fraction: float
    connectivity: ConnectivityReport
    rejected: tuple[str, ...]


def _cut(values: np.ndarray, sizes: np.ndarray, allowed: np.ndarray, target: float) -> tuple[np.ndarray, float]:
    """Orbits of lowest value (among allowed) whose voxel count is closest to ``target``."""
    order = np.argsort(np.where(allowed, values, np.inf), kind="stable")[: int(allowed.sum())]
    cum = np.concatenate([[0], np.cumsum(sizes[order])])
    k = int(np.argmin(np.abs(cum - target)))
    chosen = np.zeros(values.shape, dtype=bool)
    chosen[order[:k]] = True
    return chosen, float(values[order[k - 1]]) if k else -np.inf


def cubic_level_set(field: np.ndarray, rho: float) -> tuple[np.ndarray, float]:
    """The solid ``field <= threshold`` with volume fraction ``rho``, to orbit granularity.

    Parameters
    ----------
    field : array_like, shape (n, n, n), float
        Cubic-symmetric (exactly, as the fields of :mod:`graded.voxelcell.fields` are).
    rho : float
        Target volume fraction in (0, 1).

    Returns
    -------
    solid : ndarray of bool, shape (n, n, n)
        Cubic-symmetric; ``|solid.mean() - rho| <= 24 / n^3`` (half the largest orbit).
    threshold : float
        The largest field value in the solid.
    """
    f = np.asarray(field, dtype=np.float64)
    if not is_cubic_symmetric(f):
        fail("field", "is not cubic-symmetric", "symmetrise it first (graded.voxelcell.symmetry.symmetrise)")
    rho = float(check_range("rho", rho, 0.0, 1.0, inclusive=False, hint="give a volume fraction in (0, 1)"))
    ids, sizes = orbit_index(f.shape[0])
    values = np.zeros(sizes.size)
    values[ids.reshape(-1)] = f.reshape(-1)
    chosen, t = _cut(values, sizes, np.ones(sizes.size, dtype=bool), rho * f.size)
    return chosen[ids], t


def thin_fraction(solid: np.ndarray) -> float:
    """Fraction of the solid in no 2x2x2 block of solid voxels (periodic binary opening).

    Parameters
    ----------
    solid : array_like of bool, shape (n1, n2, n3)

    Returns
    -------
    float
        ``|solid \\ opening(solid)| / |solid|`` with the 2x2x2 cube as structuring element and
        periodic wrap: 0 when every solid voxel belongs to a feature at least two voxels across
        in every direction; 0 for an empty solid.
    """
    s = np.asarray(solid, dtype=bool)
    if s.ndim != 3:
        fail("solid", f"has shape {s.shape}, expected (n1, n2, n3)", "give a 3D voxel grid")
    corners = [(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    block = np.ones_like(s)
    for off in corners:  # block[i] = the 2x2x2 block with lower corner i is all solid
        block &= np.roll(s, tuple(-o for o in off), axis=(0, 1, 2))
    opened = np.zeros_like(s)
    for off in corners:
        opened |= np.roll(block, off, axis=(0, 1, 2))
    total = int(s.sum())
    return float((s & ~opened).sum() / total) if total else 0.0


def level_set_cell(field: np.ndarray, rho: float, max_thin_fraction: float = MAX_THIN_FRACTION):
    """The connected, printable cell of volume fraction ``rho`` under a cubic-symmetric field.

    The solid is the ``rho`` share of voxels of lowest field value (by whole symmetry orbits);
    islands are left out and the next orbits in field order taken instead, for up to
    :data:`ISLAND_ROUNDS` rounds (the module docstring gives the rejection rules).

    Parameters
    ----------
    field : ndarray of float, shape (n, n, n)
        Exactly cubic-symmetric.
    rho : float
        Target volume fraction.
    max_thin_fraction : float
        :data:`MAX_THIN_FRACTION` by default.

    Returns
    -------
    cell : dict or None
        ``solid``, ``threshold``, ``thin_fraction``, ``connectivity`` (the fields of
        :class:`VoxelCell` that depend on the level set); None when rejected.
    reason : str or None
        ``"percolation"``, ``"islands"`` or ``"thin"`` when rejected.
    """
    n = field.shape[0]
    ids, sizes = orbit_index(n)
    values = np.zeros(sizes.size)
    values[ids.reshape(-1)] = field.reshape(-1)
    allowed = np.ones(sizes.size, dtype=bool)
    target = rho * n**3
    for _ in range(ISLAND_ROUNDS):
        chosen, t = _cut(values, sizes, allowed, target)
        solid = chosen[ids]
        kept, report = keep_percolating(solid)
        if report.n_removed == 0:
            break
        if report.n_kept == 0:
            return None, "percolation"
        # islands are unions of orbits (the symmetry maps components to components): leave
        # them out and take the next orbits in field order instead
        allowed[np.unique(ids[solid & ~kept])] = False
        if sizes[~allowed].sum() > MAX_ISLAND_FRACTION * target:
            return None, "islands"
    else:
        return None, "islands"
    if not report.fully_connected:
        return None, "percolation"
    thin = thin_fraction(solid)
    if thin > max_thin_fraction:
        return None, "thin"
    return dict(solid=solid, threshold=t, thin_fraction=thin, connectivity=report), None


def _draw(n: int, rho: float, rng: np.random.Generator, settings: GeneratorSettings, family: str | None):
    fam = family if family is not None else settings.families[int(rng.integers(len(settings.families)))]
    if fam == "trig":
        params = sample_trig(rng, settings.n_terms, settings.k_max)
        field = trig_field(params, n)
    else:
        params = sample_noise(rng, settings.length_scale)
        field = noise_field(params, n)
    cell, why = level_set_cell(field, rho, settings.max_thin_fraction)
    if cell is None:
        return None, why, fam
    cell.update(octant=octant_of(cell["solid"]), volume_fraction=float(cell["solid"].mean()),
                target_volume_fraction=rho, family=fam, params=params)
    return cell, None, fam


def generate_cell(
    n: int,
    rng: np.random.Generator,
    settings: GeneratorSettings | None = None,
    *,
    family: str | None = None,
) -> VoxelCell:
    """Draw one accepted cell, redrawing rejected ones.

    Parameters
    ----------
    n : int
        Voxels per cell edge (even, >= 8).
    rng : numpy.random.Generator
        All randomness (the same state gives the same cell).
    settings : GeneratorSettings, optional
    family : str, optional
        Force one family (``"trig"`` or ``"noise"``) instead of drawing it.

    Returns
    -------
    VoxelCell

    Raises
    ------
    ValidationError
        If no draw is accepted in ``settings.max_attempts``.
    """
    n = check_count("n", n, 8, hint="give an even number of voxels per edge, at least 8")
    if n % 2:
        fail("n", f"{n} voxels per edge is odd", "give an even n (the cell is stored as its n/2 octant)")
    if not isinstance(rng, np.random.Generator):
        fail("rng", f"is a {type(rng).__name__}, not a numpy.random.Generator", "pass numpy.random.default_rng(seed)")
    settings = GeneratorSettings() if settings is None else settings
    if family is not None:
        check_choice("family", family, FAMILIES)
    # the target is drawn once and kept over redraws of the field, so accepted cells follow the
    # sampled volume fraction distribution (level sets percolate less often at low rho)
    rho = float(rng.uniform(*settings.rho_range))
    rejected: list[str] = []
    for _ in range(settings.max_attempts):
        cell, why, _fam = _draw(n, rho, rng, settings, family)
        if cell is not None:
            return VoxelCell(**cell, rejected=tuple(rejected))
        rejected.append(why)
    fail(
        "settings",
        f"no accepted cell in {settings.max_attempts} draws at n={n}, rho={rho:.3g} (rejected: "
        + ", ".join(f"{r} {rejected.count(r)}" for r in sorted(set(rejected))) + ")",
        "raise n, max_attempts or max_thin_fraction, or widen rho_range",
    )


def generate_cells(
    count: int, n: int, rng: np.random.Generator, settings: GeneratorSettings | None = None
) -> list[VoxelCell]:
    """Draw ``count`` accepted cells in sequence from one generator (see :func:`generate_cell`)."""
    count = check_count("count", count, 0)
    return [generate_cell(n, rng, settings) for _ in range(count)]
