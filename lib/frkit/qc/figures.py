"""QC figures with matplotlib's Agg backend (files only; never a window, no display needed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.atomic import atomic_output

__all__ = ["pyplot", "preload_matplotlib", "figure", "contrast", "recording_figure", "draw_recording", "save_figure",
           "png_bytes"]


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


def preload_matplotlib() -> None:
    """Import what drawing a figure imports (figure() brings in axes, projections, dates, ... on first use)."""
    try:
        import matplotlib.figure  # noqa: F401
        from matplotlib.backends import backend_agg  # noqa: F401
        from PIL import Image

        Image.preinit()  # the image plugins PIL loads on the first save
    except ImportError:  # figure() reports it, in the caller's thread
        pass


def figure(figsize, dpi=100):
    """A matplotlib Figure drawn by Agg, without pyplot (no figure manager to register and close).

    Its layout is fixed by the caller (no constrained layout, which measures
    every text box once more before drawing: half the cost of a figure).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
        raise InputError("fr-qc needs matplotlib (pip install matplotlib)") from None
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig) -> bytes:
    """``fig`` as PNG. zlib level 3, not PIL's 6: half the encoding time, files no larger on these figures."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, pil_kwargs={"compress_level": 3})
    return buf.getvalue()


def save_figure(fig, path) -> None:
    """Write ``fig`` as a PNG at ``path`` atomically (and close it when pyplot made it)."""
    try:
        with atomic_output(path) as tmp:
            Path(tmp).write_bytes(png_bytes(fig))
    finally:
        if getattr(fig.canvas, "manager", None) is not None:
            pyplot().close(fig)


def recording_figure(summary: dict, frames: dict, images: dict, title: str):
    """qc.png: mean images raw | corrected (same contrast), correlation, displacement, bad frames marked."""
    fig = figure((12, 7.5))
    # fixed layout (fractions of the figure): images on top, the two traces below sharing the frame axis
    grid = fig.add_gridspec(3, 2, height_ratios=(2.2, 1, 1), left=0.06, right=0.99, bottom=0.07, top=0.93,
                            hspace=0.42, wspace=0.05)
    lo, hi = contrast(images["mean_raw"], images["mean_corrected"])
    cr, cc = summary["crispness"]["raw"], summary["crispness"]["corrected"]
    for k, (key, name, crisp) in enumerate((("mean_raw", "raw", cr), ("mean_corrected", "corrected", cc))):
        ax = fig.add_subplot(grid[0, k])
        ax.imshow(images[key], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(f"mean image, {name} (crispness {crisp:.4g})", fontsize=10, y=1.0)
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
                 f" px ({summary['residual_motion_px']['verdict']})", fontsize=10, y=1.0)
    ax2 = fig.add_subplot(grid[2, :], sharex=ax)
    if np.isfinite(frames["mean_displacement"]).any():
        ax2.plot(t, frames["mean_displacement"], color="tab:green", lw=1, label="mean |flow|")
        ax2.plot(t, frames["max_displacement"], color="tab:olive", lw=0.8, label="max |flow|")
    ax2.plot(t, frames["raw_shift_x"], color="tab:orange", lw=0.8, label="raw shift x")
    ax2.plot(t, frames["raw_shift_y"], color="tab:purple", lw=0.8, label="raw shift y")
    ax2.set_ylabel("displacement (px)")
    ax2.set_xlabel("frame")
    for a in (ax, ax2):
        if bad.size:  # one collection, not an artist per frame
            a.vlines(bad, 0, 1, transform=a.get_xaxis_transform(), color="red", lw=0.8, alpha=0.6)
        a.legend(loc="lower left", fontsize=8, ncol=4)
    nb = summary["bad_frames"]["count"]
    # y given: matplotlib then skips placing each title above the tick labels (a third of the drawing time)
    ax2.set_title(f"displacement; {nb} bad frame(s) (red)" if nb else "displacement; no bad frames",
                  fontsize=10, y=1.0)
    fig.suptitle(title, fontsize=11)
    return fig


def draw_recording(path, summary: dict, frames: dict, images: dict, title: str) -> None:
    """qc.png: :func:`recording_figure` saved atomically at ``path``."""
    save_figure(recording_figure(summary, frames, images, title), path)
