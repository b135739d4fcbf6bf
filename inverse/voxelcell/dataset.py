"""FE dataset of free-form cubic voxel cells: octants and their (C11, C12, C44, volume fraction).

    graded dataset datasets/voxel-train --family voxel --n 20000 --seed 0
    graded dataset datasets/voxel-test  --family voxel --n 1000  --seed 1

Every sample is one cell of :func:`graded.voxelcell.generate_cell` at ``bounds["resolution"]``
voxels per edge (:data:`RESOLUTION` by default), drawn with the generator settings stored in
``bounds`` (:func:`voxel_bounds`), and labelled by :func:`graded.voxelcell.cubic_labels`: two
periodic voxel-FE load cases (unit strains 11 and 23, CG to
:data:`graded.voxelcell.LABEL_RTOL`), E_s = 1, nu_s = 0.3. The cell of sample ``j`` of chunk
``k`` is drawn from its own generator, ``SeedSequence(seed, spawn_key=(k, j))``, so any cell of
the dataset can be regenerated exactly (:func:`regenerate_cell`, :meth:`VoxelDataset.cell`)
without the others. The labels of a chunk are computed in one :func:`cubic_labels` call (every
cell is solved on its own: a label does not depend on the other cells of its chunk). A label costs about
0.45 CPU seconds at 32^3 (0.26-0.60 s over ten cells, ``docs/voxel.md``), the generator about
0.01 s, hence the default of :data:`DEFAULT_CHUNK_SIZE` samples (about 1.5 minutes) per chunk.

Labels that did not converge within the CG iteration cap are kept, flagged in ``converged``
(:attr:`VoxelDataset.converged`); a chunk is never refused for them, so a dataset always
completes.

On-disk format ``graded-voxel-dataset`` version 1 (:mod:`graded.inverse.chunks`): ``meta.json``
with ``bounds`` = :func:`voxel_bounds` (``resolution`` and the :class:`GeneratorSettings`), and
chunks with arrays, for an ``n^3`` cell with octant edge ``h = n / 2``:

* ``octant`` (m, ceil(h^3 / 8)) uint8: the cell's octant ``solid[:h, :h, :h]`` flattened in C
  order and packed by ``numpy.packbits`` (big-endian bit order, zero-padded to whole bytes;
  :func:`unpack_octants`); it stores the whole cell (:func:`graded.voxelcell.expand_octant`);
* ``values`` (m, 4) float64: C11, C12, C44 (/ E_s, Voigt, engineering shear) and the volume
  fraction (:data:`graded.voxelcell.LABEL_NAMES`);
* ``family`` (m,) int8: index into :data:`FAMILY_CODES` (0 trig, 1 noise);
* ``iterations`` (m,) int64: CG iterations of the slower load case; ``converged`` (m,) bool;
* ``rejected`` (m,) int64: draws the generator rejected before the cell (``len(cell.rejected)``);

and ``header`` (5,) int64 ``[format_version, seed, chunk_index, m, chunk_size]``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graded.validation import ValidationError, check_count, fail
from graded.voxelcell import (
    FAMILIES,
    LABEL_LOAD_CASES,
    LABEL_RTOL,
    CubicLabels,
    GeneratorSettings,
    VoxelCell,
    cubic_labels,
    expand_octant,
    generate_cell,
)

from ..chunks import META, ChunkFormat, GenerationSummary, generate_chunks, load_chunks

__all__ = [
    "RESOLUTION",
    "DEFAULT_CHUNK_SIZE",
    "FAMILY_CODES",
    "VOXEL_BOUNDS",
    "VoxelDataset",
    "voxel_bounds",
    "voxel_format",
    "sample_rng",
    "regenerate_cell",
    "pack_octants",
    "unpack_octants",
    "expand_octants",
    "generate_voxel_dataset",
    "load_voxel_dataset",
]

#: Voxels per cell edge by default: the grid of the spinodoid labels, and the one the generator's
#: thin-feature tolerance (graded.voxelcell.MAX_THIN_FRACTION) was measured at; at 16^3 the same
#: cells have features half as many voxels across. A label costs about 0.45 CPU s at 32^3; the
#: voxel FE of the benchmark cells costs 14-16x as much at 64^3 (docs/voxel.md).
RESOLUTION = 32

#: Samples per chunk by default: about 1.5 minutes of one core at 32^3.
DEFAULT_CHUNK_SIZE = 200

#: ``family`` codes of the chunks: ``FAMILY_CODES[code]`` is the field family of a cell.
FAMILY_CODES: tuple[str, ...] = tuple(FAMILIES)

FE_SETTINGS: dict[str, Any] = {
    "E": 1.0,
    "nu": 0.3,
    "bc": "periodic",
    "load_cases": list(LABEL_LOAD_CASES),
    "rtol": LABEL_RTOL,
    "solver": "graded.voxelcell.cubic_labels (graded.fem.homogenize_voxels)",
    "model": "periodic hex8 voxels at bounds.resolution per edge, void removed",
}

SAMPLING = (
    "graded.voxelcell.generate_cell(bounds.resolution, rng, GeneratorSettings(**bounds without resolution)); "
    "rng of sample j of chunk k from SeedSequence(seed, spawn_key=(k, j)); family code i is FAMILY_CODES[i] "
    "(0 trig, 1 noise)"
)


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists), so a new meta compares equal to a stored one."""
    return json.loads(json.dumps(value))


