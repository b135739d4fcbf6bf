"""Elastic-surface and parity figures."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from graded.elastic import NAMES_9, axis_angle_to_matrix, rotate_voigt, to_21
from graded.plot import plot_elastic_surfaces, plot_parity
from graded.validation import ValidationError


def _orthotropic(rho: float = 0.05) -> np.ndarray:
    C = np.zeros((6, 6))
    C[:3, :3] = [[rho / 3, 1e-3, 1e-3], [1e-3, rho / 6, 1e-3], [1e-3, 1e-3, rho / 9]]
    C[3, 3] = C[4, 4] = C[5, 5] = 2e-3
    return C


def _assert_png(path, min_w=600, min_h=400):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(path)
    assert img.shape[0] >= min_h and img.shape[1] >= min_w
    # something was drawn: the image is not one flat colour
    assert img[..., :3].std() > 0.05
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]


def test_elastic_surfaces_target_vs_design(tmp_path):
    C = _orthotropic()
    design = rotate_voigt(C, axis_angle_to_matrix(0.4, 0.3, 0.2))
    out = plot_elastic_surfaces({"target": C, "design": to_21(design)}, tmp_path / "s.png", title="t")
    assert out == tmp_path / "s.png"
    _assert_png(out)


def test_elastic_surfaces_overwrites_atomically(tmp_path):
    path = tmp_path / "sub" / "s.png"
    plot_elastic_surfaces({"a": _orthotropic()}, path, resolution=12)
    first = path.stat().st_size
    plot_elastic_surfaces({"a": _orthotropic(), "b": _orthotropic(0.02)}, path, resolution=12)
    assert path.stat().st_size != first
    _assert_png(path)


@pytest.mark.parametrize(
    "stiffnesses, name, match",
    [
        ({}, "s.png", "stiffnesses"),
        ({"bad": np.triu(np.ones((6, 6)))}, "s.png", "stiffnesses\\['bad'\\].*symmetric"),
        ({"neg": -np.eye(6)}, "s.png", "positive definite"),
        ({"a": np.eye(6)}, "s.jpg", "path"),
        ({str(i): np.eye(6) for i in range(7)}, "s.png", "at most 6"),
    ],
)
def test_elastic_surfaces_rejects_bad_input(tmp_path, stiffnesses, name, match):
    with pytest.raises(ValidationError, match=match):
        plot_elastic_surfaces(stiffnesses, tmp_path / name)
    assert not (tmp_path / name).exists()


def test_parity_returns_r2_per_component(tmp_path):
    rng = np.random.default_rng(0)
    true = rng.normal(size=(500, 9))
    noise = 0.1 * rng.normal(size=true.shape)
    pred = true + noise
    pred[:, 0] = true[:, 0]  # a perfect column
    r2 = plot_parity(true, pred, tmp_path / "p.png", labels=NAMES_9, title="test", r2_target=0.99)
    expected = 1 - (noise**2).sum(0) / ((true - true.mean(0)) ** 2).sum(0)
    assert r2.shape == (9,)
    assert r2[0] == 1.0
    assert np.allclose(r2[1:], expected[1:], rtol=0, atol=1e-12)
    _assert_png(tmp_path / "p.png", min_w=400, min_h=400)


def test_parity_subsamples_many_points_but_scores_all(tmp_path):
    true = np.linspace(0, 1, 20001)[:, None]
    pred = true.copy()
    pred[0] = 5.0  # an outlier that the drawn subset may miss but R^2 must see
    r2 = plot_parity(true, pred, tmp_path / "p.png", max_points=100)
    ss_tot = ((true - true.mean()) ** 2).sum()
    assert r2[0] == pytest.approx(1 - 25.0 / ss_tot, abs=1e-12)


@pytest.mark.parametrize(
    "true, pred, kwargs, match",
    [
        (np.zeros((5, 3)), np.zeros((5, 2)), {}, "pred"),
        (np.zeros((5, 3)), np.zeros((5, 3)), {"labels": ["a"]}, "labels"),
        (np.full((5, 3), np.nan), np.zeros((5, 3)), {}, "true"),
        (np.zeros((5, 3)), np.zeros((5, 3)), {"axis_labels": ("target",)}, "axis_labels: .* is not two strings"),
    ],
)
def test_parity_rejects_bad_input(tmp_path, true, pred, kwargs, match):
    with pytest.raises(ValidationError, match=match):
        plot_parity(true, pred, tmp_path / "p.png", **kwargs)


def test_parity_axis_labels_name_the_axes(tmp_path, monkeypatch):
    """The axes carry the given names (what is plotted against what), not a generic pair."""
    import matplotlib.axes

    seen = []
    monkeypatch.setattr(matplotlib.axes.Axes, "set_ylabel", lambda self, s, **kw: seen.append(("y", s)))
    monkeypatch.setattr(matplotlib.axes.Axes, "set_xlabel", lambda self, s, **kw: seen.append(("x", s)))
    rng = np.random.default_rng(1)
    t = rng.normal(size=(50, 2))
    plot_parity(t, t + 0.01, tmp_path / "p.png", axis_labels=("target", "FE of design"))
    assert set(seen) == {("x", "target"), ("y", "FE of design")}
