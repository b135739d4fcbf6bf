"""Inverse design of truss lattices: design-space sampling, FE datasets, networks.

Submodules are imported on first attribute access, so ``import graded.inverse`` stays
light (no torch, no FE) until a name is used. ``graded.inverse.design`` is the module
that holds the function :func:`graded.inverse.design.design` (also ``graded.design``).

Modules, from the bottom up (each imports only those above it):

* ``sampling``, ``scaling`` -- the design space (SI Table S1) and the networks' scalings;
* ``oracle`` -- FE stiffness of a batch of designs;
* ``forward``, ``inverse_model``, ``weights`` -- the networks and their files;
* ``draw`` -- designs drawn from the inverse model; ``select`` -- ranking criteria and the
  best design of each distinct cell;
* ``polish`` (LM against FE), ``refine`` (surrogate descent, then the polish);
  ``library`` -- FE-verified nearest neighbours;
* ``screen`` -- starts for every distinct lattice, verified by FE;
* ``design`` -- the design of one target from these pieces; ``evaluate`` -- the same
  pieces over a test set; ``train`` -- fitting the networks; ``dataset`` -- FE datasets;
* ``bone`` -- bone-like targets (Zysset-Curnier); ``exhaustive`` -- every lattice
  polished by FE (the reachable optimum); ``report`` -- ``design`` over a set of targets.

Every error measure lives in :mod:`graded.elastic.metrics`.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> submodule of graded.inverse that defines it
_LAZY = {
    "Bounds": "sampling",
    "TABLE_S1": "sampling",
    "Designs": "sampling",
    "sample_designs": "sampling",
    "LatticeDataset": "dataset",
    "generate_dataset": "dataset",
    "load_dataset": "dataset",
    "split_indices": "dataset",
    "shipped_test_set": "dataset",
    "DesignResult": "design",
}
#: submodules reachable as attributes before their first import
_SUBMODULES = ("bone", "design", "draw", "evaluate", "exhaustive", "forward", "inverse_model", "library", "oracle",
               "polish", "refine", "report", "screen",
               "sampling", "scaling", "select", "train", "weights", "dataset")

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'graded.inverse' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
