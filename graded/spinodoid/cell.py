"""Voxel spinodoid cells: threshold the random field, keep the percolating solid."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..validation import check_count
from .connectivity import ConnectivityReport, keep_percolating
from .field import SpinodoidDesign, WaveSet, field_on_grid, sample_waves

__all__ = ["SpinodoidCell", "generate_cell", "threshold"]

log = logging.getLogger("graded.spinodoid")


@dataclass(frozen=True)
class SpinodoidCell:
    """One voxelised spinodoid cell.

    Attributes
    ----------
    design : SpinodoidDesign
    waves : WaveSet
        The field, so the same geometry can be sampled at another resolution or meshed.
    phi0 : float
        Threshold: solid where ``phi <= phi0``.
    solid : ndarray of bool, shape (n, n, n)
        Percolating solid after island removal.
    connectivity : ConnectivityReport
    """

    design: SpinodoidDesign
    waves: WaveSet
    phi0: float
    solid: np.ndarray
    connectivity: ConnectivityReport

    @property
    def density(self) -> float:
        """Solid volume fraction of the kept voxels."""
        return float(self.solid.mean())


def threshold(phi: np.ndarray, rho: float) -> float:
    """The ``rho``-quantile of the sampled field: solid ``phi <= phi0`` has density ``rho`` on the grid."""
    if rho >= 1.0:
        return float(np.inf)
    return float(np.quantile(phi, rho))


def generate_cell(design: SpinodoidDesign, resolution: int, rng: np.random.Generator) -> SpinodoidCell:
    """Draw, voxelise and clean one spinodoid cell.

    Parameters
    ----------
    design : SpinodoidDesign
    resolution : int
        Voxels per cell edge.
    rng : numpy.random.Generator
        Randomness of the waves (seed it for a reproducible cell).

    Returns
    -------
    SpinodoidCell
        With islands removed; a cell that does not percolate in all three directions is
        returned too (its ``connectivity`` says so) and logged as a warning.
    """
    n = check_count("resolution", resolution, 2)
    waves = sample_waves(design, rng)
    phi = field_on_grid(waves, n)
    phi0 = threshold(phi, design.rho)
    solid, report = keep_percolating(phi <= phi0)
    if not report.fully_connected:
        log.warning(
            "spinodoid cell (rho=%.3g, theta=%s) percolates in %d direction(s) with %d component(s)",
            design.rho, design.theta, report.winding_rank, report.n_kept,
        )
    return SpinodoidCell(design=design, waves=waves, phi0=phi0, solid=solid, connectivity=report)
