"""``session.toml``: the configuration of a multi-recording session.

Keys and defaults follow pyflowreg's session guide (the interop contract).
Every key is declared once, in :mod:`frkit.options` (a parameter's ``keys``);
this module only reads the file, rejects unknown keys (naming the closest
known one; pyflowreg drops them silently) and checks every value where it
stands, so a bad value is reported as ``flow_options.alpha in session.toml``.
The tools then take their parameters from it with :func:`frkit.options.resolve`.

Paths: a relative ``root`` is relative to the directory of the config file
(so a session folder can move); ``output_root`` and ``final_results`` are
relative to ``root``. Recordings are files or directories (a folder of
files, a Bruker T-series) matching ``pattern`` outside the output trees, with
unique stems. With ``group_files = true``, files named ``<base>_<number>.<ext>``
(ScanImage's ``base_00001.tif``, ``base_00002.tif``; 2016+:
``base_00001_00001.tif``) are one recording per ``<base>``, read in number
order and named ``<base>`` (a :class:`FileGroup`). With ``planes``, each
(recording, plane) pair is its own recording ``<stem>_plane<K>``
(:mod:`frkit.session.planes`).
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import options
from ..errors import InputError, OptionError

__all__ = ["SessionConfig", "load_config", "config_from_mapping", "center_index", "KNOWN_KEYS"]

#: every session.toml key (dotted inside a table) -> its declaration
KNOWN_KEYS = {key: p for group in (options.SESSION, options.COMPENSATE, options.ALIGN, options.REPROJECT,
                                   options.QC, options.STAGE1_TABLE) for p in group for key in p.keys}
#: the stage-1 table and pyflowreg's other name for it
STAGE1_TABLES = ("flow_options", "of_options_override")
_TOP_KEYS = {k for k in KNOWN_KEYS if "." not in k} | set(STAGE1_TABLES)
_STAGE1_KEYS = {k.partition(".")[2] for k in KNOWN_KEYS if k.startswith(options.FO)}
#: the tools whose parameters decide each stage's results (for the Make stamps)
STAGE_PARAMS = {1: options.COMPENSATE, 2: options.ALIGN, 3: options.REPROJECT}


#: ``<base>_<number>.<ext>``: the file-number suffix ScanImage appends (group_files)
_GROUP_NAME = re.compile(r"^(?P<base>.+)_(?P<number>\d+)(?P<ext>\.[^.]+)$")


class FileGroup(tuple):
    """The numbered files of one recording (``group_files``), in number order; ``stem`` names it."""

    def __new__(cls, paths, stem: str):
        group = super().__new__(cls, paths)
        group.stem = stem
        return group

    @property
    def name(self) -> str:
        return self.stem

    def resolve(self) -> "FileGroup":
        return FileGroup([p.resolve() for p in self], self.stem)

    def __str__(self) -> str:
        return f"{self[0]} .. {self[-1].name} ({len(self)} files)"


def group_numbered(paths: list[Path]) -> list:
    """Files ``<base>_<number>.<ext>`` -> one :class:`FileGroup` per (folder, base, ext); others unchanged."""
    from ..io.multifile import natural_key

    groups: dict[tuple, list[Path]] = {}
    out: list = []
    for p in paths:
        m = _GROUP_NAME.match(p.name) if p.is_file() else None
        if m is None:
            out.append(p)
            continue
        key = (p.parent, m["base"], m["ext"].lower())
        if key not in groups:
            groups[key] = []
            out.append(key)
        groups[key].append(p)
    return [FileGroup(sorted(groups[k], key=natural_key), k[1]) if isinstance(k, tuple) else k for k in out]


def _closest(key: str, known) -> str:
    match = difflib.get_close_matches(key, list(known), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


@dataclass
class SessionConfig:
    """A checked session configuration: ``entries`` maps each key given to ``(value, where)``."""

    root: Path
    entries: dict[str, tuple[Any, str]]
    source: Path | None = None

    def lookup(self, param: options.Param):
        """``(value, where)`` of the first of ``param.keys`` given in the file, or None."""
        for key in param.keys:
            if key in self.entries:
                return self.entries[key]
        return None

    def values(self, params) -> options.Values:
        """The parameters ``params`` as this session sets them (defaults elsewhere)."""
        return options.resolve(params, self)

    @property
    def settings(self) -> options.Values:
        return self.values(options.SESSION)

    def stage_parameters(self, stage: int) -> dict:
        """The normalized parameters that decide a stage's results (the Make stamps)."""
        values = self.values(STAGE_PARAMS[stage])
        stamp = values.record(only_results=True)
        if stage == 2:  # the solves applied, not their spelling (alpha 25 beside iterations 30 is the seed's 25)
            from ..align import applied_schedule

            for name in ("sigma_smooth", "alpha", "iterations"):
                del stamp[name]
            stamp["schedule"] = [s.record() for s in applied_schedule(values)]
        if stage == 3:  # a session writes TIFF unless told otherwise (fr-reproject alone: from the -o suffix)
            stamp["format"] = stamp["format"] or "TIFF"
        return stamp

    # -- paths --------------------------------------------------------------
    def _under_root(self, value) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p

    @property
    def output_dir(self) -> Path:
        return self._under_root(self.settings.output_root)

    @property
    def final_dir(self) -> Path:
        return self._under_root(self.settings.final_results)

    def recording_dir(self, recording) -> Path:
        """``<output_root>/<stem>``; a multi-file recording's stem is its group's (:func:`recording_stem`)."""
        from ..io.multifile import recording_stem
        from .planes import PlaneRecording

        stem = recording.stem if isinstance(recording, (FileGroup, PlaneRecording)) else recording_stem(recording)
        return self.output_dir / stem

    # -- recordings ---------------------------------------------------------
    def recordings(self) -> list:
        """Input files and directories: sorted (plain lexicographic), outputs excluded;
        with ``group_files``, numbered files grouped (:func:`group_numbered`); with ``planes``, one
        :class:`~frkit.session.planes.PlaneRecording` per (recording, plane).

        Raises InputError for an empty pattern or two inputs with one stem.
        """
        pattern = self.settings.pattern
        outs = [self.output_dir.resolve(), self.final_dir.resolve()]
        found = []
        for p in sorted(self.root.glob(pattern)):
            rp = p.resolve()
            if (p.is_file() or p.is_dir()) and not any(o == rp or o in rp.parents or rp in o.parents
                                                       for o in outs):
                found.append(p)
        if not found:
            raise InputError(f"no files match pattern '{pattern}' in {self.root}")
        if self.settings.group_files:
            found = group_numbered(found)
        stems: dict[str, Path] = {}
        for p in found:
            if p.stem in stems:
                raise InputError(f"recordings {stems[p.stem].name} and {p.name} have the same stem '{p.stem}'; "
                                 "their outputs would collide")
            stems[p.stem] = p
        if self.settings.planes is not None:
            from .planes import expand_planes

            found = expand_planes(found, self.settings.planes)
        return found

    def center_index(self, recordings: list[Path] | None = None) -> int:
        recordings = self.recordings() if recordings is None else recordings
        return center_index(recordings, self.settings.center, self.root)


