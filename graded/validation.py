"""One place for input checks, with uniform messages.

Every check raises :class:`ValidationError` (a ``ValueError``) whose message
names the offending field, says what was wrong, and says how to fix it::

    rho: 0.5 is outside the allowed range [0.002, 0.1] (SI Table S1); pass a
    value inside it, or strict=False to leave the design space on purpose

The CLI turns these into one-line messages and exit code 2; library callers
can catch ``ValidationError`` and read ``.field``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "ValidationError",
    "fail",
    "check_finite",
    "check_positive",
    "check_range",
    "check_shape",
    "check_count",
    "check_choice",
    "check_rotation",
]


class ValidationError(ValueError):
    """Bad input. ``field`` names the parameter, ``hint`` says how to fix it."""

    def __init__(self, field: str, problem: str, hint: str | None = None):
        self.field = field
        self.problem = problem
        self.hint = hint
        msg = f"{field}: {problem}"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg)


def fail(field: str, problem: str, hint: str | None = None) -> None:
    """Raise a :class:`ValidationError` (helper for one-off checks)."""
    raise ValidationError(field, problem, hint)


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=6, separator=", ")
    return repr(value)


def check_finite(field: str, value: Any) -> np.ndarray:
    """Return ``value`` as a float64 array, or raise if it is not numeric and finite."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        fail(field, f"{_fmt(value)} is not a number", "give a finite number")
    if not np.all(np.isfinite(arr)):
        fail(field, f"{_fmt(value)} contains NaN or infinity", "give finite numbers")
    return arr


def check_positive(field: str, value: Any, *, hint: str | None = None) -> np.ndarray:
    """Finite and strictly positive (element-wise)."""
    arr = check_finite(field, value)
    if np.any(arr <= 0):
        fail(field, f"{_fmt(value)} must be > 0", hint or "give a positive value")
    return arr


def check_range(
    field: str,
    value: Any,
    lo: float,
    hi: float,
    *,
    source: str | None = None,
    hint: str | None = None,
    inclusive: bool = True,
) -> np.ndarray:
    """Finite and inside ``[lo, hi]`` (``(lo, hi)`` with ``inclusive=False``), element-wise."""
    arr = check_finite(field, value)
    out = (np.any(arr < lo) or np.any(arr > hi)) if inclusive else (np.any(arr <= lo) or np.any(arr >= hi))
    if out:
        where = f" ({source})" if source else ""
        interval = f"[{lo:g}, {hi:g}]" if inclusive else f"({lo:g}, {hi:g})"
        fail(
            field,
            f"{_fmt(value)} is outside the allowed range {interval}{where}",
            hint or "pass a value inside it",
        )
    return arr


def check_shape(field: str, value: Any, shape: tuple[int | None, ...]) -> np.ndarray:
    """Finite float array with the given shape (``None`` matches any length)."""
    arr = check_finite(field, value)
    ok = arr.ndim == len(shape) and all(s is None or s == n for s, n in zip(shape, arr.shape))
    if not ok:
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        fail(field, f"has shape {arr.shape}, expected {want}", None)
    return arr


def check_count(field: str, value: Any, minimum: int = 0, *, hint: str | None = None) -> int:
    """``value`` must be an integer (not a bool) >= ``minimum``; returned as ``int``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        fail(field, f"{_fmt(value)} is not an integer >= {minimum}", hint)
    return int(value)


def check_choice(field: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` must be one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        fail(field, f"{_fmt(value)} is not one of {choices}", "pick one of the listed values")
    return value


def check_rotation(field: str, value: Any, *, atol: float | None = None) -> np.ndarray:
    """A proper rotation matrix: shape (3, 3), R^T R = I and det R = +1."""
    from .tol import TOL

    atol = TOL.rotation if atol is None else atol
    R = check_shape(field, value, (3, 3))
    err = float(np.abs(R.T @ R - np.eye(3)).max())
    det = float(np.linalg.det(R))
    if err > atol or not math.isclose(det, 1.0, abs_tol=10 * atol):
        fail(
            field,
            f"is not a rotation matrix (|R^T R - I| = {err:.2e}, det = {det:.6g})",
            "give an orthogonal matrix with determinant +1, or an axis-angle (theta, e1, e2)",
        )
    return R
