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
    blend: {kind: interpolating, width: 3, basis: polar}   # or kind: gaussian (SI Eq. 14, uses zeta)
    zeta: 0.5                      # Gaussian sharpness, distances in cell sizes (SI Eq. 14)
    mu: 1                          # phase frequency: the built cell edge is cell_size / mu
    min_strut_diameter: 0.2        # mm; thinner struts are dropped
    skin: {thickness: 0.5}         # optional: a solid wall of 0.5 mm along the body's surface
    seed: 0                        # seeds inverse design
    design: {n_draws: 10000, tau: 1, top_k: 10, refine: true, library: 5}   # as `graded design`
    outputs: {directory: out, files: [stl, 3mf, beams, report, vtu, json, csv, png]}
    phase: {order: 2, spacing: 2.0}   # optional: P1/P2, mesh spacing in built cells
    closed_loop: {iterations: 3, tolerance: 0.01}   # as-built correction at the control points
    loads:                         # optional: load cases for `graded simulate`
      yield_strength: 880          # MPa, base material (safety factors)
      cases:
        - name: axial
          fixed: [{face: z-}]                          # x, y, z held (components: [z] for some)
          loaded: [{face: z+, force: [0, 0, -500]}]    # N in total; or displacement: [null, null, -0.05] mm
      # regions: face: x-|x+|y-|y+|z-|z+ (of the body's bounds), plane: {point, normal},
      # box: {lo, hi}; tolerance: mm (default: faces, the lattice's surface layer, 0.1-0.45 cell
      # edges chosen per face; planes and boxes, a tenth of a cell edge)

Spinodoid parts (Kumar et al. 2020) use the same document with spinodoid cells::

    family: spinodoid              # optional: implied by a spinodoid cell; needed when all points are targets
    control_points:
      - position: [10, 10, 25]
        spinodoid: {rho: 0.45, theta: [90, 90, 90], R: [0, 0, 0], wavelength: 0.2, n_waves: 1000}
      - position: [10, 10, 5]
        target: {csv: bone.csv, row: B}   # designed by the spinodoid models, FE-verified
    voxel_size: 0.2                # mm, sampling step of the part (default cell_size / 32)

Free-form voxel cells (Yang et al., guided diffusion) are generated for targets::

    family: voxel                  # every control point a target
    control_points:
      - position: [10, 10, 25]
        target: {stiffness: [...], units: GPa, volume_fraction: 0.3}   # projected onto cubic
      - position: [10, 10, 5]
        target: {csv: bone.csv, row: B}   # volume fraction optional

A control point may carry a ``name`` (used in the report). Duplicate keys, documents that
expand (through YAML aliases) to more than :data:`MAX_YAML_NODES` nodes and two control
points closer than :data:`COINCIDENT_POINTS` cell sizes are refused.

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

__all__ = ["Spec", "Body", "BoxBody", "ControlPoint", "CellSpec", "TargetSpec", "SpinodoidCellSpec", "Material",
           "Outputs", "PhaseOptions", "SkinOptions", "DesignOptions", "BlendOptions", "ClosedLoopOptions", "Loads",
           "LoadCase", "Support", "AppliedLoad", "PlaneRegion", "BoxRegion", "OUTPUT_FILES", "MAX_YAML_NODES",
           "COINCIDENT_POINTS", "format_path", "load_spec", "parse_spec"]

