"""A library of FE-homogenized designs: nearest-neighbour starting points for inverse design.

The inverse problem is strongly multimodal: most topologies reach a given target only
roughly, and local refinement from a poor start stalls in a local minimum. A design whose
*FE* stiffness already has the target's shape is the best possible start. The library
stores such designs -- a slice of the training set, so every entry is an FE pair -- and
answers "which stored cells look most like this target?":

* Shape, not size: each stiffness is rotated into its canonical frame (eigenframe of the
  dilatational tensor, :func:`~graded.inverse.inverse_model.canonical_frame`) and divided
  by its Mandel norm; neighbours are searched among these 21 numbers with a k-d tree
  (:class:`scipy.spatial.cKDTree`).
* Orientation is exact: a neighbour ``n`` is turned into the target's frame by
  ``R_II <- Q_t Q_n^T R_II`` (a rigid rotation rotates the stiffness exactly).
* Size is matched by the density, ``rho <- rho (s_t / s_n)^(1 / RHO_EXPONENT)``
  (clipped to Table S1), the rest is left to the FE polish
  (:func:`~graded.inverse.polish.polish_designs`).

On disk (``format = "graded-design-library"``, version 1): one ``.npz`` written without
pickled objects and read with ``allow_pickle=False``: ``header`` (2,) int64
``[format_version, n]``, ``topology`` (n, 3, 2) int8, ``rho`` (n,), ``U``, ``V`` (n, 3),
``R1``, ``R2`` (n, 3, 3) and ``C`` (n, 21), float32 (ample for a starting point).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from graded.elastic import from_21, rotate_voigt
from graded.io.atomic import atomic_path
from graded.validation import check_count, fail

from .polish import MANDEL_W66
from .scaling import RHO_RANGE

__all__ = ["DesignLibrary", "build_library", "load_library", "save_library", "shipped_library",
           "RHO_EXPONENT", "FORMAT", "FORMAT_VERSION"]

FORMAT = "graded-design-library"
FORMAT_VERSION = 1
#: Exponent of stiffness versus density used to rescale a neighbour to the target's
#: magnitude: 1 for stretching-, 2 for bending-dominated cells; the lattices of the design
#: space lie in between, and the FE polish corrects the rest.
RHO_EXPONENT = 1.5

_KEYS = ("topology", "rho", "U", "V", "R1", "R2", "C")


def shape_features(C: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canonical frames, shape features and magnitudes of stiffnesses.

    Parameters
    ----------
    C : (n, 6, 6) float

    Returns
    -------
    Q : (n, 3, 3)
        Canonical frame, ``C = K(Q) C_can K(Q)^T``.
    features : (n, 21)
        Upper triangle of the Mandel form of ``C_can`` divided by its Frobenius norm.
    s : (n,)
        Mandel Frobenius norm of ``C``.
    """
    from .inverse_model import canonical_frame

    Q, Cc = canonical_frame(torch.as_tensor(np.asarray(C, dtype=np.float64)))
    M = Cc.numpy() * MANDEL_W66
    s = np.linalg.norm(M, axis=(-2, -1))
    iu = np.triu_indices(6)
    return Q.numpy(), M[:, iu[0], iu[1]] / s[:, None], s