def center_index(recordings: list[Path], center: str | None, root: Path) -> int:
    """0-based index of the reference recording.

    ``center`` (a path relative to ``root`` or a file name) must be one of
    the recordings; otherwise the lexicographic middle ``(N + 1) // 2 - 1``.
    With planes (:mod:`frkit.session.planes`) the center is chosen among the
    source recordings and the index is that of its first plane.
    """
    from .planes import source_of

    sources = []
    for p in map(source_of, recordings):
        if p not in sources:
            sources.append(p)
    if center:
        want = (root / center).resolve()
        for p in sources:
            if p.resolve() == want or p.name == center:
                break
        else:
            raise InputError(f"center '{center}' is not among the recordings "
                             f"({', '.join(p.name for p in sources)})")
    else:
        p = sources[(len(sources) + 1) // 2 - 1]
    return next(i for i, r in enumerate(recordings) if source_of(r) == p)


def _load_options_json(path: Path) -> dict:
    """An options file as pyflowreg and MATLAB write it: a header line, a blank line, JSON.

    Such a file carries every field, defaults and MATLAB-only fields
    included: only the keys frkit knows are kept.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"flow_options file not found: {path}") from None
    start = text.find("{")
    try:
        data = json.loads(text[start:]) if start >= 0 else None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: no JSON object of options found")
    return {k: v for k, v in data.items() if k in _STAGE1_KEYS}


def _backend_device(entries: dict, where: str) -> str | None:
    """The device a session's ``flow_backend`` and ``[backend_params]`` ask for (None: not set).

    pyflowreg's GPU backends (:data:`frkit.options.GPU_BACKENDS`) run on
    frkit's CUDA engine, on ``backend_params.device`` (default ``cuda``).
    A key frkit would not honour is refused, never ignored.
    """
    backend = entries.get("flow_backend", ("flowreg",))[0].strip().lower()
    bp = entries.get("backend_params", ({}, ""))[0]
    at = f"backend_params in {where}"
    unknown = sorted(set(bp) - {"device", "dtype"})
    if unknown:
        raise OptionError(f"{at}: unknown key '{unknown[0]}' (frkit takes device and dtype)")
    if "dtype" in bp and str(bp["dtype"]).lower().removeprefix("torch.") != "float32":
        raise OptionError(f"{at}: dtype = {bp['dtype']!r}: frkit's engines compute in float32")
    if "device" in bp:
        device = options.DEVICE.parse(bp["device"], f"{at} (device)")
        if backend not in options.GPU_BACKENDS and device != "cpu":
            raise OptionError(f"{at}: device = {bp['device']!r} with flow_backend = '{backend}' (the CPU "
                              "backend); use flow_backend = \"torch\" for the GPU")
        return device
    return "cuda" if backend in options.GPU_BACKENDS else None


def load_config(path) -> SessionConfig:
    """Read and check ``session.toml`` (or ``.json``). Errors are one line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: configuration file not found")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise OptionError(f"{path}: unsupported configuration format '{path.suffix}'; use .toml")
    try:
        data = tomllib.loads(path.read_text()) if suffix == ".toml" else json.loads(path.read_text())
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: {exc}") from None
    return config_from_mapping(data, path)


def config_from_mapping(data: dict, source: Path | None = None) -> SessionConfig:
    """Check every key and value of a parsed config; see the module docstring."""
    where = str(source) if source else "config"
    base = source.resolve().parent if source else Path.cwd()
    for key in data:
        if key not in _TOP_KEYS:
            raise OptionError(f"{where}: unknown key '{key}'{_closest(key, _TOP_KEYS)}")
    if all(data.get(t) for t in STAGE1_TABLES):
        raise OptionError(f"{where}: give flow_options or of_options_override, not both")

    entries: dict[str, tuple[Any, str]] = {}
    for key, value in data.items():
        if key not in STAGE1_TABLES:
            entries[key] = (value, f"{key} in {where}")
            continue
        if isinstance(value, str) and value.strip():
            p = Path(value.strip()).expanduser()
            value = _load_options_json(p if p.is_absolute() else base / Path(data.get("root", ".")) / p)
        elif isinstance(value, str):
            value = {}
        if not isinstance(value, dict):
            raise OptionError(f"{key} in {where}: must be a table or the path of an options .json file")
        for sub, v in value.items():
            if sub not in _STAGE1_KEYS:
                raise OptionError(f"{key} in {where}: unknown option '{sub}'{_closest(sub, _STAGE1_KEYS)}")
            entries[options.FO + sub] = (v, f"{key}.{sub} in {where}")

    # every value is checked now, so a bad one is reported before any work
    for key, (value, at) in entries.items():
        KNOWN_KEYS[key].parse(value, at)
    if "plane" in entries and "planes" in entries:
        raise OptionError(f"{where}: give plane (one plane for the whole session) or planes (each plane its own "
                          "recording), not both")
    device = _backend_device(entries, where)
    if device is not None:
        entries["backend_params.device"] = (device, f"flow_backend/backend_params in {where}")
    if "root" not in entries:
        raise OptionError(f"{where}: the required key 'root' is missing")
    root = Path(entries["root"][0]).expanduser()
    root = root if root.is_absolute() else base / root
    if not root.exists():
        raise InputError(f"{where}: root directory does not exist: {root}")
    if not root.is_dir():
        raise InputError(f"{where}: root is not a directory: {root}")
    return SessionConfig(root=root, entries=entries, source=source)
