"""What a build will cost, estimated from the spec before anything is allocated.

The build refuses a spec whose estimate does not fit the machine, with the estimate and
how to coarsen, instead of running out of memory after minutes of work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..spec import Spec
from .body import Body

__all__ = ["BuildEstimate", "STRUTS_PER_CELL", "GRAPH_BYTES_PER_STRUT", "MEMORY_SHARE", "estimate_build",
           "check_estimate", "available_memory"]

#: Struts per built cell, an upper estimate: the superposed topology of two control points
#: gave 75 per cell on the 40 mm / 2 mm-cell benchmark box (603k struts, 8,000 cells).
STRUTS_PER_CELL = 100
#: Peak bytes per strut while placing and assembling the graph (benchmarks/build.py: 0.3 GB
#: for 603k struts, about 500 B; doubled for the arrays alive during clean-up).
GRAPH_BYTES_PER_STRUT = 1000
#: Share of the machine's memory a build may plan to use.
MEMORY_SHARE = 0.8


@dataclass(frozen=True)
class BuildEstimate:
    """Size of a build before it runs: cells, struts, peak graph memory (bytes)."""

    cells: float
    struts: float
    graph_bytes: float


def available_memory() -> int:
    """Physical memory of this machine in bytes (0 where the platform does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def estimate_build(spec: Spec, body: Body) -> BuildEstimate:
    """Cells of the body's bounding box at the built cell edge, struts and graph memory."""
    edge = spec.cell_size / spec.mu
    cells = float(np.prod(np.ceil((body.hi - body.lo) / edge) + 1))
    struts = cells * STRUTS_PER_CELL
    return BuildEstimate(cells=cells, struts=struts, graph_bytes=struts * GRAPH_BYTES_PER_STRUT)


def check_estimate(spec: Spec, est: BuildEstimate, memory: int | None = None) -> None:
    """Refuse a build whose graph would not fit in :data:`MEMORY_SHARE` of the machine's memory."""
    memory = available_memory() if memory is None else memory
    if memory <= 0 or est.graph_bytes <= MEMORY_SHARE * memory:
        return
    factor = (est.graph_bytes / (MEMORY_SHARE * memory)) ** (1 / 3)
    raise spec.error(("cell_size",), f"{spec.cell_size:g} mm gives about {est.cells:.3g} cells and {est.struts:.3g} "
                     f"struts in this body, about {est.graph_bytes / 2**30:.3g} GiB, more than this machine's "
                     f"{memory / 2**30:.3g} GiB allow", f"use a cell_size of at least {factor * spec.cell_size:.3g} "
                     "mm (or a smaller body)")