def voxel_bounds(settings: GeneratorSettings | None = None, resolution: int = RESOLUTION) -> dict[str, Any]:
    """The ``bounds`` of a dataset (stored in meta.json): ``resolution`` and the generator settings.

    Parameters
    ----------
    settings : GeneratorSettings, optional
        What the cells are drawn from (the defaults if omitted).
    resolution : int
        Voxels per cell edge (even, >= 8).
    """
    settings = GeneratorSettings() if settings is None else settings
    if not isinstance(settings, GeneratorSettings):
        fail("settings", f"is a {type(settings).__name__}, not a GeneratorSettings",
             "pass graded.voxelcell.GeneratorSettings(...)")
    try:
        bounds = {"resolution": resolution, **_plain(dataclasses.asdict(settings))}
    except TypeError as exc:  # a value JSON cannot store (e.g. a numpy integer)
        raise ValidationError("settings", f"cannot be stored in meta.json ({exc})",
                              "give plain Python numbers in GeneratorSettings") from None
    _check_bounds(bounds)
    return bounds


def _check_bounds(bounds: Any) -> tuple[int, GeneratorSettings]:
    """The resolution and generator settings of ``bounds``; ``ValidationError`` naming the field if bad."""
    keys = {"resolution", *(f.name for f in dataclasses.fields(GeneratorSettings))}
    if not isinstance(bounds, dict) or set(bounds) != keys:
        got = sorted(bounds) if isinstance(bounds, dict) else type(bounds).__name__
        fail("bounds", f"has the keys {got}, expected {sorted(keys)}",
             "build it with voxel_bounds(settings, resolution)")
    resolution = check_count("bounds.resolution", bounds["resolution"], 8,
                             hint="give an even number of voxels per edge, at least 8")
    if resolution % 2:
        fail("bounds.resolution", f"{resolution} voxels per edge is odd",
             "give an even resolution (cells are stored as their n/2 octant)")
    kwargs = {k: v for k, v in bounds.items() if k != "resolution"}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    try:
        settings = GeneratorSettings(**kwargs)
    except ValidationError as exc:
        raise ValidationError(f"bounds.{exc.field}", exc.problem, exc.hint) from None
    except (TypeError, ValueError) as exc:
        raise ValidationError("bounds", f"is malformed ({exc})", "build it with voxel_bounds(settings, resolution)") \
            from None
    return resolution, settings


def _check_bounds_quietly(bounds: Any) -> None:
    _check_bounds(bounds)


#: The default dataset's design space: :data:`RESOLUTION` and the default generator settings.
VOXEL_BOUNDS: dict[str, Any] = voxel_bounds()


