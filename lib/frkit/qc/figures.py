"""QC figures with matplotlib's Agg backend (files only; never a window, no display needed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.atomic import atomic_output

__all__ = ["pyplot", "contrast", "recording_figure", "save_figure", "png_bytes"]


def pyplot():
    """matplotlib.pyplot on the Agg backend (a clear one-line error when matplotlib is missing)."""
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
        raise InputError("fr-qc needs matplotlib (pip install matplotlib)") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def contrast(*images, low: float = 1.0, high: float = 99.5) -> tuple[float, float]:
    """One display range for all ``images``: their joint ``low``..``high`` percentiles."""
    values = np.concatenate([np.asarray(i, dtype=np.float64).ravel() for i in images])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [low, high])
    return float(lo), float(hi if hi > lo else lo + 1.0)


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()


def save_figure(fig, path) -> None:
    """Write ``fig`` as a PNG at ``path`` atomically, and close it."""
    plt = pyplot()
    try:
        with atomic_output(path) as tmp:
            Path(tmp).write_bytes(png_bytes(fig))
    finally:
        plt.close(fig)


def recording_figure(summary: dict, frames: dict, images: dict, title: str):
    """qc.png: mean images raw | corrected (same contrast), correlation, displacement, bad frames marked."""
    plt = pyplot()
    fig = plt.figure(figsize=(12, 7.5), dpi=100, layout="constrained")
    grid = fig.add_gridspec(3, 2, height_ratios=(2.2, 1, 1))
    lo, hi = contrast(images["mean_raw"], images["mean_corrected"])
    cr, cc = summary["crispness"]["raw"], summary["crispness"]["corrected"]
    for k, (key, name, crisp) in enumerate((("mean_raw", "raw", cr), ("mean_corrected", "corrected", cc))):
        ax = fig.add_subplot(grid[0, k])
        ax.imshow(images[key], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(f"mean image, {name} (crispness {crisp:.4g})", fontsize=10)
        ax.set_axis_off()
    t = frames["frame"]
    bad = np.flatnonzero(frames["bad"])
    ax = fig.add_subplot(grid[1, :])
    ax.plot(t, frames["correlation_raw"], color="tab:gray", lw=1, label="raw")
    ax.plot(t, frames["correlation_corrected"], color="tab:blue", lw=1, label="corrected")
    ax.set_ylabel("correlation\nwith the mean")
    c = summary["correlation"]
    ax.set_title(f"correlation {c['raw']['mean'] or float('nan'):.3f} -> {c['corrected']['mean'] or float('nan'):.3f}"
                 f" ({c['verdict']}); residual motion {summary['residual_motion_px']['median'] or float('nan'):.2f}"
                 f" px ({summary['residual_motion_px']['verdict']})", fontsize=10)
    ax2 = fig.add_subplot(grid[2, :], sharex=ax)
    if np.isfinite(frames["mean_displacement"]).any():
        ax2.plot(t, frames["mean_displacement"], color="tab:green", lw=1, label="mean |flow|")
        ax2.plot(t, frames["max_displacement"], color="tab:olive", lw=0.8, label="max |flow|")
    ax2.plot(t, frames["raw_shift_x"], color="tab:orange", lw=0.8, label="raw shift x")
    ax2.plot(t, frames["raw_shift_y"], color="tab:purple", lw=0.8, label="raw shift y")
    ax2.set_ylabel("displacement (px)")
    ax2.set_xlabel("frame")
    for a in (ax, ax2):
        for i in bad:
            a.axvline(i, color="red", lw=0.8, alpha=0.6)
        a.legend(loc="lower left", fontsize=8, ncol=4)
    nb = summary["bad_frames"]["count"]
    ax2.set_title(f"displacement; {nb} bad frame(s) (red)" if nb else "displacement; no bad frames", fontsize=10)
    fig.suptitle(title, fontsize=11)
    return fig