#: Files a build can write (``outputs.files``), all on by default; the writers are in
#: :data:`graded.io.writers.WRITERS`, which checks it knows exactly these names.
OUTPUT_FILES = ("stl", "3mf", "beams", "report", "vtu", "json", "csv", "png")
#: Largest YAML document, in nodes after expanding aliases. A spec with 100 control points
#: and 6x6 targets has about 5,000; nested aliases expand exponentially (a 456-byte
#: "billion laughs" document expands to gigabytes), so they are counted before anything
#: walks or validates the expanded tree.
MAX_YAML_NODES = 200_000
#: Two control points closer than this many cell sizes would be blended into one cell
#: that neither asked for; they are refused instead.
COINCIDENT_POINTS = 1e-3


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

    E: float = Field(114.0, gt=0, allow_inf_nan=False, description="Young's modulus, GPa")
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
    """A target stiffness: 21 constants (upper triangle row by row), a 6x6 Voigt matrix, or C11, C12, C44 (cubic).

    Or a row of a stiffness table (``csv: bone.csv, row: A``, path relative to the spec; see
    :mod:`graded.io.stiffness_csv`), read when the spec is parsed.
    """

    stiffness: Any = None
    csv: str | None = None
    row: str | int | None = None
    units: Literal["GPa", "normalized"] = "GPa"
    volume_fraction: float | None = Field(None, gt=0, lt=1, allow_inf_nan=False,
                                          description="voxel family: solid volume fraction of the cell")

    @model_validator(mode="after")
    def _source(self):
        if (self.stiffness is None) == (self.csv is None):
            raise ValueError("give exactly one of stiffness (21 constants or a 6x6 matrix) or csv (a table) with row")
        if self.row is not None and self.csv is None:
            raise ValueError("row applies to a csv table only")
        return self

    @field_validator("stiffness")
    @classmethod
    def _shape(cls, v):
        if v is None:
            return v
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("must be numbers: 21 constants or a 6x6 matrix") from None
        if not (arr.shape == (21,) or arr.shape == (6, 6) or arr.shape == (3,)):
            raise ValueError(f"has shape {arr.shape}; give 21 constants C11, C12, ..., C66, a 6x6 matrix, or the "
                             "three constants C11, C12, C44 of a cubic stiffness")
        if not np.all(np.isfinite(arr)):
            raise ValueError("contains NaN or infinity")
        if arr.shape == (3,):  # cubic: C11, C12, C44
            from .voxelcell.label import cubic_stiffness

            arr = cubic_stiffness(arr)
        from .elastic import check_admissible, from_21

        try:  # symmetric and positive definite, whatever the units
            check_admissible(arr if arr.shape == (6, 6) else from_21(arr), "stiffness")
        except ValidationError as exc:
            raise ValueError(exc.problem + (f"; {exc.hint}" if exc.hint else "")) from None
        return arr.tolist()


class SpinodoidCellSpec(_Strict):
    """An explicit spinodoid cell (Kumar et al. 2020, Eqs. 1-3; :mod:`graded.spinodoid`)."""

    rho: float = Field(allow_inf_nan=False, description="solid volume fraction, 0.3 to 1 (the paper's range)")
    theta: list[float] = Field(description="cone half-angles about the principal axes, degrees: 0 or 15-90")
    R: Any = Field(default_factory=lambda: [0.0, 0.0, 0.0], description="rotation: axis-angle or 3x3")
    wavelength: float = Field(0.2, gt=0, le=1, description="relative to the cell edge")
    n_waves: int = Field(1000, ge=1, le=100_000)


class ControlPoint(_Strict):
    """A position (mm) with exactly one of ``cell``, ``target`` or ``spinodoid``."""

    position: list[float]
    name: str | None = Field(None, min_length=1, max_length=64)
    cell: CellSpec | None = None
    target: TargetSpec | None = None
    spinodoid: SpinodoidCellSpec | None = None

    @field_validator("position")
    @classmethod
    def _pos(cls, v):
        return _vec3(v, "position")

    @model_validator(mode="after")
    def _one(self):
        if sum(v is not None for v in (self.cell, self.target, self.spinodoid)) != 1:
            raise ValueError("give exactly one of cell (an explicit unit cell), target (a stiffness) or "
                             "spinodoid (an explicit spinodoid cell)")
        return self


class Outputs(_Strict):
    """Where and what to write."""

    directory: str = "out"
    files: list[Literal["stl", "3mf", "beams", "report", "vtu", "json", "csv", "png"]] = Field(
        default_factory=lambda: list(OUTPUT_FILES))