@dataclass
class DesignLibrary:
    """FE-verified designs with a nearest-neighbour search by stiffness shape.

    Attributes
    ----------
    topology : (n, 3, 2) int8
    rho : (n,) float
    U, V : (n, 3) float
    R1, R2 : (n, 3, 3) float
    C : (n, 21) float
        FE stiffness of each design, normalised by E_s.
    """

    topology: np.ndarray
    rho: np.ndarray
    U: np.ndarray
    V: np.ndarray
    R1: np.ndarray
    R2: np.ndarray
    C: np.ndarray
    _index: tuple | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.rho.shape[0])

    def _tree(self):
        if self._index is None:
            from scipy.spatial import cKDTree

            Q, F, s = shape_features(from_21(np.asarray(self.C, dtype=np.float64)))
            self._index = (cKDTree(F), Q, s)
        return self._index

    def nearest(self, targets: np.ndarray, k: int = 5) -> dict[str, np.ndarray]:
        """The ``k`` stored designs most like each target, turned into its frame and size.

        Parameters
        ----------
        targets : (T, 6, 6) float
            Normalised target stiffnesses.
        k : int
            Neighbours per target (at most ``len(self)``).

        Returns
        -------
        dict of arrays with leading axes (T, k)
            ``topology`` (3, 2), ``rho``, ``U`` (3), ``V`` (3), ``R1``/``R2`` (3, 3),
            ``C_lib`` (6, 6): the stored stiffness turned into the target's frame (before
            the density rescaling), and ``distance``: the shape distance.
        """
        check_count("k", k, 1)
        k = min(int(k), len(self))
        tree, _, _ = self._tree()
        Qt, Ft, st = shape_features(np.asarray(targets, dtype=np.float64).reshape(-1, 6, 6))
        dist, idx = tree.query(Ft, k=k)
        dist, idx = dist.reshape(len(Ft), k), idx.reshape(len(Ft), k)
        return self._placed(idx, Qt[:, None], st[:, None]) | {"distance": dist}

    def nearest_per_group(self, target: np.ndarray, group: np.ndarray, k: int = 3) -> dict[str, np.ndarray]:
        """The ``k`` stored designs most like one target within each group of entries.

        Parameters
        ----------
        target : (6, 6) float
            Normalised target stiffness.
        group : (len(self),) int
            Group of every stored design (e.g. its lattice, so that each lattice gets its
            own nearest neighbours).
        k : int
            Neighbours per group (fewer where a group holds fewer designs).

        Returns
        -------
        dict of arrays with leading axis m (at most ``k`` per group, sorted by group, then
        by distance): as :meth:`nearest`, plus ``group`` (m,).
        """
        check_count("k", k, 1)
        group = np.asarray(group)
        if group.shape != (len(self),):
            fail("group", f"has shape {group.shape}", f"give one group per stored design ({len(self)})")
        tree, _, _ = self._tree()
        Qt, Ft, st = shape_features(np.asarray(target, dtype=np.float64).reshape(1, 6, 6))
        dist = np.linalg.norm(tree.data - Ft[0], axis=1)
        order = np.lexsort((dist, group))
        g = group[order]
        rank = np.arange(len(order)) - np.searchsorted(g, g, side="left")
        idx = order[rank < int(k)]
        return self._placed(idx, Qt[0], st[0]) | {"distance": dist[idx], "group": group[idx]}

    def _placed(self, idx: np.ndarray, Qt: np.ndarray, st: np.ndarray) -> dict[str, np.ndarray]:
        """Stored designs ``idx`` turned into a target's frame ``Qt`` and scaled to its size ``st``
        (both broadcast against ``idx``)."""
        _, Qn, sn = self._tree()
        turn = Qt @ np.swapaxes(Qn[idx], -1, -2)
        rho = self.rho[idx].astype(np.float64) * (st / sn[idx]) ** (1.0 / RHO_EXPONENT)
        return {
            "topology": self.topology[idx].astype(np.int8),
            "rho": np.clip(rho, *RHO_RANGE),
            "U": self.U[idx].astype(np.float64),
            "V": self.V[idx].astype(np.float64),
            "R1": _orthonormal(self.R1[idx]),
            "R2": turn @ _orthonormal(self.R2[idx]),
            "C_lib": rotate_voigt(from_21(self.C[idx].astype(np.float64)), turn),
        }


def _orthonormal(R: np.ndarray) -> np.ndarray:
    """Nearest rotations (float64) of stored float32 rotation matrices."""
    u, _, vt = np.linalg.svd(np.asarray(R, dtype=np.float64))
    return u @ vt


def build_library(dataset, n: int | None = None) -> DesignLibrary:
    """A library from the first ``n`` samples of an FE dataset (default: all)."""
    m = len(dataset) if n is None else min(int(n), len(dataset))
    if m < 1:
        fail("n", f"{n!r} leaves no samples", "give a positive number of designs")
    f32 = np.float32
    return DesignLibrary(
        topology=np.asarray(dataset.topology[:m], dtype=np.int8),
        rho=np.asarray(dataset.rho[:m], dtype=f32),
        U=np.asarray(dataset.U[:m], dtype=f32),
        V=np.asarray(dataset.V[:m], dtype=f32),
        R1=np.asarray(dataset.R1[:m], dtype=f32),
        R2=np.asarray(dataset.R2[:m], dtype=f32),
        C=np.asarray(dataset.C[:m], dtype=f32),
    )


def save_library(library: DesignLibrary, path: str | os.PathLike) -> Path:
    """Write ``library`` to a ``.npz`` file atomically (format in the module docstring)."""
    path = Path(path)
    if path.suffix != ".npz":
        fail("path", f"{path.name} does not end in .npz", "give a .npz file name")
    arrays = {key: np.asarray(getattr(library, key)) for key in _KEYS}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, header=np.array([FORMAT_VERSION, len(library)], dtype=np.int64), **arrays)
    return path


def load_library(path: str | os.PathLike) -> DesignLibrary:
    """Read a library written by :func:`save_library` (never unpickles)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {key: z[key] for key in ("header",) + _KEYS}
    except FileNotFoundError:
        fail("library", f"{path} does not exist", "give the path of a .npz written by save_library")
    except (KeyError, ValueError, OSError) as exc:
        fail("library", f"{path} is not a design library ({exc})", "rebuild it with build_library/save_library")
    version, n = (int(v) for v in data.pop("header")[:2])
    if version != FORMAT_VERSION:
        fail("library", f"{path} has format version {version}, this graded reads {FORMAT_VERSION}",
             "rebuild it with this version")
    shapes = {"topology": (n, 3, 2), "rho": (n,), "U": (n, 3), "V": (n, 3), "R1": (n, 3, 3), "R2": (n, 3, 3),
              "C": (n, 21)}
    for key, shape in shapes.items():
        if data[key].shape != shape or not np.all(np.isfinite(data[key])):
            fail("library", f"{path}: array {key!r} is damaged (shape {data[key].shape}, expected {shape})",
                 "rebuild it with build_library/save_library")
    return DesignLibrary(**data)


@functools.lru_cache(maxsize=1)
def shipped_library() -> DesignLibrary:
    """The library shipped with the package: the first 50,000 designs of the training set
    (seed 0; disjoint from the shipped test set, seed 1), loaded once per process."""
    from importlib import resources

    with resources.as_file(resources.files("graded.inverse") / "data" / "library.npz") as path:
        return load_library(path)
