"""``session.toml``: the configuration of a multi-recording session.

Keys and defaults follow pyflowreg's session guide (the interop contract),
with two differences a user can rely on: an unknown key is an error that
names the closest known key (pyflowreg drops it silently), and recordings
are filtered to files outside the output trees with unique stems.

Paths: a relative ``root`` is relative to the directory of the config file
(so a session folder can move); ``output_root`` and ``final_results`` are
relative to ``root``.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import InputError, OptionError

__all__ = ["SessionConfig", "load_config", "STAGE1_OPTION_KEYS", "center_index"]

#: fr-compensate options settable through ``flow_options`` / ``of_options_override``
#: (pyflowreg OFOptions name -> frkit option name)
STAGE1_OPTION_KEYS = {
    "alpha": "alpha", "weight": "weight", "levels": "levels", "min_level": "min_level",
    "quality_setting": "quality", "quality": "quality", "eta": "eta", "update_lag": "update_lag",
    "iterations": "iterations", "a_smooth": "a_smooth", "a_data": "a_data", "sigma": "sigma",
    "bin_size": "bin_size", "buffer_size": "buffer_size", "reference_frames": "reference_frames",
    "update_reference": "update_reference", "update_initialization_w": "update_initialization_w",
    "cc_initialization": "cc_initialization", "cc_up": "cc_up", "channel_normalization": "channel_normalization",
    "interpolation_method": "interpolation", "interpolation": "interpolation", "save_w": "save_w",
    "output_dtype": "output_dtype",
}
#: accepted for compatibility, but only with the value stage 1 needs
PINNED_STAGE1_KEYS = {"output_format": "HDF5", "save_valid_idx": True, "save_meta_info": True}
#: accepted and ignored (they do not change frkit's results)
IGNORED_STAGE1_KEYS = {"verbose", "output_path", "input_file", "naming_convention", "output_typename",
                       "n_references", "min_frames_per_reference", "cc_hw", "constancy_assumption"}

ALIGN_FORMATS = ("TIFF", "HDF5", "MAT")
SCHEDULERS = ("local", "array", "dask")


def _closest(key: str, known) -> str:
    match = difflib.get_close_matches(key, list(known), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


@dataclass
class SessionConfig:
    """A validated session configuration (see the module docstring)."""

    root: Path
    pattern: str = "*.tif"
    center: str | None = None
    output_root: Path = Path("compensated_outputs")
    final_results: Path = Path("final_results")
    resume: bool = True
    scheduler: str = "local"
    flow_backend: str = "flowreg"
    backend_params: dict = field(default_factory=dict)
    flow_options: dict = field(default_factory=dict)
    stage1_quality_setting: str | None = None
    n_workers: int = -1
    cc_upsample: int = 4
    sigma_smooth: float = 6.0
    alpha_between: float = 25.0
    iterations_between: int = 100
    stage2_constancy_assumption: str = "gc"
    align_chunk_size: int = 64
    align_output_format: str = "TIFF"
    source: Path | None = None

    # -- paths --------------------------------------------------------------
    @property
    def output_dir(self) -> Path:
        return self.output_root if self.output_root.is_absolute() else self.root / self.output_root

    @property
    def final_dir(self) -> Path:
        return self.final_results if self.final_results.is_absolute() else self.root / self.final_results

    def recording_dir(self, recording: Path) -> Path:
        return self.output_dir / recording.stem

    # -- recordings ---------------------------------------------------------
    def recordings(self) -> list[Path]:
        """Input files: sorted (plain lexicographic), files only, outputs excluded.

        Raises InputError for an empty pattern or two inputs with one stem.
        """
        outs = [self.output_dir.resolve(), self.final_dir.resolve()]
        found = []
        for p in sorted(self.root.glob(self.pattern)):
            if not p.is_file():
                continue
            rp = p.resolve()
            if any(o == rp or o in rp.parents for o in outs):
                continue
            found.append(p)
        if not found:
            raise InputError(f"no files match pattern '{self.pattern}' in {self.root}")
        stems: dict[str, Path] = {}
        for p in found:
            if p.stem in stems:
                raise InputError(f"recordings {stems[p.stem].name} and {p.name} have the same stem '{p.stem}'; "
                                 "their outputs would collide")
            stems[p.stem] = p
        return found

    def center_index(self, recordings: list[Path] | None = None) -> int:
        recordings = self.recordings() if recordings is None else recordings
        return center_index(recordings, self.center, self.root)

    # -- stage 1 options ------------------------------------------------------
    def compensate_overrides(self) -> dict[str, Any]:
        """fr-compensate option values from ``stage1_quality_setting`` and ``flow_options``."""
        out: dict[str, Any] = {}
        if self.stage1_quality_setting:
            out["quality"] = self.stage1_quality_setting
        for key, value in self.flow_options.items():
            if key in STAGE1_OPTION_KEYS:
                out[STAGE1_OPTION_KEYS[key]] = value
        return out

    def stage_parameters(self, stage: int) -> dict:
        """The parameters that decide a stage's results (for staleness checks)."""
        if stage == 1:
            return {"compensate": self.compensate_overrides()}
        if stage == 2:
            return {k: getattr(self, k) for k in ("cc_upsample", "sigma_smooth", "alpha_between",
                                                  "iterations_between", "stage2_constancy_assumption")}
        if stage == 3:
            return {"align_chunk_size": self.align_chunk_size, "align_output_format": self.align_output_format}
        raise ValueError(stage)