class DesignOptions(_Strict):
    """Inverse design of the cells of targets; the defaults are those of ``graded design``."""

    n_draws: int = Field(10000, ge=1, le=1_000_000)
    tau: float = Field(1.0, gt=0, le=1000, allow_inf_nan=False)
    top_k: int = Field(10, ge=1, le=1000)
    refine: bool = True
    library: int = Field(5, ge=0, le=1000, description="nearest design-library cells polished too")


class SkinOptions(_Strict):
    """A closing solid wall along the body's surface (``graded.mesh.skin``)."""

    thickness: float = Field(gt=0, allow_inf_nan=False, description="mm, wall thickness (at least the printer minimum)")


class PhaseOptions(_Strict):
    """Phase-field discretisation (advanced)."""

    order: Literal[1, 2] = 2
    spacing: float = Field(2.0, gt=0, le=8, description="mesh spacing in built cell edges")


class BlendOptions(_Strict):
    """How the control points' cells are blended (``graded.grading.field``).

    ``interpolating``: weights exactly 1 at their own point and 0 at the others, changing
    over ``width`` cells between points; ``gaussian``: the SI's Gaussian weights (``zeta``).
    ``basis``: ``polar`` blends stretch (log-SPD) and rotation (quaternion mean) separately,
    ``linear`` sums the bases (SI Eq. 15).
    """

    kind: Literal["interpolating", "gaussian"] = "interpolating"
    width: float = Field(3.0, gt=0, description="transition width, cells")
    basis: Literal["polar", "linear"] = "polar"


class ClosedLoopOptions(_Strict):
    """As-built correction at the control points (``graded.grading.correction``).

    Each control point's cell is re-polished against the FE of its as-built local cell
    until the as-built error is within the cell's own design error + ``tolerance`` or
    ``iterations`` rebuilds were made (0 switches the correction off).
    """

    iterations: int = Field(3, ge=0, le=20)
    tolerance: float = Field(0.01, gt=0, lt=1, description="relative Frobenius error")


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
    """A loaded region: a total ``force`` (N) shared by its nodes in proportion to their tributary area, or a
    ``displacement`` (mm)."""

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
    family: Literal["truss", "spinodoid", "voxel"] | None = Field(
        None, description="cell family; default: spinodoid if a control point gives a spinodoid cell, else truss")
    body: Body
    cell_size: float = Field(gt=0, allow_inf_nan=False, description="mm")
    material: Material = Field(default_factory=Material)
    control_points: list[ControlPoint] = Field(min_length=1)
    blend: BlendOptions = Field(default_factory=BlendOptions)
    zeta: float = Field(0.5, gt=0, allow_inf_nan=False)
    mu: float = Field(1.0, gt=0, allow_inf_nan=False)
    min_strut_diameter: float = Field(0.0, ge=0, allow_inf_nan=False, description="mm")
    skin: SkinOptions | None = None
    voxel_size: float | None = Field(None, gt=0, allow_inf_nan=False,
                                     description="mm, spinodoid and voxel sampling step (default cell_size / 32)")
    seed: int = 0
    design: DesignOptions = Field(default_factory=DesignOptions)
    outputs: Outputs = Field(default_factory=Outputs)
    phase: PhaseOptions = Field(default_factory=PhaseOptions)
    closed_loop: ClosedLoopOptions = Field(default_factory=ClosedLoopOptions)

    loads: Loads | None = None

    _base: Path = PrivateAttr(default_factory=Path.cwd)
    _lines: dict = PrivateAttr(default_factory=dict)
    _source: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _one_family(self):
        # a target belongs to whichever family the part is; explicit cells name theirs
        kinds = [("spinodoid" if cp.spinodoid is not None else "truss", i) for i, cp in enumerate(self.control_points)
                 if cp.target is None]
        if self.family == "voxel" and kinds:
            raise ValueError(f"control_points[{kinds[0][1]}] is an explicit {kinds[0][0]} cell, but the cells of a "
                             "voxel part are generated: give every control point a target")
        if self.family != "voxel":
            for i, cp in enumerate(self.control_points):
                if cp.target is not None and cp.target.volume_fraction is not None:
                    raise ValueError(f"control_points[{i}].target.volume_fraction applies to family: voxel only; "
                                     "drop it, or set family: voxel")
        for k, i in kinds:
            if self.family is not None and k != self.family:
                raise ValueError(f"control_points[{i}] is a {k} cell but the spec says family: {self.family}; "
                                 f"give it a {self.family} cell (or a target), or change family")
            if k != kinds[0][0]:
                raise ValueError(f"control_points[{i}] is a {k} cell but control_points[{kinds[0][1]}] a "
                                 f"{kinds[0][0]} cell; one part is one family: give every control point a cell "
                                 "of the same family")
        if self.family is None:  # resolved once: spinodoid if an explicit cell is one, else truss
            self.__dict__["family"] = kinds[0][0] if kinds else "truss"
        return self

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


