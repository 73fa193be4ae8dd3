"""Each plane of a multi-plane ScanImage recording as its own recording (session key ``planes``).

With ``planes = "all"`` (or a list of 0-based plane indices) every
(recording, plane) pair of the session is a :class:`PlaneRecording` named
``<stem>_plane<K>``: its own stage-1 folder, Make rules, record (its
``plane`` parameter is K) and array task.

Planes are separate fields of view, so each plane is its own sub-session
for stages 2 and 3: a recording's plane K is aligned to plane K of the
center recording (:func:`plane_centers`), and each plane gets its own
final mask and aligned videos in ``final_results/plane<K>/``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError, OptionError

__all__ = ["PlaneRecording", "plane_count", "expand_planes", "plane_centers", "plane_dir", "source_of", "plane_of"]


class PlaneRecording:
    """Plane ``plane`` of the recording ``source`` (a file, :class:`~frkit.session.config.FileGroup` or folder)."""

    def __init__(self, source, plane: int):
        self.source = source
        self.plane = int(plane)
        self.stem = f"{source.stem}_plane{self.plane}"

    @property
    def name(self) -> str:
        return self.stem

    def resolve(self) -> "PlaneRecording":
        return PlaneRecording(self.source.resolve(), self.plane)

    def __eq__(self, other) -> bool:
        return isinstance(other, PlaneRecording) and (self.source, self.plane) == (other.source, other.plane)

    def __hash__(self) -> int:
        return hash((str(self.source), self.plane))

    def __str__(self) -> str:
        return f"{self.source} (plane {self.plane})"

    __repr__ = __str__


def source_of(recording):
    """What :func:`frkit.io.open_video` reads for ``recording`` (the recording itself unless a plane)."""
    return recording.source if isinstance(recording, PlaneRecording) else recording


def plane_of(recording, default: int | None = None) -> int | None:
    """The plane ``recording`` reads (``default``, the session's ``plane``, unless a :class:`PlaneRecording`)."""
    return recording.plane if isinstance(recording, PlaneRecording) else default


def plane_count(recording) -> int:
    """Planes (z slices) of a ScanImage recording, from its first file's metadata (1 for a single-plane one).

    Raises InputError when the recording is not a ScanImage TIFF (``planes`` does not apply).
    """
    import tifffile

    from ..io.multifile import expand_inputs
    from ..io.readers import TIFF_SUFFIXES
    from ..io.scanimage import is_scanimage, scanimage_layout, scanimage_metadata

    files = expand_inputs(list(recording) if isinstance(recording, tuple) else recording)
    first = files[0]
    if first.suffix.lower() not in TIFF_SUFFIXES or not is_scanimage(first):
        raise InputError(f"{first}: 'planes' in session.toml applies to ScanImage TIFF recordings; "
                         "this is not one (remove 'planes')")
    with tifffile.TiffFile(first) as tif:
        lay = scanimage_layout(scanimage_metadata(tif))
    return lay.slices if lay.volumetric else 1


def expand_planes(recordings: list, planes) -> list[PlaneRecording]:
    """Every (recording, plane) pair, recordings in session order, planes ascending.

    ``planes`` is ``"all"`` or a tuple of 0-based plane indices; an index
    beyond a recording's plane count is an OptionError naming the recording.
    """
    out = []
    for rec in recordings:
        n = plane_count(rec)
        chosen = range(n) if planes == "all" else sorted(set(planes))
        for k in chosen:
            if not 0 <= k < n:
                raise OptionError(f"planes in session.toml: plane {k} is out of range for {rec} "
                                  f"({n} plane(s): 0..{n - 1})")
            out.append(PlaneRecording(rec, k))
    return out


def plane_centers(recordings: list, center: int) -> list[int]:
    """Per recording, the index of the recording it is aligned to.

    Without planes: ``center`` for every one. With planes: the same plane
    of the center recording's source (each plane is its own sub-session).
    """
    if not recordings or not isinstance(recordings[center], PlaneRecording):
        return [center] * len(recordings)
    c_source = recordings[center].source
    index = {(str(r.source), r.plane): i for i, r in enumerate(recordings)}
    out = []
    for r in recordings:
        i = index.get((str(c_source), r.plane))
        if i is None:
            raise InputError(f"{r}: the center recording {c_source} has no plane {r.plane}")
        out.append(i)
    return out


def plane_dir(final_dir: Path, recording) -> Path:
    """Where ``recording``'s stage-3 results go: ``final_results/plane<K>`` for a plane, else ``final_results``."""
    return final_dir / f"plane{recording.plane}" if isinstance(recording, PlaneRecording) else final_dir