def center_index(recordings: list[Path], center: str | None, root: Path) -> int:
    """0-based index of the reference recording.

    ``center`` (a path relative to ``root`` or a file name) must be one of
    the recordings; otherwise the lexicographic middle ``(N + 1) // 2 - 1``.
    """
    if center:
        want = (root / center).resolve()
        for i, p in enumerate(recordings):
            if p.resolve() == want or p.name == center:
                return i
        raise InputError(f"center '{center}' is not among the recordings ({', '.join(p.name for p in recordings)})")
    return (len(recordings) + 1) // 2 - 1


def _load_options_json(path: Path) -> dict:
    """An options file as pyflowreg and MATLAB write it: a header line, a blank line, JSON."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"flow_options file not found: {path}") from None
    start = text.find("{")
    if start < 0:
        raise InputError(f"{path}: no JSON object found")
    try:
        data = json.loads(text[start:])
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: the options must be a JSON object")
    # an options file carries every field, defaults included: keep only what
    # frkit uses, and MATLAB-only fields are not errors here
    return {k: v for k, v in data.items() if k in STAGE1_OPTION_KEYS or k in PINNED_STAGE1_KEYS}


def _check_flow_options(opts: dict, where: str) -> dict:
    known = set(STAGE1_OPTION_KEYS) | set(PINNED_STAGE1_KEYS) | IGNORED_STAGE1_KEYS
    for key, value in opts.items():
        if key not in known:
            raise OptionError(f"{where}: unknown option '{key}'{_closest(key, known)}")
        if key in PINNED_STAGE1_KEYS:
            want = PINNED_STAGE1_KEYS[key]
            ok = str(value).upper() == want if isinstance(want, str) else bool(value) == want
            if not ok:
                raise OptionError(f"{where}: {key} must be {want!r} for a session (stage 3 needs it)")
    return {k: v for k, v in opts.items() if k in STAGE1_OPTION_KEYS}


_TYPES = {
    "root": str, "pattern": str, "center": (str, type(None)), "output_root": str, "final_results": str,
    "resume": bool, "scheduler": str, "flow_backend": str, "backend_params": dict,
    "flow_options": (dict, str, type(None)), "of_options_override": dict,
    "stage1_quality_setting": (str, type(None)), "n_workers": int, "cc_upsample": int,
    "sigma_smooth": (int, float), "alpha_between": (int, float), "iterations_between": int,
    "stage2_constancy_assumption": str, "align_chunk_size": int, "align_output_format": str,
}


def load_config(path) -> SessionConfig:
    """Read and validate ``session.toml`` (or ``.json``). Errors are one line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: configuration file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(path.read_text())
        elif suffix == ".json":
            data = json.loads(path.read_text())
        else:
            raise OptionError(f"{path}: unsupported configuration format '{path.suffix}'; use .toml")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: {exc}") from None
    return config_from_mapping(data, path)


