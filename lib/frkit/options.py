"""Every parameter of frkit, declared once.

A :class:`Param` holds everything about one parameter: its name (the key in
the records), default, kind (type, bounds and parsing), help text, the
``session.toml`` keys that set it (frkit's spelling and the peers') and its
command-line flags. Everything else derives from it:

* the command-line options and their ``--help`` (:mod:`frkit.cli.harness`);
* the ``session.toml`` parsing (:mod:`frkit.session.config`);
* validation, with one error line that names where a bad value came from
  (``--alpha`` or ``flow_options.alpha in session.toml``);
* the parameters recorded in each output's record, and the Make staleness
  stamps: values are normalized when parsed (``alpha = 2`` and
  ``alpha = [2, 2]`` are both ``(2.0, 2.0)``), so equivalent spellings
  never recompute anything;
* the README's option tables (:func:`markdown_table`, checked by a test).

The tuples at the end (``COMPENSATE``, ``ALIGN``, ...) say which tool takes
which parameters; fr-compensate and fr-align share the declarations of the
flow method's parameters and differ only in defaults and keys.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import OptionError

__all__ = ["Param", "Values", "resolve", "markdown_table", "COMPENSATE", "ALIGN", "AVERAGE", "MASK", "REPROJECT",
           "APPLY_FLOW", "QC", "SESSION", "STAGE1_TABLE", "QUALITY_MIN_LEVEL", "FLOW_SMOOTHING_AUTO", "ALIGN_SEED",
           "ALIGN_AUTO"]


# -- kinds: how a value is read, checked and shown ---------------------------------------------------------------

def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class Kind:
    """How one kind of value is parsed from text (the command line) or a TOML/JSON value."""

    metavar = "VALUE"

    def parse(self, value, text: bool):
        raise NotImplementedError

    def show(self, value) -> str:
        return str(value)

    def describe(self) -> str:
        return self.metavar.lower()


@dataclass(frozen=True)
class Number(Kind):
    """An int or float with optional bounds; ``gt``/``lt`` exclusive, ``ge``/``le`` inclusive."""

    integer: bool = False
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    auto: bool = False  # also accept "auto" (the tool chooses)

    @property
    def metavar(self):
        return ("auto|" if self.auto else "") + ("N" if self.integer else "X")

    def bounds(self) -> str:
        parts = [f">= {self.ge:g}" if self.ge is not None else "", f"> {self.gt:g}" if self.gt is not None else "",
                 f"<= {self.le:g}" if self.le is not None else ""]
        return " and ".join(p for p in parts if p)

    def describe(self):
        what = "an integer" if self.integer else "a number"
        return ("auto or " if self.auto else "") + f"{what} {self.bounds()}".strip()

    def one(self, value, text: bool):
        raw = value
        if text:
            try:
                value = int(value) if self.integer else float(value)
            except (TypeError, ValueError):
                raise ValueError(f"must be {self.describe()}, not {value!r}") from None
        if not _is_number(value) or (self.integer and not isinstance(value, int)) or not math.isfinite(value):
            raise ValueError(f"must be {self.describe()}, not {value!r}")
        ok = ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
              and (self.le is None or value <= self.le))
        if not ok:
            raise ValueError(f"must be {self.bounds()}, not {raw if text else repr(value)}")
        return int(value) if self.integer else float(value)

    def parse(self, value, text):
        if self.auto and isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        return self.one(value, text)


@dataclass(frozen=True)
class Numbers(Number):
    """One number or several (``"1.5,2"`` or ``[1.5, 2]``); ``count`` 2 makes a pair (one value is repeated)."""

    count: int | None = None
    positive_sum: bool = False
    auto: bool = False  # also accept "auto" (the tool chooses from the data)

    @property
    def metavar(self):
        return ("auto|" if self.auto else "") + ("A[,B]" if self.count == 2 else "X1,X2,..")

    def describe(self):
        what = f"one or two numbers {self.bounds()}" if self.count == 2 else f"numbers {self.bounds()}".strip()
        return f"auto or {what}" if self.auto else what

    def parse(self, value, text):
        if self.auto and isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        if text:
            items = [x for x in str(value).replace(" ", "").split(",") if x != ""]
        else:
            items = list(value) if isinstance(value, (list, tuple)) else [value]
        if not items or (self.count is not None and len(items) not in (1, self.count)):
            raise ValueError(f"must be {self.describe()}, not {value!r}")
        out = tuple(self.one(x, text) for x in items)
        if self.count == 2 and len(out) == 1:
            out = out * 2
        if self.positive_sum and sum(out) <= 0:
            raise ValueError(f"needs a positive sum, not {value!r}")
        return out

    def show(self, value):
        return value if value == "auto" else ",".join(f"{x:g}" for x in value)


@dataclass(frozen=True)
class Choice(Kind):
    """One of ``values``; ``aliases`` map other spellings; ``fold`` normalizes case."""

    values: tuple[str, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    fold: str | None = None  # "lower" or "upper"
    refused: tuple[tuple[str, str], ...] = ()  # (value, why frkit refuses it): a peer's value, never ignored

    @property
    def metavar(self):
        return "|".join(self.values)

    def describe(self):
        return "one of " + ", ".join(self.values)

    def parse(self, value, text):
        if not isinstance(value, str):
            raise ValueError(f"must be {self.describe()}, not {value!r}")
        v = getattr(value.strip(), self.fold)() if self.fold else value.strip()
        v = dict(self.aliases).get(v, v)
        if v in dict(self.refused):
            raise ValueError(f"{v!r} is not supported: {dict(self.refused)[v]}")
        if v not in self.values:
            raise ValueError(f"must be {self.describe()}, not {value!r}")
        return v


@dataclass(frozen=True)
class Device(Kind):
    """``cpu``, ``cuda`` or ``cuda:N``."""

    metavar = "cpu|cuda[:N]"

    def describe(self):
        return "cpu, cuda or cuda:N"

    def parse(self, value, text):
        v = value.strip().lower() if isinstance(value, str) else value
        if not isinstance(v, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", v):
            raise ValueError(f"must be {self.describe()}, not {value!r}")
        return v


@dataclass(frozen=True)
class Flag(Kind):
    """true or false; on the command line ``--name`` (and ``--no-name`` when ``negatable``)."""

    negatable: bool = True
    metavar = "BOOL"

    def describe(self):
        return "true or false"

    def parse(self, value, text):
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, not {value!r}")
        return value

    def show(self, value):
        return "on" if value else "off"


@dataclass(frozen=True)
class Text(Kind):
    """A string (``path``: a file system path, kept as given)."""

    path: bool = False
    many: bool = False  # repeatable flag / TOML list

    @property
    def metavar(self):
        return "PATH" if self.path else "TEXT"

    def describe(self):
        return "a path" if self.path else "a string"

    def parse(self, value, text):
        items = value if self.many and isinstance(value, (list, tuple)) else [value]
        if not all(isinstance(v, str) and v for v in items):
            raise ValueError(f"must be {self.describe()}, not {value!r}")
        return tuple(items) if self.many else items[0]


@dataclass(frozen=True)
class Frames(Kind):
    """Frame indices: ``"START:STOP"`` (0-based, STOP excluded) or a list ``0,5,9``."""

    metavar = "START:STOP"

    def describe(self):
        return "START:STOP (0-based, STOP excluded) or a list of frame indices"

    def parse(self, value, text):
        try:
            if isinstance(value, str) and ":" in value:
                a, _, b = value.replace(" ", "").partition(":")
                start, stop = int(a or 0), int(b)
                if start < 0 or stop <= start:
                    raise ValueError
                return tuple(range(start, stop))
            items = [int(x) for x in value.replace(" ", "").split(",") if x] if (text and isinstance(value, str)) \
                else value
            if (not isinstance(items, (list, tuple)) or not items
                    or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in items)):
                raise ValueError
            return tuple(items)
        except (TypeError, ValueError):
            raise ValueError(f"must be {self.describe()}, not {value!r}") from None

    def show(self, value):
        return f"{value[0]}:{value[-1] + 1}"


@dataclass(frozen=True)
class Span(Kind):
    """A contiguous range of frames ``"START:STOP"`` (0-based, STOP excluded), kept as ``(start, stop)``."""

    metavar = "START:STOP"

    def describe(self):
        return "START:STOP (0-based, STOP excluded)"

    def parse(self, value, text):
        if isinstance(value, (list, tuple)) and len(value) == 2:
            value = f"{value[0]}:{value[1]}"
        a, colon, b = str(value).replace(" ", "").partition(":") if isinstance(value, str) else ("", "", "")
        if not colon or not a.isdigit() or not b.isdigit() or int(b) <= int(a):
            raise ValueError(f"must be {self.describe()} with STOP > START, not {value!r}")
        return (int(a), int(b))

    def show(self, value):
        return f"{value[0]}:{value[1]}"


@dataclass(frozen=True)
class Sigma(Kind):
    """Gaussian sigmas ``rows,cols,time``, one row per channel (``'1,1,0.1;2,2,0.1'`` or ``[[1,1,0.1], ...]``)."""

    metavar = "R,C,T[;R,C,T]"

    def describe(self):
        return "three numbers >= 0 (rows, cols, time) per channel"

    def parse(self, value, text):
        num = Number(ge=0)
        if text:
            rows = [r.split(",") for r in str(value).replace(" ", "").split(";") if r]
        else:
            rows = [value] if isinstance(value, (list, tuple)) and value and all(map(_is_number, value)) else value
        try:
            if not isinstance(rows, (list, tuple)) or not rows or any(len(r) != 3 for r in rows):
                raise ValueError
            return tuple(tuple(num.one(x, text) for x in r) for r in rows)
        except (TypeError, ValueError):
            raise ValueError(f"must be {self.describe()}, not {value!r}") from None

    def show(self, value):
        return ";".join(",".join(f"{x:g}" for x in r) for r in value)


@dataclass(frozen=True)
class PlaneList(Kind):
    """``"all"`` or a list of 0-based plane indices (configuration only)."""

    def describe(self):
        return '"all" or a list of 0-based plane indices'

    def parse(self, value, text):
        if isinstance(value, str) and value.strip().lower() == "all":
            return "all"
        if (isinstance(value, (list, tuple)) and value
                and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value)):
            return tuple(sorted(set(value)))
        raise ValueError(f"must be {self.describe()}, not {value!r}")


@dataclass(frozen=True)
class Table(Kind):
    """A TOML table (configuration only)."""

    def parse(self, value, text):
        if not isinstance(value, dict):
            raise ValueError(f"must be a table, not {value!r}")
        return dict(value)


@dataclass(frozen=True)
class Fixed(Kind):
    """Accepted for compatibility with the peers' configs, but only with this value."""

    value: Any = None

    def parse(self, value, text):
        ok = str(value).upper() == self.value if isinstance(self.value, str) else value == self.value
        if not ok:
            raise ValueError(f"must be {self.value!r} for a session (stage 3 needs it), not {value!r}")
        return self.value


