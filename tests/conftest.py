"""Shared fixtures."""

import numpy as np
import pytest
import torch

from graded.inverse.forward import ForwardConfig, ForwardModel
from graded.inverse.inverse_model import InverseConfig, InverseModel
from graded.inverse.scaling import MinMax


@pytest.fixture(scope="module")
def models():
    """Small untrained (inverse, forward) models: tests with them check the machinery, not the accuracy."""
    torch.manual_seed(0)
    f = ForwardModel(ForwardConfig(f1_widths=[16], f2_widths=[16],
                                   f1_label=MinMax(np.full(9, 0.05), np.full(9, 0.5)),
                                   f2_label=MinMax(np.full(21, -0.05), np.full(21, 0.4)))).eval()
    g = InverseModel(InverseConfig(g1_widths=[16], g2_widths=[16])).eval()
    return g, f


@pytest.fixture
def float32_opens(monkeypatch):
    """The one-piece mesher fails as a solid that float32 opens even after welding does."""
    import graded.mesh
    from graded.mesh.solid import Float32ClosureError

    def opens(*args, **kwargs):
        raise Float32ClosureError("mesh: the solid does not stay closed in float32")

    monkeypatch.setattr(graded.mesh, "mesh_graph", opens)
