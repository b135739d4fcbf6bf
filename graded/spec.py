"""The build specification (``spec.yaml``): what to fill, with which cells, how graded.

A spec is validated by pydantic models with ``extra="forbid"``; every problem becomes a
:class:`graded.validation.ValidationError` whose field is the dotted path into the
YAML document (``control_points[1].cell.rho``) and whose message gives the YAML line::

    units: mm                      # only millimetres
    body:
      box: {size: [40, 10, 10], origin: [0, 0, 0]}   # or: file: implant.stl (.stl/.3mf)
    cell_size: 2.0                 # mm, edge of the reference cube of every cell
    material: {E: 114, nu: 0.3}    # GPa; Ti-6Al-4V by default
    control_points:
      - position: [0, 5, 5]        # mm, inside the body
        cell: {topology: "2x1+1x3+2x5", rho: 0.02, U: [1, 1, 1], V: [1, 1, 1],
               R1: [0, 0, 0], R2: [0, 0, 0]}    # rotations: (theta [rad], e1, e2) or 3x3
      - position: [40, 5, 5]
        target: {stiffness: [...21 constants...], units: GPa}   # or a 6x6; GPa|normalized
    zeta: 0.5                      # RBF sharpness, distances in cell sizes (SI Eq. 14)
    mu: 1                          # phase frequency: the built cell edge is cell_size / mu
    min_strut_diameter: 0.2        # mm; thinner struts are dropped
    seed: 0                        # seeds inverse design
    outputs: {directory: out, files: [stl, 3mf, beams, report, vtu, json, csv, png]}
    phase: {order: 2, spacing: 2.0}   # optional: P1/P2, mesh spacing in built cells
    loads:                         # optional: load cases for `graded simulate`
      yield_strength: 880          # MPa, base material (safety factors)
      cases:
        - name: axial
          fixed: [{face: z-}]                          # x, y, z held (components: [z] for some)
          loaded: [{face: z+, force: [0, 0, -500]}]    # N in total; or displacement: [null, null, -0.05] mm
      # regions: face: x-|x+|y-|y+|z-|z+ (of the body's bounds), plane: {point, normal},
      # box: {lo, hi}; tolerance: mm (default: a tenth of the built cell edge)

Paths (``body.file``, ``outputs.directory``) are relative to the spec file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from .validation import ValidationError

__all__ = ["Spec", "Body", "BoxBody", "ControlPoint", "CellSpec", "TargetSpec", "Material", "Outputs",
           "PhaseOptions", "Loads", "LoadCase", "Support", "AppliedLoad", "PlaneRegion", "BoxRegion",
           "OUTPUT_FILES", "format_path", "load_spec", "parse_spec"]

#: Files the graph writer can produce (``outputs.files``).
OUTPUT_FILES = ("stl", "3mf", "beams", "report", "vtu", "json", "csv", "png")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


def _vec3(v: Any, what: str) -> list[float]:
    arr = np.asarray(v, dtype=np.float64)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be three finite numbers [x, y, z]")
    return arr.tolist()


class BoxBody(_Strict):
    """An axis-aligned box ``[origin, origin + size]`` (mm)."""

    size: list[float]
    origin: list[float] = Field(default_factory=lambda: [0.0, 0.0, 0.0])

    @field_validator("size")
    @classmethod
    def _size(cls, v):
        v = _vec3(v, "size")
        if min(v) <= 0:
            raise ValueError("every edge of the box must be > 0 mm")
        return v

    @field_validator("origin")
    @classmethod
    def _origin(cls, v):
        return _vec3(v, "origin")


class Body(_Strict):
    """Exactly one of ``box`` or ``file`` (closed STL or 3MF, mm)."""

    box: BoxBody | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.box is None) == (self.file is None):
            raise ValueError("give exactly one of box or file")
        if self.file is not None and Path(self.file).suffix.lower() not in (".stl", ".3mf"):
            raise ValueError(f"file {self.file!r} is not an .stl or .3mf file")
        return self


class Material(_Strict):
    """Base material; default Ti-6Al-4V."""

    E: float = Field(114.0, gt=0, description="Young's modulus, GPa")
    nu: float = Field(0.3, gt=-1, lt=0.5, description="Poisson's ratio")


class CellSpec(_Strict):
    """An explicit unit cell (SI Table S1 parameters)."""

    topology: str
    rho: float
    U: Any = 1.0
    V: Any = 1.0
    R1: Any = Field(default_factory=lambda: [0.0, 0.0, 0.0])
    R2: Any = Field(default_factory=lambda: [0.0, 0.0, 0.0])


class TargetSpec(_Strict):
    """A target stiffness: 21 constants (upper triangle row by row) or a 6x6 Voigt matrix."""

    stiffness: Any
    units: Literal["GPa", "normalized"] = "GPa"

    @field_validator("stiffness")
    @classmethod
    def _shape(cls, v):
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("must be numbers: 21 constants or a 6x6 matrix") from None
        if not (arr.shape == (21,) or arr.shape == (6, 6)):
            raise ValueError(f"has shape {arr.shape}; give 21 constants C11, C12, ..., C66 or a 6x6 matrix")
        if not np.all(np.isfinite(arr)):
            raise ValueError("contains NaN or infinity")
        return arr.tolist()


class ControlPoint(_Strict):
    """A position (mm) with exactly one of ``cell`` or ``target``."""

    position: list[float]
    cell: CellSpec | None = None
    target: TargetSpec | None = None

    @field_validator("position")
    @classmethod
    def _pos(cls, v):
        return _vec3(v, "position")

    @model_validator(mode="after")
    def _one(self):
        if (self.cell is None) == (self.target is None):
            raise ValueError("give exactly one of cell (an explicit unit cell) or target (a stiffness)")
        return self


class Outputs(_Strict):
    """Where and what to write."""

    directory: str = "out"
    files: list[Literal["stl", "3mf", "beams", "report", "vtu", "json", "csv", "png"]] = Field(default_factory=lambda: list(OUTPUT_FILES))


class PhaseOptions(_Strict):
    """Phase-field discretisation (advanced)."""

    order: Literal[1, 2] = 2
    spacing: float = Field(2.0, gt=0, le=8, description="mesh spacing in built cell edges")


class PlaneRegion(_Strict):
    """Nodes within ``tolerance`` of the plane through ``point`` with ``normal`` (mm)."""

    point: list[float]
    normal: list[float]

    @field_validator("point")
    @classmethod
    def _point(cls, v):
        return _vec3(v, "point")

    @field_validator("normal")
    @classmethod
    def _normal(cls, v):
        v = _vec3(v, "normal")
        if np.linalg.norm(v) == 0:
            raise ValueError("normal must not be the zero vector")
        return v


class BoxRegion(_Strict):
    """Nodes inside the axis-aligned box ``[lo, hi]`` (mm), grown by ``tolerance``."""

    lo: list[float]
    hi: list[float]

    @field_validator("lo", "hi")
    @classmethod
    def _corner(cls, v):
        return _vec3(v, "corner")

    @model_validator(mode="after")
    def _order(self):
        if any(a > b for a, b in zip(self.lo, self.hi)):
            raise ValueError("lo must not exceed hi in any coordinate")
        return self


class _Region(_Strict):
    """Exactly one of ``face``, ``plane`` or ``box``; ``tolerance`` in mm."""

    face: Literal["x-", "x+", "y-", "y+", "z-", "z+"] | None = None
    plane: PlaneRegion | None = None
    box: BoxRegion | None = None
    tolerance: float | None = Field(None, gt=0, description="mm")

    @model_validator(mode="after")
    def _one_region(self):
        if sum(r is not None for r in (self.face, self.plane, self.box)) != 1:
            raise ValueError("give exactly one region: face (x-, x+, y-, y+, z-, z+), plane {point, normal} "
                             "or box {lo, hi}")
        return self


class Support(_Region):
    """A fixed region: the listed displacement components are held at zero."""

    components: list[Literal["x", "y", "z"]] = Field(default_factory=lambda: ["x", "y", "z"], min_length=1)


def _vec3_or_null(v: Any, what: str) -> list:
    if not isinstance(v, (list, tuple)) or len(v) != 3:
        raise ValueError(f"{what} must be three values [x, y, z] (null for a free component)")
    out = []
    for c in v:
        if c is None:
            out.append(None)
            continue
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not np.isfinite(c):
            raise ValueError(f"{what} must hold finite numbers or null, got {c!r}")
        out.append(float(c))
    return out


class AppliedLoad(_Region):
    """A loaded region: a total ``force`` (N) shared by its nodes, or a ``displacement`` (mm)."""

    force: list[float] | None = None
    displacement: list[float | None] | None = None

    @field_validator("force", mode="before")
    @classmethod
    def _force(cls, v):
        return None if v is None else _vec3(v, "force")

    @field_validator("displacement", mode="before")
    @classmethod
    def _disp(cls, v):
        if v is None:
            return None
        v = _vec3_or_null(v, "displacement")
        if all(c is None for c in v):
            raise ValueError("displacement prescribes no component; give at least one number")
        return v

    @model_validator(mode="after")
    def _one_load(self):
        if (self.force is None) == (self.displacement is None):
            raise ValueError("give exactly one of force [N] or displacement [mm]")
        if self.force is not None and not any(self.force):
            raise ValueError("force is zero; give the total force in N")
        return self


class LoadCase(_Strict):
    """A named load case: supports and loads."""

    name: str = Field(min_length=1)
    fixed: list[Support] = Field(min_length=1)
    loaded: list[AppliedLoad] = Field(min_length=1)


#: Plausible yield strengths of printable metals and polymers (MPa); outside it the
#: value is almost surely in the wrong unit (Pa, kPa or GPa).
YIELD_RANGE_MPA = (1.0, 5000.0)


class Loads(_Strict):
    """Load cases of ``graded simulate`` and the base material's yield strength (MPa)."""

    yield_strength: float = Field(gt=0, description="MPa")
    cases: list[LoadCase] = Field(min_length=1)

    @field_validator("yield_strength")
    @classmethod
    def _yield(cls, v):
        lo, hi = YIELD_RANGE_MPA
        if not lo <= v <= hi:
            guess = " (this looks like Pa)" if v > 1e6 else (" (this looks like GPa)" if v < lo else "")
            raise ValueError(f"{v:g} MPa is outside [{lo:g}, {hi:g}] MPa{guess}; give it in MPa, "
                             "e.g. 880 for Ti-6Al-4V")
        return v

    @model_validator(mode="after")
    def _unique(self):
        names = [c.name for c in self.cases]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"load case name {dup[0]!r} is used twice; give every case its own name")
        return self