def config_from_mapping(data: dict, source: Path | None = None) -> SessionConfig:
    where = str(source) if source else "config"
    for key, value in data.items():
        if key not in _TYPES:
            raise OptionError(f"{where}: unknown key '{key}'{_closest(key, _TYPES)}")
        want = _TYPES[key]
        if isinstance(value, bool) and want in (int, (int, float)):
            raise OptionError(f"{where}: '{key}' must be a number, not {value!r}")
        if not isinstance(value, want):
            names = " or ".join(t.__name__ for t in (want if isinstance(want, tuple) else (want,)))
            raise OptionError(f"{where}: '{key}' must be {names}, not {type(value).__name__} {value!r}")
    if "root" not in data:
        raise OptionError(f"{where}: the required key 'root' is missing")
    base = source.resolve().parent if source else Path.cwd()
    root = Path(data["root"]).expanduser()
    root = root if root.is_absolute() else base / root
    if not root.exists():
        raise InputError(f"{where}: root directory does not exist: {root}")
    if not root.is_dir():
        raise InputError(f"{where}: root is not a directory: {root}")

    flow = data.get("flow_options")
    if "of_options_override" in data:
        if flow:
            raise OptionError(f"{where}: give flow_options or of_options_override, not both")
        flow = data["of_options_override"]
    if isinstance(flow, str):
        flow = flow.strip() or None
        if flow:
            p = Path(flow).expanduser()
            flow = _load_options_json(p if p.is_absolute() else root / p)
    flow = _check_flow_options(dict(flow or {}), f"{where}: flow_options")

    cfg = SessionConfig(root=root, flow_options=flow, source=source)
    for f in fields(SessionConfig):
        if f.name in data and f.name not in ("root", "flow_options"):
            value = data[f.name]
            if f.name in ("output_root", "final_results"):
                value = Path(value).expanduser()
            setattr(cfg, f.name, value)
    if cfg.scheduler not in SCHEDULERS:
        raise OptionError(f"{where}: scheduler must be one of {', '.join(SCHEDULERS)}")
    cfg.align_output_format = cfg.align_output_format.upper()
    if cfg.align_output_format not in ALIGN_FORMATS:
        raise OptionError(f"{where}: align_output_format must be one of {', '.join(ALIGN_FORMATS)}")
    if cfg.flow_backend not in ("flowreg",):
        raise OptionError(f"{where}: flow_backend '{cfg.flow_backend}' is not available; frkit implements "
                          "'flowreg' (use --device cuda for the GPU)")
    ca = cfg.stage2_constancy_assumption.strip().lower()
    if ca not in ("gc", "gradient"):
        raise OptionError(f"{where}: stage2_constancy_assumption '{ca}' is not supported; frkit uses 'gc'")
    cfg.stage2_constancy_assumption = "gc"
    if cfg.align_chunk_size < 1:
        raise OptionError(f"{where}: align_chunk_size must be >= 1")
    if cfg.iterations_between < 1:
        raise OptionError(f"{where}: iterations_between must be >= 1")
    if cfg.alpha_between <= 0 or cfg.sigma_smooth < 0:
        raise OptionError(f"{where}: alpha_between must be > 0 and sigma_smooth >= 0")
    cfg.cc_upsample = max(1, cfg.cc_upsample)
    if cfg.stage1_quality_setting is not None and cfg.stage1_quality_setting not in ("quality", "balanced", "fast"):
        raise OptionError(f"{where}: stage1_quality_setting must be quality, balanced or fast")
    return cfg