class _SpecLoader(yaml.SafeLoader):
    """Safe YAML loader that refuses duplicate keys (instead of keeping the last one)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # unhashable key: let the base class say so
                continue
            if first != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first})", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root) -> int:
    """Number of nodes of a composed YAML tree with every alias expanded (memoised, linear time)."""
    memo: dict[int, int] = {}

    def size(node) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        memo[key] = 1  # a recursive alias counts once (safe_load builds a cycle, not a tree)
        if isinstance(node, yaml.MappingNode):
            n = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            n = 1 + sum(size(v) for v in node.value)
        else:
            n = 1
        memo[key] = n
        return n

    return size(root)


def _load_yaml(text: str):
    """(data, root node) of a YAML document, refusing bombs, duplicate keys and bad syntax."""
    loader = _SpecLoader(text)
    try:
        try:
            root = loader.get_single_node()
            if root is not None:
                n = _expanded_size(root)
                if n > MAX_YAML_NODES:
                    raise ValidationError("spec", f"expands to {n:,} YAML nodes through aliases (at most "
                                          f"{MAX_YAML_NODES:,})", "write the values out instead of nesting aliases")
            data = loader.construct_document(root) if root is not None else None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ValidationError("spec", f"is not valid YAML{where}: {getattr(exc, 'problem', exc)}",
                                  "fix the YAML syntax") from None
    finally:
        loader.dispose()
    return data, root


def _line_map(root) -> dict:
    """Map every key/item path of a composed YAML document to its 1-based line.

    Each node is walked once: an aliased subtree keeps the lines of its anchor.
    """
    lines: dict = {}
    seen: set[int] = set()

    def walk(node, path):
        if id(node) in seen:
            return
        seen.add(id(node))
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
    "value_error": "correct the value",
    "float_parsing": "give a number",
    "float_type": "give a number",
    "int_parsing": "give a whole number",
    "int_type": "give a whole number",
    "int_from_float": "give a whole number",
    "finite_number": "give a finite number",
    "too_short": "give at least one",
    "too_long": "give fewer",
    "string_type": "give text",
    "string_too_short": "give a non-empty text",
    "string_too_long": "give a shorter text",
    "list_type": "give a list [a, b, ...]",
    "bool_parsing": "give true or false",
    "bool_type": "give true or false",
    "less_than": "give a smaller value",
    "less_than_equal": "give a smaller value",
}

#: Longest echo of a bad value in a message (a 6x6 matrix would fill the screen).
_MAX_ECHO = 60


#: How each mapping of the spec is written, for "must be a mapping" errors.
_FORMS = {
    "body": "write body: {box: {size: [x, y, z]}} or body: {file: part.stl}",
    "box": "write box: {size: [x, y, z], origin: [x, y, z]} (mm)",
    "material": "write material: {E: 114, nu: 0.3} (E in GPa)",
    "cell": "write cell: {topology: 1x2, rho: 0.02, U: [1, 1, 1], V: [1, 1, 1], R1: [0, 0, 0], R2: [0, 0, 0]}",
    "target": "write target: {stiffness: [21 constants], units: GPa}",
    "outputs": "write outputs: {directory: out, files: [stl, 3mf, report]}",
    "phase": "write phase: {order: 2, spacing: 2.0}",
    "design": "write design: {n_draws: 10000, tau: 1, top_k: 10, refine: true, library: 5}",
}


def _convert(exc: PydanticValidationError, lines: dict) -> ValidationError:
    err = exc.errors(include_url=False)[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
    kind = err["type"]
    hint = _HINTS.get(kind)
    if kind == "extra_forbidden":
        problem = "unknown field"
    elif kind == "missing":
        problem = "is required"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        problem = f"must be a mapping of fields, got {type(err.get('input')).__name__}"
        last = next((p for p in reversed(loc) if isinstance(p, str)), "")
        hint = _FORMS.get(last, "write it as a mapping of its fields")
    else:
        problem = err["msg"].removeprefix("Value error, ")
        if "input" in err and kind not in ("model_type",) and not isinstance(err["input"], dict):
            got = repr(err["input"])
            got = got if len(got) <= _MAX_ECHO else got[: _MAX_ECHO - 3] + "..."
            problem = f"{problem} (got {got})"
    line = None
    p = loc
    while p and line is None:
        line = lines.get(p)
        p = p[:-1]
    where = f" (line {line})" if line else ""
    n_more = exc.error_count() - 1
    more = f"; {n_more} more problem(s) after this one" if n_more > 0 else ""
    return ValidationError(format_path(loc), problem + where + more, hint)


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
        data, root = _load_yaml(data)
        lines = _line_map(root)
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
    _check_points(spec)
    _read_tables(spec)
    return spec


def _read_tables(spec: Spec) -> None:
    """Replace every ``target: {csv, row}`` by the stiffness of that row (validated like any target)."""
    from .io.stiffness_csv import read_stiffness_csv, select_row

    for i, cp in enumerate(spec.control_points):
        t = cp.target
        if t is None or t.csv is None:
            continue
        path = ("control_points", i, "target")
        try:
            rows = read_stiffness_csv(spec.resolve(t.csv), field=format_path(path + ("csv",)))
            chosen = select_row(rows, t.row, field=format_path(path + ("row",)), where=t.csv)
            checked = TargetSpec(stiffness=chosen.values.reshape(6, 6).tolist() if chosen.values.size == 36
                                 else chosen.values.tolist(), units=t.units)
        except ValidationError as exc:
            key = exc.field.rsplit(".", 1)[-1]
            raise spec.error(path + (key,), exc.problem, exc.hint) from None
        except PydanticValidationError as exc:
            err = exc.errors(include_url=False)[0]
            raise spec.error(path + ("csv",), f"row {chosen.name or chosen.index} of {t.csv}: "
                             + err["msg"].removeprefix("Value error, "), "correct the table") from None
        # frozen models: replace the target in place of the table reference
        object.__setattr__(cp, "target", checked.model_copy(update={"csv": t.csv, "row": chosen.name or chosen.index}))

def _check_points(spec: Spec) -> None:
    """Refuse coincident control points and repeated names (they would be blended silently)."""
    pts = np.array([cp.position for cp in spec.control_points], dtype=np.float64)
    for i in range(1, len(pts)):
        d = np.linalg.norm(pts[:i] - pts[i], axis=1)
        j = int(np.argmin(d))
        if d[j] < COINCIDENT_POINTS * spec.cell_size:
            raise spec.error(("control_points", i, "position"), f"is the position of control_points[{j}]",
                             "give each control point its own position (merge the two into one)")
    seen: dict = {}
    for i, cp in enumerate(spec.control_points):
        if cp.name is not None and seen.setdefault(cp.name, i) != i:
            raise spec.error(("control_points", i, "name"), f"{cp.name!r} is already the name of "
                             f"control_points[{seen[cp.name]}]", "give every control point its own name")


def load_spec(path) -> Spec:
    """Read and validate ``spec.yaml``; relative paths inside refer to its directory."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"spec: {path} does not exist; give the path of a spec.yaml")
    return parse_spec(path.read_text(encoding="utf-8"), base_dir=path.resolve().parent, source=str(path))