class Spec(_Strict):
    """A validated ``spec.yaml`` (see the module docstring for every field)."""

    units: Literal["mm"] = "mm"
    body: Body
    cell_size: float = Field(gt=0, description="mm")
    material: Material = Field(default_factory=Material)
    control_points: list[ControlPoint] = Field(min_length=1)
    zeta: float = Field(0.5, gt=0)
    mu: float = Field(1.0, gt=0)
    min_strut_diameter: float = Field(0.0, ge=0, description="mm")
    seed: int = 0
    outputs: Outputs = Field(default_factory=Outputs)
    phase: PhaseOptions = Field(default_factory=PhaseOptions)
    loads: Loads | None = None

    _base: Path = PrivateAttr(default_factory=Path.cwd)
    _lines: dict = PrivateAttr(default_factory=dict)
    _source: str | None = PrivateAttr(default=None)

    @property
    def base_dir(self) -> Path:
        """Directory relative paths in the spec refer to."""
        return self._base

    @property
    def source(self) -> str | None:
        """The spec file, if it was loaded from one."""
        return self._source

    def resolve(self, path: str) -> Path:
        """A path from the spec, relative to the spec's directory."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self._base / p

    def line_of(self, path: tuple) -> int | None:
        """YAML line (1-based) of a field path such as ``("control_points", 1, "position")``."""
        path = tuple(path)
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return None

    def error(self, path: tuple, problem: str, hint: str | None = None) -> ValidationError:
        """A ValidationError for ``path`` that names its YAML line when known."""
        line = self.line_of(path)
        where = f" (line {line})" if line else ""
        return ValidationError(format_path(path), problem + where, hint)


def format_path(loc: tuple) -> str:
    """``("control_points", 1, "cell")`` -> ``control_points[1].cell``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "spec"


