"""Weights: safetensors + JSON sidecar round trip; tampered, foreign, pickled or
mismatched files fail with a clear error and are never unpickled; shipped weights load."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from graded.inverse.forward import ForwardConfig, ForwardModel, topology_onehot
from graded.inverse.inverse_model import InverseConfig, InverseModel
from graded.inverse.sampling import sample_designs
from graded.inverse.weights import (
    WEIGHTS_DIR,
    WeightsError,
    _sha256,
    load_forward,
    load_inverse,
    read_sidecar,
    save_weights,
)
from graded.validation import ValidationError


def _forward() -> ForwardModel:
    torch.manual_seed(0)
    return ForwardModel(ForwardConfig(f1_widths=[8], f2_widths=[8])).eval()


def _save(tmp_path, model=None):
    model = model or _forward()
    stem = tmp_path / "fwd"
    save_weights(model, stem, kind="forward", config=model.config.to_dict(), info={"note": "test"})
    return model, stem


def _rehash(stem) -> None:
    """Make the sidecar's hash match a replaced tensor file (an attacker's best effort)."""
    js = stem.with_suffix(".json")
    side = json.loads(js.read_text())
    side["sha256"] = _sha256(stem.with_suffix(".safetensors"))
    js.write_text(json.dumps(side))


def test_round_trip_gives_identical_predictions(tmp_path):
    model, stem = _save(tmp_path)
    loaded = load_forward(stem)
    d = sample_designs(5, np.random.default_rng(0))
    args = (topology_onehot(d.topology),) + tuple(torch.as_tensor(a, dtype=torch.float32)
                                                  for a in (d.rho, d.U, d.V, d.R1, d.R2))
    with torch.no_grad():
        assert torch.equal(model(*args), loaded(*args))
    assert loaded.info == {"note": "test"}
    # the stem may be given with either suffix
    load_forward(str(stem) + ".json")
    load_forward(str(stem) + ".safetensors")


def test_tampered_tensor_file_is_rejected_by_its_hash(tmp_path):
    _, stem = _save(tmp_path)
    st = stem.with_suffix(".safetensors")
    raw = bytearray(st.read_bytes())
    raw[-5] ^= 0xFF
    st.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="SHA-256 does not match"):
        load_forward(stem)


def test_foreign_bytes_are_rejected_even_with_a_matching_hash(tmp_path):
    _, stem = _save(tmp_path)
    stem.with_suffix(".safetensors").write_bytes(b"\x00\x01 definitely not a tensor file" * 10)
    _rehash(stem)
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        load_forward(stem)


class _Payload:
    """Unpickling this would create a marker file."""

    marker = None

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_is_never_unpickled(tmp_path):
    _, stem = _save(tmp_path)
    marker = tmp_path / "pwned"
    _Payload.marker = marker
    with open(stem.with_suffix(".safetensors"), "wb") as f:
        pickle.dump({"f1.0.weight": _Payload()}, f)
    _rehash(stem)
    with pytest.raises(WeightsError):
        load_forward(stem)
    assert not marker.exists()


def test_mismatched_architecture_kind_and_values_are_rejected(tmp_path):
    model, stem = _save(tmp_path)
    js = stem.with_suffix(".json")
    side = json.loads(js.read_text())
    # a sidecar describing another architecture
    side2 = dict(side, config=dict(side["config"], f1_widths=[9]))
    js.write_text(json.dumps(side2))
    with pytest.raises(WeightsError, match="shape"):
        load_forward(stem)
    # absurd sizes are refused before any allocation
    js.write_text(json.dumps(dict(side, config=dict(side["config"], f2_widths=[10**9]))))
    with pytest.raises(WeightsError, match="config"):
        load_forward(stem)
    # widths the config check allows but the tensor file does not hold: refused from the
    # header, before the 4.3 GB model the config describes is allocated
    big = dict(side, config=dict(side["config"], f2_widths=[8192] * 16))
    js.write_text(json.dumps(big))
    # the peak resident memory of the child's own address space (VmHWM; ru_maxrss would also count
    # the parent's memory the child had before exec)
    code = ("from graded.inverse.weights import load_forward, WeightsError\n"
            f"try:\n    load_forward({str(stem)!r})\nexcept WeightsError as e:\n    print(e)\n"
            "print([ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    message, maxrss_kb = out.stdout.strip().splitlines()
    assert "fwd.safetensors: tensor names differ from the model (missing ['f2.10.bias'" in message
    assert int(maxrss_kb) < 1.5e6  # KB: torch itself, not a 4 GB model
    # wrong kind
    js.write_text(json.dumps(side))
    with pytest.raises(WeightsError, match="expected 'inverse'"):
        load_inverse(stem)
    # not JSON / not our format
    js.write_text("{ broken")
    with pytest.raises(WeightsError, match="not valid JSON"):
        load_forward(stem)
    js.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(WeightsError, match="is not a graded-weights sidecar"):
        read_sidecar(stem, kind="forward")
    # NaN weights
    js.write_text(json.dumps(side))
    with torch.no_grad():
        model.f1[0].weight[0, 0] = float("nan")
    save_weights(model, stem, kind="forward", config=model.config.to_dict())
    with pytest.raises(WeightsError, match="NaN"):
        load_forward(stem)
    # missing files
    with pytest.raises(WeightsError, match="not found"):
        load_forward(tmp_path / "nothing")
    assert issubclass(WeightsError, ValidationError)


def test_inverse_round_trip(tmp_path):
    torch.manual_seed(1)
    m = InverseModel(InverseConfig(g1_widths=[8], g2_widths=[8])).eval()
    save_weights(m, tmp_path / "inv", kind="inverse", config=m.config.to_dict())
    m2 = load_inverse(tmp_path / "inv")
    C = torch.eye(6).expand(3, 6, 6) * 0.02
    with torch.no_grad():
        a, b = m(C, sample=False), m2(C, sample=False)
    assert torch.equal(a.rho, b.rho) and torch.equal(a.R2, b.R2) and torch.equal(a.z, b.z)
    assert m2.config.reach == m.config.reach
    assert a.logits.shape[-1] == 560


def test_dropped_network_variants_are_refused_with_a_clear_error():
    """Files of the dropped experiment variants (three-slot G1, F2 without the push-forward
    or the design features) say what they are instead of failing deep in load_state_dict."""
    inv = InverseConfig(g1_widths=[8], g2_widths=[8]).to_dict()
    assert inv["joint_topology"] is True and InverseConfig.from_dict(inv).n_heads == 1
    for bad in (inv | {"joint_topology": False}, {k: v for k, v in inv.items() if k != "joint_topology"}):
        with pytest.raises(ValidationError, match="three independent topology slots.*graded train inverse"):
            InverseConfig.from_dict(bad)
    fwd = ForwardConfig(f1_widths=[8], f2_widths=[8]).to_dict()
    assert fwd["f2_push"] is True and fwd["f2_design"] is True
    for key in ("f2_push", "f2_design"):
        with pytest.raises(ValidationError, match=f"{key} = False: an F2 variant.*graded train forward"):
            ForwardConfig.from_dict(fwd | {key: False})


def test_shipped_weights_load_and_match_their_hashes():
    fwd = load_forward()
    inv = load_inverse()
    assert fwd.info["dataset"]["n"] >= 200_000
    side = read_sidecar(WEIGHTS_DIR / "inverse", kind="inverse")
    # the shipped inverse model was trained through the shipped forward model
    assert side["info"]["forward_sha256"] == read_sidecar(WEIGHTS_DIR / "forward", kind="forward")["sha256"]
    assert inv.config.canonical and inv.config.n_heads == 4
