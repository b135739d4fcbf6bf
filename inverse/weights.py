"""Saving and loading network weights: safetensors + a JSON sidecar. Never unpickles.

A model ``NAME`` is two files side by side:

* ``NAME.safetensors`` -- every tensor of the model's state dict (safetensors stores
  raw arrays and a JSON header, so loading cannot execute code);
* ``NAME.json`` -- ``{"format": "graded-weights", "format_version": 1, "kind": ...,
  "config": ..., "sha256": ..., "info": ...}``: the architecture and scalers needed to
  rebuild the model, the SHA-256 of the tensor file, and free-form training information.

Loading checks, in order: the sidecar is valid JSON of this format and kind; the
architecture it describes, built on torch's ``meta`` device (no memory), has exactly the
tensor names, shapes and dtypes of the tensor file's header (so an enlarged config is refused
before a real model is allocated); the tensor file's SHA-256 matches; it parses as
safetensors; its tensors again match the rebuilt model; every value is finite. Any failure
raises :class:`WeightsError` saying what is wrong -- a tampered, truncated or foreign
file never reaches the model.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from graded.io.atomic import atomic_path
from graded.validation import ValidationError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "WEIGHTS_DIR",
    "WeightsError",
    "save_weights",
    "load_weights",
    "read_sidecar",
    "load_forward",
    "load_inverse",
    "load_model",
]

FORMAT = "graded-weights"
FORMAT_VERSION = 1
#: Directory of the shipped weights (package data).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class WeightsError(ValidationError):
    """A weights file is missing, damaged, tampered with or belongs to something else."""

    def __init__(self, path: str | os.PathLike, problem: str, hint: str | None = None):
        super().__init__(f"weights {os.fspath(path)}", problem, hint or "re-train or re-install the weights")


def _paths(stem: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(stem)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_suffix(".safetensors"), p.with_suffix(".json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_weights(
    model: torch.nn.Module, stem: str | os.PathLike, *, kind: str, config: dict[str, Any], info: dict | None = None
) -> tuple[Path, Path]:
    """Write ``stem.safetensors`` and ``stem.json`` atomically.

    Parameters
    ----------
    model : torch.nn.Module
        Its state dict is saved (tensors copied to contiguous CPU memory).
    stem : path
        File name without suffix (a ``.safetensors``/``.json`` suffix is stripped).
    kind : str
        ``"forward"`` or ``"inverse"``; checked on load.
    config : dict
        JSON-ready architecture and scalers.
    info : dict, optional
        Anything JSON-ready (training data, times, accuracy).

    Returns
    -------
    (Path, Path)
        The tensor file and the sidecar.
    """
    from safetensors.torch import save_file

    st_path, js_path = _paths(stem)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(st_path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "kind": kind})
    side = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": config,
        "sha256": _sha256(st_path),
        "info": info or {},
    }

    with atomic_path(js_path) as tmp:
        tmp.write_text(json.dumps(side, indent=1) + "\n")
    return st_path, js_path


def read_sidecar(stem: str | os.PathLike, *, kind: str) -> dict[str, Any]:
    """Read and check the JSON sidecar of ``stem`` (format, version, kind, hash present)."""
    _, js_path = _paths(stem)
    if not js_path.is_file():
        raise WeightsError(js_path, "sidecar file not found", "give the path of a saved model (NAME or NAME.json)")
    try:
        with open(js_path, encoding="utf-8") as f:
            side = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(js_path, f"sidecar is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(side, dict) or side.get("format") != FORMAT:
        raise WeightsError(js_path, f"is not a {FORMAT} sidecar")
    if side.get("format_version") != FORMAT_VERSION:
        raise WeightsError(js_path, f"format_version {side.get('format_version')!r} is not {FORMAT_VERSION}",
                           "use the graded version that wrote it")
    if side.get("kind") != kind:
        raise WeightsError(js_path, f"holds a {side.get('kind')!r} model, expected {kind!r}")
    if not isinstance(side.get("sha256"), str) or not isinstance(side.get("config"), dict):
        raise WeightsError(js_path, "sidecar lacks 'sha256' or 'config'")
    return side


def load_weights(model: torch.nn.Module, stem: str | os.PathLike, side: dict[str, Any]) -> torch.nn.Module:
    """Load the tensors of ``stem.safetensors`` into ``model`` after every check (module docstring)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    st_path, _ = _paths(stem)
    if not st_path.is_file():
        raise WeightsError(st_path, "tensor file not found")
    digest = _sha256(st_path)
    if digest != side["sha256"]:
        raise WeightsError(st_path, "SHA-256 does not match its sidecar: the file was modified or replaced",
                           "restore the original file or re-train")
    try:
        tensors = load_file(os.fspath(st_path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(st_path, f"is not a readable safetensors file ({exc})") from None
    expected = model.state_dict()
    if set(tensors) != set(expected):
        missing = sorted(set(expected) - set(tensors))[:3]
        extra = sorted(set(tensors) - set(expected))[:3]
        raise WeightsError(st_path, f"tensor names differ from the model (missing {missing}, unexpected {extra})")
    for k, v in expected.items():
        t = tensors[k]
        if t.shape != v.shape or t.dtype != v.dtype:
            raise WeightsError(st_path, f"tensor {k!r} has shape {tuple(t.shape)} {t.dtype}, "
                                        f"expected {tuple(v.shape)} {v.dtype}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise WeightsError(st_path, f"tensor {k!r} contains NaN or infinity")
    model.load_state_dict(tensors, strict=True)
    return model


_ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
              "BOOL": torch.bool}


def _check_tensor_headers(st_path: Path, expected: dict[str, torch.Tensor]) -> None:
    """Compare the safetensors header (names, shapes, dtypes; no data read) with ``expected``."""
    from safetensors import SafetensorError, safe_open

    if not st_path.is_file():
        raise WeightsError(st_path, "tensor file not found")
    try:
        with safe_open(os.fspath(st_path), framework="pt") as f:
            slices = {k: f.get_slice(k) for k in f.keys()}
            stored = {k: (tuple(sl.get_shape()), sl.get_dtype()) for k, sl in slices.items()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(st_path, f"is not a readable safetensors file ({exc})") from None
    if set(stored) != set(expected):
        missing = sorted(set(expected) - set(stored))[:3]
        extra = sorted(set(stored) - set(expected))[:3]
        raise WeightsError(st_path, f"tensor names differ from the model (missing {missing}, unexpected {extra})")
    for k, v in expected.items():
        shape, dtype = stored[k]
        if shape != tuple(v.shape) or _ST_DTYPES.get(dtype) != v.dtype:
            raise WeightsError(st_path, f"tensor {k!r} has shape {shape} {dtype}, "
                                        f"expected {tuple(v.shape)} {v.dtype}")


def load_model(stem, kind: str, config_cls, model_cls):
    """Load a model of ``kind`` from ``stem`` (default: the shipped ``WEIGHTS_DIR / kind``) after every check."""
    stem = WEIGHTS_DIR / kind if stem is None else stem
    side = read_sidecar(stem, kind=kind)
    try:
        config = config_cls.from_dict(side["config"])
        # the architecture the sidecar describes, without memory: checked against the tensor
        # file's header before a real model is allocated (an enlarged config costs nothing)
        with torch.device("meta"):
            skeleton = model_cls(config)
    except ValidationError as exc:
        raise WeightsError(_paths(stem)[1], f"config cannot build a model ({exc})") from None
    _check_tensor_headers(_paths(stem)[0], skeleton.state_dict())
    model = model_cls(config)
    load_weights(model, stem, side)
    model.info = side.get("info", {})
    model.sha256 = side["sha256"]  # checked against the weights file by load_weights
    return model.eval()


def load_forward(stem: str | os.PathLike | None = None):
    """Load a :class:`~graded.inverse.forward.ForwardModel` (default: the shipped one), in eval mode."""
    from .forward import ForwardConfig, ForwardModel

    return load_model(stem, "forward", ForwardConfig, ForwardModel)


def load_inverse(stem: str | os.PathLike | None = None):
    """Load an :class:`~graded.inverse.inverse_model.InverseModel` (default: the shipped one), in eval mode."""
    from .inverse_model import InverseConfig, InverseModel

    return load_model(stem, "inverse", InverseConfig, InverseModel)
