"""Inverse design of truss lattices: design-space sampling, FE datasets, networks.

Submodules are imported on first attribute access, so ``import graded.inverse`` stays
light (no torch, no FE) until a name is used.
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
    "design": "design",
    "DesignResult": "design",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'graded.inverse' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