def sample_rng(seed: int, index: int, j: int) -> np.random.Generator:
    """The generator of sample ``j`` of chunk ``index`` of a dataset with this ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, j)))


def regenerate_cell(seed: int, index: int, j: int, bounds: dict[str, Any] = VOXEL_BOUNDS) -> VoxelCell:
    """The cell of sample ``j`` of chunk ``index`` of the dataset with this ``seed`` and ``bounds``, exactly."""
    resolution, settings = _check_bounds(bounds)
    return generate_cell(resolution, sample_rng(seed, index, j), settings)


def _packed_size(h: int) -> int:
    """Bytes of one packed ``h^3`` octant: ``ceil(h^3 / 8)``."""
    return -(-(h**3) // 8)


def pack_octants(octants: np.ndarray) -> np.ndarray:
    """Bool octants (m, h, h, h) as the chunk array ``octant`` (m, ceil(h^3 / 8)) uint8 (zero-padded)."""
    arr = np.asarray(octants)
    if arr.ndim != 4 or arr.dtype != bool or len(set(arr.shape[1:])) != 1:
        fail("octants", f"is {arr.dtype} of shape {arr.shape}, expected bool (m, h, h, h)",
             "stack the .octant of VoxelCells")
    return np.packbits(arr.reshape(arr.shape[0], -1), axis=1)


def unpack_octants(packed: np.ndarray, h: int) -> np.ndarray:
    """The bool octants (m, h, h, h) of a chunk array ``octant`` (m, ceil(h^3 / 8)) uint8."""
    arr = np.asarray(packed)
    h = check_count("h", h, 1, hint="give the voxels per octant edge (resolution / 2)")
    if arr.ndim != 2 or arr.dtype != np.uint8 or arr.shape[1] != _packed_size(h):
        fail("packed", f"is {arr.dtype} of shape {arr.shape}, expected uint8 (m, {_packed_size(h)}) for h = {h}",
             "pass the octant array of a chunk and resolution / 2")
    return np.unpackbits(arr, axis=1, count=h**3).astype(bool).reshape(-1, h, h, h)


def expand_octants(octants: np.ndarray) -> np.ndarray:
    """The full cells (m, 2h, 2h, 2h) of bool octants (m, h, h, h) (:func:`graded.voxelcell.expand_octant`)."""
    arr = np.asarray(octants)
    if arr.ndim != 4:
        fail("octants", f"has shape {arr.shape}, expected (m, h, h, h)", "give a stack of octants")
    h = arr.shape[1]
    out = np.empty((arr.shape[0], 2 * h, 2 * h, 2 * h), dtype=arr.dtype)
    for m, octant in enumerate(arr):
        out[m] = expand_octant(octant)
    return out


def _fields(resolution: int) -> dict[str, tuple[tuple[int, ...], type]]:
    h = resolution // 2
    return {
        "octant": ((_packed_size(h),), np.uint8),
        "values": ((4,), np.float64),
        "family": ((), np.int8),
        "iterations": ((), np.int64),
        "converged": ((), np.bool_),
        "rejected": ((), np.int64),
    }


def _compute_chunk(seed: int, index: int, size: int, bounds: dict, device: str | None = None) -> dict[str, np.ndarray]:
    resolution, settings = _check_bounds(bounds)
    cells = [generate_cell(resolution, sample_rng(seed, index, j), settings) for j in range(size)]
    labels = cubic_labels(np.stack([c.solid for c in cells]), nu=FE_SETTINGS["nu"], device=device)
    return {
        "octant": pack_octants(np.stack([c.octant for c in cells])),
        "values": np.asarray(labels.values, dtype=np.float64),
        "family": np.array([FAMILY_CODES.index(c.family) for c in cells], dtype=np.int8),
        "iterations": np.asarray(labels.iterations, dtype=np.int64),
        "converged": np.asarray(labels.converged, dtype=bool),
        "rejected": np.array([len(c.rejected) for c in cells], dtype=np.int64),
    }


def voxel_format(resolution: int = RESOLUTION) -> ChunkFormat:
    """The voxel family's chunk format for cells of ``resolution`` voxels per edge (the octant's size)."""
    resolution, _ = _check_bounds({**VOXEL_BOUNDS, "resolution": resolution})
    return _voxel_format(resolution)


@functools.cache
def _voxel_format(resolution: int) -> ChunkFormat:
    return ChunkFormat(
        family="voxel", format="graded-voxel-dataset", version=1, fields=_fields(resolution), fe=FE_SETTINGS,
        sampling=SAMPLING, compute=_compute_chunk, check_bounds=_check_bounds_quietly,
    )


def _format_of(path: str | os.PathLike) -> ChunkFormat:
    """The format of the dataset at ``path``, by the resolution its meta.json names.

    Anything unreadable falls back to the default format: :func:`load_chunks` then reads the
    same meta.json and says what is wrong with it.
    """
    directory = Path(path)
    if directory.is_file() and directory.name == META:
        directory = directory.parent
    try:
        return voxel_format(json.loads((directory / META).read_text(encoding="utf-8"))["bounds"]["resolution"])
    except (OSError, ValueError, KeyError, TypeError):  # ValidationError is a ValueError
        return voxel_format(RESOLUTION)


#: The per-sample arrays of a loaded dataset (the chunks' ``octant`` unpacked as ``octants``).
_ARRAYS = ("octants", "values", "family", "iterations", "converged", "rejected")


@dataclass(frozen=True, eq=False)
class VoxelDataset:
    """A loaded voxel dataset (every array concatenated over chunks), plus meta.

    Attributes
    ----------
    octants : ndarray of bool, shape (N, h, h, h)
        The cells' octants (``h = resolution / 2``); :meth:`solids` gives the full cells.
    values : ndarray of float64, shape (N, 4)
        C11, C12, C44 (/ E_s) and the volume fraction; :attr:`labels` wraps them.
    family : ndarray of int8, shape (N,)
        Index into :data:`FAMILY_CODES`.
    iterations : ndarray of int64, shape (N,)
    converged : ndarray of bool, shape (N,)
    rejected : ndarray of int64, shape (N,)
        Draws the generator rejected before each cell.
    meta : dict
        Contents of meta.json (``seed``, ``chunk_size``, ``bounds``, ...).
    """

    octants: np.ndarray
    values: np.ndarray
    family: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    rejected: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def resolution(self) -> int:
        """Voxels per cell edge."""
        return 2 * int(self.octants.shape[1])

    @property
    def labels(self) -> CubicLabels:
        """The labels as :class:`graded.voxelcell.CubicLabels` (C11, C12, C44, volume_fraction)."""
        return CubicLabels(values=self.values, iterations=self.iterations, converged=self.converged)

    @property
    def family_names(self) -> np.ndarray:
        """(N,) str: ``"trig"`` or ``"noise"``."""
        return np.asarray(FAMILY_CODES)[self.family]

    def solids(self, index: Any = slice(None)) -> np.ndarray:
        """Full cells (M, n, n, n) bool of the samples selected by ``index``, expanded from their octants."""
        octants = self.octants[index]
        return expand_octants(octants[None] if octants.ndim == 3 else octants)

    def location(self, i: int) -> tuple[int, int]:
        """``(chunk, j)`` of sample ``i`` (its place in the files and its generator's spawn key)."""
        i = check_count("i", i, 0)
        if i >= len(self):
            fail("i", f"{i} is not below the {len(self)} samples", "give a sample index of this dataset")
        return divmod(i, int(self.meta["chunk_size"]))

    def cell(self, i: int) -> VoxelCell:
        """Sample ``i`` regenerated from (seed, chunk, j): the full :class:`VoxelCell` with its field."""
        k, j = self.location(i)
        return regenerate_cell(int(self.meta["seed"]), k, j, self.meta["bounds"])

    def subset(self, index: Any) -> VoxelDataset:
        """The samples selected by ``index`` (slice, integer array or boolean mask).

        :meth:`location` and :meth:`cell` of a subset count from its first sample as if it were
        the whole set: regenerate cells through the dataset as loaded.
        """
        return VoxelDataset(**{k: getattr(self, k)[index] for k in _ARRAYS}, meta=self.meta)


def generate_voxel_dataset(
    path: str | os.PathLike,
    n: int,
    seed: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    bounds: dict[str, Any] = VOXEL_BOUNDS,
    *,
    scheduler: Any = None,
    on_cluster: Callable[[dict[str, Any]], None] | None = None,
    device: str | None = None,
) -> GenerationSummary:
    """Generate (or resume) a voxel-cell FE dataset; arguments as :func:`graded.inverse.chunks.generate_chunks`.

    ``bounds`` is :func:`voxel_bounds` of the generator settings and resolution. ``device`` runs
    the voxel FE of every worker there (``"cuda"`` where a GPU is lent; use one worker per GPU).
    """
    resolution, settings = _check_bounds(bounds)
    bounds = voxel_bounds(settings, resolution)  # as meta.json stores it
    return generate_chunks(voxel_format(resolution), path, n, seed, chunk_size, bounds, workers, progress,
                           scheduler=scheduler, on_cluster=on_cluster, options={"device": device} if device else {})


def load_voxel_dataset(path: str | os.PathLike) -> VoxelDataset:
    """Load and verify a dataset written by :func:`generate_voxel_dataset` (octants unpacked).

    Raises
    ------
    ValidationError
        (field ``path``) if it is not a voxel dataset of this format and version, a chunk is
        missing or unreadable, or an array has the wrong shape, dtype or header.
    """
    fmt = _format_of(path)
    arrays, meta = load_chunks(fmt, path)
    h = meta["bounds"]["resolution"] // 2
    packed = arrays.pop("octant")
    return VoxelDataset(octants=unpack_octants(packed, h), **arrays, meta=meta)