@dataclass(frozen=True)
class Ignored(Kind):
    """Accepted in a config and ignored: it does not change frkit's results."""

    def parse(self, value, text):
        return value


# -- parameters ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """One parameter: see the module docstring.

    ``keys`` are the ``session.toml`` keys, highest precedence first; a
    dotted key lies in a table (``flow_options.alpha``). ``flags`` are the
    command-line spellings, canonical first (empty: config only).
    ``result`` says whether the value changes a tool's results (recorded in
    ``result_parameters`` and in the Make stamps); ``argument`` makes it a
    positional command-line argument.
    """

    name: str
    default: Any
    kind: Kind
    help: str
    keys: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    panel: str = "Options"
    result: bool = True
    argument: bool = False

    def derive(self, **changes) -> "Param":
        """The same declaration with other defaults, keys or help (one tool's view of a shared parameter)."""
        return replace(self, **changes)

    @property
    def flag(self) -> str:
        return self.flags[0] if self.flags else self.name

    def parse(self, value, where: str, text: bool = False):
        """The normalized value, or an OptionError naming ``where`` the value came from."""
        try:
            return self.kind.parse(value, text)
        except ValueError as exc:
            raise OptionError(f"{where}: {exc}") from None

    def show_default(self) -> str:
        return "" if self.default is None else self.kind.show(self.default)


def _opt(name, default, kind, help, keys=(), flags=None, **kw) -> Param:
    return Param(name, default, kind, help, tuple(keys), tuple(flags or ("--" + name.replace("_", "-"),)), **kw)


class Values(Mapping):
    """Resolved, validated parameter values of one tool run; attributes or ``values["name"]``."""

    def __init__(self, params, data: dict):
        object.__setattr__(self, "_params", tuple(params))
        object.__setattr__(self, "_data", dict(data))

    def __getitem__(self, name):
        return self._data[name]

    def __getattr__(self, name):
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    def __repr__(self):
        return f"Values({self._data!r})"

    def replace(self, **changes) -> "Values":
        unknown = set(changes) - set(self._data)
        if unknown:
            raise TypeError(f"unknown parameters: {', '.join(sorted(unknown))}")
        return Values(self._params, {**self._data, **changes})

    def record(self, only_results: bool = False) -> dict:
        """JSON-ready values (tuples as lists, paths as strings), in declaration order."""
        return {p.name: _jsonable(self._data[p.name]) for p in self._params
                if not p.argument and (p.result or not only_results)}


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def resolve(params, config=None, flags: dict | None = None, **values) -> Values:
    """Defaults <- ``config`` <- ``flags`` <- ``values``, each parsed and checked.

    ``config`` is a :class:`frkit.session.config.SessionConfig` (or None);
    ``flags`` maps a parameter name to the text given on the command line;
    ``values`` are Python values from library callers (checked the same way,
    reported as ``name=``). Unknown names are a TypeError (a programming
    error, not a user error).
    """
    by_name = {p.name: p for p in params}
    unknown = (set(flags or ()) | set(values)) - set(by_name)
    if unknown:
        raise TypeError(f"unknown parameters: {', '.join(sorted(unknown))}")
    data = {p.name: p.default for p in params}
    if config is not None:
        for p in params:
            found = config.lookup(p)
            if found is not None:
                raw, where = found
                data[p.name] = p.parse(raw, where)
    for name, raw in (flags or {}).items():
        p = by_name[name]
        data[name] = raw if isinstance(p.kind, Flag) else p.parse(raw, p.flag, text=True)
    for name, raw in values.items():
        p = by_name[name]
        data[name] = None if raw is None else p.parse(raw, f"{name}=")
    return Values(params, data)


# -- the declarations ----------------------------------------------------------------------------------------------

#: quality presets set only the finest computed pyramid level
QUALITY_MIN_LEVEL = {"quality": 0, "balanced": 4, "fast": 6}
#: --flow-smoothing auto at full noise, per preset: the temporal sigma of the flows, in frames (the finest
#: level's flow is less noisy and needs less; bench/noisy_motion.py, docs/method.md 4.4)
FLOW_SMOOTHING_AUTO = {"quality": 0.5, "balanced": 0.7, "fast": 0.7}

P_IN, P_FLOW, P_PRE, P_REF, P_OUT, P_RUN, P_SES = ("Input", "Optical flow", "Preprocessing",
                                                     "Reference and initialization", "Output", "Execution",
                                                     "Session")
FO = "flow_options."  # the session.toml table of stage-1 (fr-compensate) options

# standard options (the shared harness attaches them to the tools that use them)
CONFIG = _opt("config", None, Text(path=True), "session.toml: take this tool's parameters from it (flags given "
              "here win).", panel=P_SES, result=False)
OUTPUT = _opt("output", None, Text(path=True), "Output path.", flags=("-o", "--output"), panel=P_OUT, result=False)
#: pyflowreg's GPU backends: a session naming one runs on frkit's CUDA engine (frkit.session.config)
GPU_BACKENDS = ("torch", "flowreg_torch", "flowreg_cuda")
DEVICE = _opt("device", "cpu", Device(),
              "Where to compute: cpu, cuda or cuda:N (needs the gpu extra). An array task given cuda on a node "
              "with several visible GPUs takes one by SLURM_LOCALID or its task id.",
              keys=("backend_params.device",), panel=P_RUN, result=False)
WORKERS = _opt("workers", 0, Number(integer=True, ge=-1), "CPU worker threads (0 or -1 = all CPUs this job may "
               "use).", keys=("n_workers",), panel=P_RUN, result=False)
QUIET = _opt("quiet", False, Flag(negatable=False), "No progress bar and no summary line.", flags=("-q", "--quiet"),
             panel=P_RUN, result=False)

# the flow method (shared by fr-compensate and fr-align)
ALPHA = _opt("alpha", "auto", Numbers(count=2, gt=0, auto=True), "Smoothness weight: one value, alpha_x,alpha_y, "
             "or auto (from the recording's measured noise: 1.5 on clean recordings, up to 50 at about a "
             "photon per pixel; the value used is in the record).", keys=(FO + "alpha",), panel=P_FLOW)
WEIGHT = _opt("weight", (0.5, 0.5), Numbers(ge=0, positive_sum=True), "Channel weights of the data term "
              "(normalized to sum 1).", keys=(FO + "weight",), panel=P_FLOW)
LEVELS = _opt("levels", 100, Number(integer=True, ge=1), "Upper bound on the pyramid depth.",
              keys=(FO + "levels",), panel=P_FLOW)
MIN_LEVEL = _opt("min_level", -1, Number(integer=True, ge=-1), "Finest pyramid level solved (0 = full "
                 "resolution); -1 takes it from --quality.", keys=(FO + "min_level",), panel=P_FLOW)
QUALITY = _opt("quality", "quality", Choice(tuple(QUALITY_MIN_LEVEL)), "Preset for the finest pyramid level: "
               "quality (0), balanced (4), fast (6).",
               keys=(FO + "quality_setting", FO + "quality", "stage1_quality_setting"), panel=P_FLOW)
ETA = _opt("eta", 0.8, Number(gt=0, le=1), "Pyramid downscale factor per level.", keys=(FO + "eta",),
           panel=P_FLOW)
ITERATIONS = _opt("iterations", 50, Number(integer=True, ge=1), "SOR iterations per pyramid level.",
                  keys=(FO + "iterations",), panel=P_FLOW)
UPDATE_LAG = _opt("update_lag", 5, Number(integer=True, ge=1), "Iterations between updates of the robust "
                  "weights.", keys=(FO + "update_lag",), panel=P_FLOW)
A_DATA = _opt("a_data", 0.45, Number(gt=0, le=1), "Data penalty exponent (1 = quadratic).",
              keys=(FO + "a_data",), panel=P_FLOW)
A_SMOOTH = _opt("a_smooth", 1.0, Number(gt=0), "Smoothness penalty exponent (1 = quadratic).",
                keys=(FO + "a_smooth",), panel=P_FLOW)
CHUNK_SIZE = _opt("chunk_size", 0, Number(integer=True, ge=0), "Frames computed at once (0 = the engine's "
                  "choice from its memory and workers); never changes results.", panel=P_RUN, result=False)
CC_UPSAMPLE = _opt("cc_upsample", 1, Number(integer=True, ge=1), "Sub-pixel upsampling of the phase correlation.",
                   keys=(FO + "cc_up",), flags=("--cc-upsample", "--cc-up"), panel=P_REF)

#: the corrected video handed on to the next tool (frkit.io.handoff), beside each tool's own output
OUTPUT_FORMAT = _opt("output_format", "hdf5", Choice(("hdf5", "tiff", "suite2p", "caiman", "nwb"), fold="lower"),
                     "Also write the corrected video for the next tool: tiff (ImageJ BigTIFF, TZCYX), suite2p "
                     "(suite2p/plane0: data.bin + ops.npy, registration off), caiman (F-order .mmap), nwb "
                     "(TwoPhotonSeries in MotionCorrection; needs frkit[nwb]); hdf5: only the tool's own output.",
                     panel=P_OUT, result=False)
FRAME_RATE = _opt("frame_rate", None, Number(gt=0), "Frames per second, for --output-format (NWB rate, suite2p "
                  "fs, ImageJ fps); NWB needs it unless the input is NWB.", panel=P_OUT, result=False)
NWB_TEMPLATE = _opt("nwb_template", None, Text(path=True), "NWB session metadata (TOML/JSON: session_description, "
                    "session_start_time, experimenter, [subject], [device], [imaging_plane], ...).", panel=P_OUT,
                    result=False)
HANDOFF = (OUTPUT_FORMAT, FRAME_RATE, NWB_TEMPLATE)

# fr-compensate
COMPENSATE = (
    _opt("input", None, Text(path=True, many=True), "Recording: TIFF, HDF5 (.h5/.hdf5/.hdf) or MAT (v5 or v7.3); "
         "several files, a directory or a quoted glob are one recording (natural order); a Bruker T-series "
         "folder.", argument=True, result=False),
    OUTPUT.derive(help="Output directory (created if missing). With --config: <output_root>/<stem> of the session."),
    _opt("dataset", None, Text(many=True), "HDF5/MAT dataset to read; repeat once per channel. Default: discover "
         "ch1..chN, mov/data, or the largest 3-D/4-D dataset.", panel=P_IN),
    _opt("axes", None, Text(), "Stored axis order, e.g. THW, HWT, TCYX, THWC (MAT files: MATLAB's order, default "
         "HWT).", panel=P_IN),
    _opt("deinterleave", 1, Number(integer=True, ge=1), "TIFF: N consecutive single-channel pages form one "
         "N-channel frame.", panel=P_IN),
    _opt("plane", None, Number(integer=True, ge=0), "ScanImage multi-plane recording: the z plane to correct "
         "(0-based; channels, planes and flyback frames come from the file's metadata).", keys=("plane",),
         panel=P_IN),
    _opt("bin_size", 1, Number(integer=True, ge=1), "Average N consecutive frames into one before correcting.",
         keys=(FO + "bin_size",), panel=P_IN),
    QUALITY, MIN_LEVEL, ALPHA, WEIGHT, LEVELS, ETA, ITERATIONS, UPDATE_LAG, A_DATA, A_SMOOTH,
    _opt("sigma", ((1.0, 1.0, 0.1),), Sigma(), "Gaussian sigma rows,cols,time; per channel separate rows with ';' "
         "(one row applies to every channel).", keys=(FO + "sigma",), panel=P_PRE),
    _opt("flow_smoothing", "auto", Number(ge=0, le=20, auto=True), "Gaussian sigma, in frames, of the flow "
         "fields over time within a batch (0 = off); auto: none on clean recordings; on noisy ones (with --alpha "
         "auto) each batch chooses the sigma of the translation and of the non-rigid rest (0 to 8) with the least "
         "expected error under the flow's measured noise (recorded per batch); 0 with a given alpha (pyflowreg's "
         "behaviour).",
         keys=(FO + "flow_smoothing",), panel=P_FLOW),
    _opt("channel_normalization", "joint", Choice(("joint", "separate")), "Intensity normalization from the "
         "reference: joint (all channels) or separate.", keys=(FO + "channel_normalization",), panel=P_PRE),
    _opt("buffer_size", 400, Number(integer=True, ge=1), "Frames per batch: the flow initialization (and the "
         "reference, with --update-reference) is renewed between batches.", keys=(FO + "buffer_size",),
         panel=P_PRE),
    _opt("reference_frames", None, Frames(), "Frames averaged (after pre-registration) into the reference. "
         "Default 50:500, clipped to the recording; under 100 frames: all frames.", keys=(FO + "reference_frames",),
         panel=P_REF),
    _opt("reference_file", None, Text(path=True), "Reference image file instead (.npy, .tif, .mat, .h5, .png), "
         "(H, W) or (H, W, C).", flags=("--reference",), panel=P_REF),
    _opt("update_reference", False, Flag(), "Replace the reference by the mean of the last 100 corrected frames "
         "after each batch.", keys=(FO + "update_reference",), panel=P_REF),
    _opt("update_initialization_w", True, Flag(), "Start each frame's flow from the mean flow of the first 22 "
         "frames, then of the last 20 of the previous batch.", keys=(FO + "update_initialization_w",), panel=P_REF),
    _opt("cc_initialization", False, Flag(), "Rigid pre-alignment of every frame by phase correlation.",
         keys=(FO + "cc_initialization",), flags=("--cc-initialization", "--cc-init"), panel=P_REF),
    CC_UPSAMPLE,
    _opt("interpolation", "cubic", Choice(("cubic", "linear")), "Interpolation of the corrected frames.",
         keys=(FO + "interpolation_method", FO + "interpolation"), panel=P_OUT),
    _opt("output_dtype", "same", Choice(("same", "uint8", "uint16", "int16", "int32", "float32", "float64")),
         "Data type of compensated.HDF5: same (as the input; integers rounded and clipped, never wrapped), or the "
         "one named.", keys=(FO + "output_dtype",), panel=P_OUT),
    _opt("save_w", False, Flag(negatable=False), "Also write the flow fields to w.h5 (u, v; float32).",
         keys=(FO + "save_w",), panel=P_OUT),
    *HANDOFF,
    CONFIG,
    _opt("array_task", False, Flag(negatable=False), "With --config: run the whole stage 1 (compensation, "
         "temporal average, status) for the recording picked by SLURM_ARRAY_TASK_ID, SGE_TASK_ID, PBS_ARRAY_INDEX "
         "or PBS_ARRAYID.", panel=P_SES, result=False),
    _opt("index_base", 1, Number(integer=True, ge=0, le=1), "Array id of the first task: 1 for --array=1-N, "
         "0 for --array=0-(N-1).", panel=P_SES, result=False),
    _opt("frames", None, Span(), "Time chunk: compensate only these frames into OUTDIR/chunks/ (after "
         "--reference-only; join with `python -m frkit.session join OUTDIR`). Same frames as a whole run.",
         panel=P_SES, result=False),
    _opt("reference_only", False, Flag(negatable=False), "Time chunks: write only the shared reference and the "
         "batches' flow initializations (OUTDIR/chunks/), for --frames runs. With --array-task: the task id picks "
         "the recording.", panel=P_SES, result=False),
    _opt("initialize_until", None, Number(integer=True, ge=0), "Time chunks, with --reference-only: carry the "
         "flow initialization only as far as chunks starting up to this frame need it (the last chunk's start: "
         "its batch, and the next one if it starts among the frames carried out of its batch); each chunk "
         "carries it on through its later batches. Default: every batch. "
         "With --array-task: the last chunk's start of the task's recording.", panel=P_SES, result=False),
    WORKERS, DEVICE, CHUNK_SIZE, QUIET,
)

# fr-average
AVERAGE = (
    _opt("compensated", None, Text(path=True), "Compensated video, or a stage-1 folder holding one.",
         argument=True, result=False),
    OUTPUT.derive(help="Output .npy (default: temporal_average.npy next to the video)."),
    _opt("mat", False, Flag(negatable=False), "Also write a .mat copy (variable temporal_average)."),
    _opt("tif", False, Flag(negatable=False), "Also write a float32 .tif copy."),
    CONFIG.derive(help="session.toml: also mark stage1 done in the video's folder (status.json)."),
    QUIET,
)

# fr-align: the flow method's declarations with stage-2 defaults and session keys.
#: the seed's (and pyflowreg's) stage-2 values: what an unset key means once any of the three is set
ALIGN_SEED = {"sigma_smooth": 6.0, "alpha": 25.0, "iterations": 100}
#: the default (all three "auto"): a one-shot with the seed's smoothing and alpha as the robust start, solved down
#: to pyramid level min_level only (0.8**6: a quarter of the resolution; sigma 6 leaves nothing finer), then a
#: refinement at fine scale over the finest `levels` pyramid levels (None: the full pyramid). Chosen by
#: bench/align_accuracy.py (accuracy; 30 refinement iterations as accurate as 50) and bench/align_speed.py
#: (the whole command on 512x512, one core).
ALIGN_AUTO = ({"sigma_smooth": 6.0, "alpha": 25.0, "iterations": 50, "levels": None, "min_level": 6},
              {"sigma_smooth": 2.0, "alpha": 10.0, "iterations": 30, "levels": 8, "min_level": 0})
_AUTO_HELP = ("auto (default, none of the three set): sigma {0[sigma_smooth]:g}, alpha {0[alpha]:g} as a robust "
              "coarse start, then a refinement with sigma {1[sigma_smooth]:g}, alpha {1[alpha]:g} over the finest "
              "{1[levels]} levels. Setting any of sigma_smooth/alpha_between/iterations_between runs one solve with "
              "those values (others at {2[sigma_smooth]:g}, {2[alpha]:g}, {2[iterations]}), as pyflowreg "
              "does.").format(*ALIGN_AUTO, ALIGN_SEED)
ALIGN = (
    _opt("reference", None, Text(path=True), "Center recording's temporal_average.npy.", argument=True,
         result=False),
    _opt("moving", None, Text(path=True), "Moving recording's temporal_average.npy.", argument=True, result=False),
    OUTPUT.derive(help="Output .npz (default: w_to_reference.npz next to MOVING)."),
    _opt("sigma_smooth", "auto", Number(ge=0, auto=True), "Gaussian smoothing of both averages (pixels). "
         + _AUTO_HELP, keys=("sigma_smooth",), panel=P_FLOW),
    CC_UPSAMPLE.derive(default=4, keys=("cc_upsample",)),
    ALPHA.derive(default="auto", kind=Numbers(count=2, gt=0, auto=True), keys=("alpha_between",),
                 flags=("--alpha", "--alpha-between"), help="Smoothness weight: one value, alpha_x,alpha_y, or "
                 "auto (see --sigma-smooth)."),
    ITERATIONS.derive(default="auto", kind=Number(integer=True, ge=1, auto=True), keys=("iterations_between",),
                      flags=("--iterations", "--iterations-between"),
                      help="SOR iterations per pyramid level, or auto (see --sigma-smooth)."),
    LEVELS.derive(default=50, keys=()),
    ETA.derive(keys=()), UPDATE_LAG.derive(keys=()), A_DATA.derive(keys=()), A_SMOOTH.derive(keys=()),
    WEIGHT.derive(default=None, keys=("channel_weights_between",), help="Channel weights of the alignment, one "
                  "per channel of the averages (e.g. 0,1: the structural channel 2 only); default equal."),
    _opt("constancy_assumption", "gc", Choice(("gc",), aliases=(("gradient", "gc"),), fold="lower"),
         "Data term between recordings (gradient constancy).", keys=("stage2_constancy_assumption",), flags=(),
         panel=P_FLOW),
    _opt("accept_poor_alignment", False, Flag(negatable=False), "Write the field even when the alignment "
         "clearly failed (correlation or overlap below the failure thresholds; otherwise exit status 3 and no "
         "file).", keys=("accept_poor_alignment",), result=False),
    _opt("mat", False, Flag(negatable=False), "Also write w_to_reference.mat (u, v double)."),
    CONFIG.derive(help="session.toml: parameters from it (flags win); without files, align every recording."),
    DEVICE, QUIET,
)

# fr-mask
MASK = (
    _opt("recording", None, Text(path=True, many=True), "A stage-1 folder (idx.hdf, temporal_average.npy, "
         "w_to_reference.npz); repeat, in session order.", result=False),
    _opt("center", None, Number(integer=True, ge=0), "0-based index of the center recording among --recording "
         "(default: the middle, (N+1)//2-1).", result=False),
    OUTPUT.derive(help="Output folder (default with --config: final_results)."),
    CONFIG.derive(help="session.toml: take every path from the session."),
    QUIET,
)

# fr-reproject
REPROJECT = (
    _opt("compensated", None, Text(path=True), "Compensated video, or a stage-1 folder holding one.", argument=True,
         result=False),
    _opt("w_to_reference", None, Text(path=True), "Its w_to_reference.npz.", argument=True, result=False),
    OUTPUT.derive(help="Output file (default: aligned_<stem>.<ext> in the current folder, or in final_results "
                  "with --config)."),
    _opt("fill", "reference", Choice(("reference", "zero", "nan")), "Out-of-view pixels: the center recording's "
         "temporal average, 0 or NaN (NaN makes integer videos float32)."),
    _opt("reference_average", None, Text(path=True), "Center recording's temporal_average.npy (for --fill "
         "reference).", result=False),
    _opt("format", None, Choice(("TIFF", "HDF5", "MAT"), fold="upper"), "Output format; default from the -o "
         "suffix, else TIFF.", keys=("align_output_format",)),
    *HANDOFF,
    CHUNK_SIZE.derive(default=64, kind=Number(integer=True, ge=1), keys=("align_chunk_size",),
                      help="Frames reprojected at once; never changes results."),
    CONFIG.derive(help="session.toml: parameters and paths from it (flags win); without files, every recording."),
    DEVICE, WORKERS, QUIET,
)

# fr-apply-flow: fr-compensate's declarations of the input, interpolation and output dtype
_COMPENSATE_BY_NAME = {p.name: p for p in COMPENSATE}
APPLY_FLOW = (
    _opt("video", None, Text(path=True), "Recording to correct: the same frames as the flow's (another channel, "
         "a raw or differently filtered copy).", argument=True, result=False),
    _opt("flow", None, Text(path=True), "Per-frame flow: w.h5 of fr-compensate --save-w or pyflowreg (u, v "
         "float32 (T, H, W)), or MATLAB's w.hdf.", argument=True, result=False),
    OUTPUT.derive(help="Output video: .h5/.hdf5 (default for other suffixes), .tif or .mat."),
    *(_COMPENSATE_BY_NAME[n] for n in ("dataset", "axes", "deinterleave")),
    _opt("fill_image", None, Text(path=True), "Image (H, W) or (H, W, C) for out-of-view pixels (e.g. a "
         "reference_frame.npy). Default: the recording's mean over frames 50:500 warped by their flows.",
         flags=("--reference",), panel=P_REF),
    *(_COMPENSATE_BY_NAME[n] for n in ("interpolation", "output_dtype")),
    *HANDOFF,
    WORKERS, DEVICE, CHUNK_SIZE, QUIET,
)

# fr-qc
QC = (
    _opt("stage1", None, Text(path=True), "A stage-1 folder (compensated video, idx.hdf, and w.h5 or "
         "statistics.npz). Omit it with --config: the session report.", argument=True, result=False),
    _opt("input", None, Text(path=True), "The raw recording the folder corrected (default: from its "
         "compensate.json; required for a pyflowreg or MATLAB folder).", panel=P_IN, result=False),
    OUTPUT.derive(help="Output folder for qc.json, qc_frames.csv, qc.png (default: the stage-1 folder)."),
    _opt("alignment_min_correlation", 0.6, Number(ge=-1, le=1), "Session report: warn when a recording's "
         "aligned average correlates with the center's less than this (in their overlap).",
         keys=("qc_alignment_min_correlation",)),
    CONFIG.derive(help="session.toml: QC of every recording, then final_results/report.html, session_qc.png and "
                  "session_qc.json."),
    WORKERS.derive(help="Threads measuring batches of frames side by side (0 or -1 = all CPUs this job may use); "
                   "never changes results."),
    QUIET,
)

# stage-1 keys a peer's config may carry: accepted only with the value stage 3 needs, or ignored
STAGE1_TABLE = (
    _opt("output_format", "HDF5", Fixed("HDF5"), "", keys=(FO + "output_format",), flags=()),
    _opt("save_valid_idx", True, Fixed(True), "", keys=(FO + "save_valid_idx",), flags=()),
    _opt("save_meta_info", True, Fixed(True), "", keys=(FO + "save_meta_info",), flags=()),
    *(_opt(k, None, Ignored(), "", keys=(FO + k,), flags=()) for k in (
        "verbose", "output_path", "input_file", "naming_convention", "output_typename", "n_references",
        "min_frames_per_reference", "cc_hw", "constancy_assumption")),
)

# the session itself (session.toml only)
SESSION = (
    _opt("root", None, Text(path=True), "Folder with the recordings (required; relative to the config file).",
         keys=("root",), flags=()),
    _opt("pattern", "*.tif", Text(), "Glob under root; outputs are never picked up.", keys=("pattern",), flags=()),
    _opt("group_files", False, Flag(), "Files <base>_<number>.<ext> (ScanImage's numbered files) are one recording "
         "per <base>, named <base>.", keys=("group_files",), flags=()),
    _opt("center", None, Text(), "Reference recording; default: the lexicographic middle, (N+1)//2-1.",
         keys=("center",), flags=()),
    _opt("planes", None, PlaneList(), "ScanImage multi-plane recordings: \"all\" or a list of planes; each "
         "(recording, plane) is its own recording <stem>_plane<K>, aligned to the center's same plane, with its "
         "own final_results/plane<K>/.", keys=("planes",), flags=()),
    _opt("output_root", "compensated_outputs", Text(path=True), "Stage-1/2 folders (relative to root).",
         keys=("output_root",), flags=()),
    _opt("final_results", "final_results", Text(path=True), "Stage-3 folder (relative to root).",
         keys=("final_results",), flags=()),
    _opt("resume", True, Flag(), "Keep finished results (Make always does).", keys=("resume",), flags=()),
    _opt("scheduler", "local", Choice(("local", "array"), refused=(("dask", "frkit runs stage 1 with make -j or "
                                                                      "cluster arrays (containers/slurm, sge, pbs); "
                                                                      "use scheduler = \"array\" or \"local\""),)),
         "How stage 1 is run: local (make -j) or array (cluster array tasks, containers/).", keys=("scheduler",),
         flags=()),
    _opt("chunk_frames", 0, Number(integer=True, ge=0), "Split each recording into time chunks of this many "
         "frames (best a multiple of buffer_size), each its own make rule and array task, joined into the same "
         "stage-1 files; 0: whole recordings.", keys=("chunk_frames",), flags=()),
    _opt("flow_backend", "flowreg", Choice(GPU_BACKENDS + ("flowreg",),
                                           refused=(("diso", "frkit implements only the variational method"),)),
         "The method's backend: flowreg (CPU), or one of pyflowreg's GPU backends (torch, flowreg_torch, "
         "flowreg_cuda): frkit's CUDA engine, on backend_params.device (default cuda).", keys=("flow_backend",),
         flags=()),
    _opt("backend_params", {}, Table(), "Backend settings: device (cpu, cuda, cuda:N) and dtype (float32 only).",
         keys=("backend_params",), flags=()),
)


def markdown_table(params) -> str:
    """The README table of ``params``: option (or key), default, meaning."""
    rows = ["| option | default | session.toml | meaning |", "|---|---|---|---|"]
    for p in params:
        if p.argument or not p.flags or isinstance(p.kind, (Fixed, Ignored)):
            continue
        flags = ", ".join(f"`{f}`" for f in p.flags)
        keys = ", ".join(f"`{k}`" for k in p.keys) or "-"
        rows.append(f"| {flags} | {p.show_default() or '-'} | {keys} | {p.help} |")
    return "\n".join(rows)


def _update_readme(path) -> None:
    """Rewrite every ``<!-- options: TOOL -->`` block of ``path`` from the declarations."""
    tools = {"fr-compensate": COMPENSATE, "fr-average": AVERAGE, "fr-align": ALIGN, "fr-mask": MASK,
             "fr-reproject": REPROJECT, "fr-apply-flow": APPLY_FLOW,
             "fr-qc": QC}
    text = Path(path).read_text()
    for tool, params in tools.items():
        start = text.index(f"<!-- options: {tool} -->")
        start = text.index("\n", start) + 1
        end = text.index("<!-- end -->", start)
        text = text[:start] + markdown_table(params) + "\n" + text[end:]
    Path(path).write_text(text)


if __name__ == "__main__":  # python -m frkit.options README.md
    import sys

    _update_readme(sys.argv[1])