def _line_map(text: str) -> dict:
    """Map every key/item path of a YAML document to its 1-based line."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    lines: dict = {}

    def walk(node, path):
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                p = path + (k.value,)
                lines[p] = k.start_mark.line + 1
                walk(v, p)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                p = path + (i,)
                lines[p] = v.start_mark.line + 1
                walk(v, p)

    if root is not None:
        walk(root, ())
    return lines


_HINTS = {
    "extra_forbidden": "remove it or check its spelling",
    "missing": "add it",
    "greater_than": "give a positive value",
    "greater_than_equal": "give a non-negative value",
    "literal_error": "use one of the listed values",
}


def _convert(exc: PydanticValidationError, lines: dict) -> ValidationError:
    err = exc.errors(include_url=False)[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
    kind = err["type"]
    if kind == "extra_forbidden":
        problem = "unknown field"
    elif kind == "missing":
        problem = "is required"
    else:
        problem = err["msg"].removeprefix("Value error, ")
        if "input" in err and kind not in ("model_type",) and not isinstance(err["input"], dict):
            problem = f"{problem} (got {err['input']!r})"
    line = None
    p = loc
    while p and line is None:
        line = lines.get(p)
        p = p[:-1]
    where = f" (line {line})" if line else ""
    n_more = exc.error_count() - 1
    more = f"; {n_more} more problem(s) after this one" if n_more > 0 else ""
    return ValidationError(format_path(loc), problem + where + more, _HINTS.get(kind))


def parse_spec(data: dict | str, *, base_dir: Path | str | None = None, source: str | None = None) -> Spec:
    """Validate a spec given as a mapping or as YAML text.

    Parameters
    ----------
    data : dict or str
        The spec (YAML text gives line numbers in errors).
    base_dir : path-like, optional
        Directory that relative paths refer to (default: current directory).

    Raises
    ------
    ValidationError
        Naming the field path (and YAML line) of the first problem.
    """
    lines: dict = {}
    if isinstance(data, str):
        text = data
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ValidationError("spec", f"is not valid YAML{where}: {getattr(exc, 'problem', exc)}",
                                  "fix the YAML syntax") from None
        lines = _line_map(text)
    if not isinstance(data, dict):
        raise ValidationError("spec", f"must be a mapping of fields, got {type(data).__name__}",
                              "start the file with 'body:', 'cell_size:', 'control_points:' ...")
    try:
        spec = Spec.model_validate(data)
    except PydanticValidationError as exc:
        raise _convert(exc, lines) from None
    spec._base = Path(base_dir) if base_dir is not None else Path.cwd()
    spec._lines = lines
    spec._source = source
    return spec


def load_spec(path) -> Spec:
    """Read and validate ``spec.yaml``; relative paths inside refer to its directory."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"spec: {path} does not exist; give the path of a spec.yaml")
    return parse_spec(path.read_text(encoding="utf-8"), base_dir=path.resolve().parent, source=str(path))
