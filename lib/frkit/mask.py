"""Valid-pixel masks of a session (stage 3).

A recording's mask is the temporal AND of its per-frame valid masks
(``idx.hdf``): a pixel counts only if it was in view in every frame. Each
mask is then warped into the reference grid with the recording's
``w_to_reference`` (nearest sample, and false where the sample falls outside
the frame), and the session mask is the AND over all recordings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import layout
from .errors import InputError
from .io.atomic import save_npz_atomic, save_png_atomic, savemat_atomic

__all__ = ["temporal_and", "warp_mask", "load_flow", "load_average", "session_mask"]


def temporal_and(reader, chunk: int = 512) -> np.ndarray:
    """AND over time of ``reader``'s masks (``> 0``; channel 0): bool ``(H, W)``."""
    t, h, w, _ = reader.shape
    if t == 0:
        raise InputError(f"{reader.path}: has no frames")
    out = np.ones((h, w), dtype=bool)
    for a in range(0, t, chunk):
        block = reader.read(a, min(t, a + chunk))[..., 0]
        out &= (block > 0).all(axis=0)
    return out


def warp_mask(mask: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Warp a bool mask backward by ``flow`` (nearest sample + in-bounds rule).

    ``out(y, x) = mask(round(y + v), round(x + u))`` where ``0 <= x + u < W``
    and ``0 <= y + v < H``, false elsewhere.
    """
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    if flow.shape[:2] != (h, w):
        raise InputError(f"mask is {h}x{w} but the displacement field is {flow.shape[0]}x{flow.shape[1]}")
    x = np.arange(w, dtype=np.float64)[None, :] + flow[..., 0]
    y = np.arange(h, dtype=np.float64)[:, None] + flow[..., 1]
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    xi = np.clip(np.floor(x + 0.5), 0, w - 1).astype(np.intp)
    yi = np.clip(np.floor(y + 0.5), 0, h - 1).astype(np.intp)
    return mask[yi, xi] & inside


def load_flow(path) -> np.ndarray:
    """``w_to_reference.npz`` (keys ``u``, ``v``) -> ``(H, W, 2)`` float64."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: missing displacement field (run stage 2 / fr-align first)")
    try:
        with np.load(path) as z:
            u, v = (np.asarray(z[k], dtype=np.float64) for k in layout.FLOW_DATASETS)
    except KeyError:
        raise InputError(f"{path}: needs arrays 'u' and 'v'") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from None
    if u.ndim != 2 or u.shape != v.shape:
        raise InputError(f"{path}: 'u' and 'v' must be 2-D arrays of one shape, got {u.shape} and {v.shape}")
    if not (np.isfinite(u).all() and np.isfinite(v).all()):
        raise InputError(f"{path}: contains NaN or Inf")
    return np.stack([u, v], -1)


def load_average(path) -> np.ndarray:
    """``temporal_average.npy`` -> ``(H, W, C)`` float64."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: missing temporal average (run stage 1 / fr-average first)")
    try:
        avg = np.load(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from None
    if avg.ndim == 2:
        avg = avg[..., None]
    if avg.ndim != 3:
        raise InputError(f"{path}: a temporal average must be (H, W, C), got {avg.shape}")
    return avg.astype(np.float64)


def _png(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, 255, 0).astype(np.uint8)


def session_mask(recordings: list[layout.RecordingFiles], center: int, final_dir: Path) -> dict:
    """Compute and write the session's valid-pixel mask into ``final_dir``; returns a summary.

    ``final_valid_idx.npz`` keeps pyflowreg's ten keys (plus ``center_file``);
    ``final_valid_idx.mat`` holds the same for MATLAB (logical masks, 1-based
    ``middle_idx``, path lists as cell arrays); PNGs show each mask (255 =
    valid, row = y).

    Every input is checked before anything is written.
    """
    if not recordings:
        raise InputError("no recordings")
    if not 0 <= center < len(recordings):
        raise InputError(f"center index {center} is out of range for {len(recordings)} recordings")
    for r in recordings:
        if not r.idx.is_file():
            raise InputError(f"{r.idx}: missing valid-mask file (run stage 1 / fr-compensate first)")
    flows = [load_flow(r.w_to_reference) for r in recordings]
    averages = [load_average(r.average) for r in recordings]
    shape = averages[center].shape
    for r, w, a in zip(recordings, flows, averages):
        if a.shape != shape:
            raise InputError(f"{r.average}: average is {a.shape}, the center's is {shape}; recordings of a "
                             "session must have the same frame size and channels")
        if w.shape[:2] != shape[:2]:
            raise InputError(f"{r.w_to_reference}: field is {w.shape[0]}x{w.shape[1]}, frames are "
                             f"{shape[0]}x{shape[1]}")

    from .io import open_video  # local: fr-align imports this module and reads no video

    own, aligned = [], []
    for r, w in zip(recordings, flows):
        with open_video(r.idx) as reader:
            if reader.shape[1:3] != shape[:2]:
                raise InputError(f"{r.idx}: masks are {reader.shape[1]}x{reader.shape[2]}, frames are "
                                 f"{shape[0]}x{shape[1]}")
            m = temporal_and(reader)
        own.append(m)
        aligned.append(warp_mask(m, w))
    final = np.logical_and.reduce(aligned)

    final_dir = Path(final_dir)
    final_dir.mkdir(parents=True, exist_ok=True)
    for r, m, a in zip(recordings, own, aligned):
        own_png, aligned_png = layout.mask_png_names(r.stem)
        save_png_atomic(final_dir / own_png, _png(m))
        save_png_atomic(final_dir / aligned_png, _png(a))
    save_png_atomic(final_dir / layout.FINAL_PNG, _png(final))
    bundle = {
        "final_valid": final,
        "aligned_valid_masks": np.stack(aligned),
        "per_seq_valid_masks": np.stack(own),
        "displacement_fields_u": np.stack([w[..., 0] for w in flows]),
        "displacement_fields_v": np.stack([w[..., 1] for w in flows]),
        "temporal_averages": np.stack(averages),
        "compensated_h5_paths": np.array([str(r.compensated) for r in recordings]),
        "reference_average": averages[center],
        "middle_idx": np.int64(center),
        "aligned_video_paths": np.array([str(r.aligned_video or "") for r in recordings]),
        "center_file": np.array(recordings[center].stem),
    }
    save_npz_atomic(final_dir / layout.FINAL_NPZ, **bundle)
    mat = {k: v for k, v in bundle.items() if k not in ("aligned_video_paths", "middle_idx", "center_file",
                                                        "compensated_h5_paths")}
    mat["middle_idx"] = np.array([[center + 1]], dtype=np.int64)  # MATLAB is 1-based
    mat["compensated_h5_paths"] = np.array([str(r.compensated) for r in recordings], dtype=object)
    mat["center_file"] = recordings[center].stem
    savemat_atomic(final_dir / layout.FINAL_MAT, mat)
    return {"valid_fraction": float(final.mean()), "valid_pixels": int(final.sum()), "shape": list(final.shape),
            "per_recording_valid_fraction": {r.stem: float(a.mean()) for r, a in zip(recordings, aligned)}}
