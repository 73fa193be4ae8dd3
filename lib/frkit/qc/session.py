"""The session report: ``fr-qc --config session.toml``.

Per recording: its QC (reused when ``qc.json`` was measured from exactly the
present files), its ``qc.png`` and a row of numbers. For the session: the
temporal averages before and after alignment to the center as colour
overlays (center magenta, recording green: where they agree the overlay is
grey, where they disagree coloured fringes show), the displacement-magnitude
map of each ``w_to_reference.npz``, the final valid mask over the center's
average, and the alignment correlation with a warning where it looks wrong.

Alignment correlation: Pearson's r between the center's temporal average
and the recording's average warped into the center's grid by its
``w_to_reference`` (linear interpolation), over the pixels whose sample lies
inside the recording's frame; "before" is the same without the warp. A
recording is flagged when r after < ``alignment_min_correlation`` (default
0.6) or when the alignment lowered it by more than 0.02.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .. import layout, tools
from ..align import WARN_CORRELATION
from ..errors import InputError, OptionError
from ..io.atomic import atomic_output, remove_quietly, write_json_atomic
from ..mask import load_average, load_flow
from ..session.stages import session_files
from .figures import contrast, png_bytes, pyplot
from .recording import find_inputs, up_to_date

__all__ = ["alignment", "overlay", "session_report", "ALIGNMENT_DROP"]

#: an alignment that lowers the correlation by more than this is flagged
ALIGNMENT_DROP = 0.02


def _gray(avg: np.ndarray) -> np.ndarray:
    return avg.mean(axis=-1) if avg.ndim == 3 else np.asarray(avg, dtype=np.float64)


def _pearson(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float | None:
    if where.sum() < 2:
        return None
    x, y = a[where] - a[where].mean(), b[where] - b[where].mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else None


def warp_average(image: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image(y + v, x + u)`` (linear) and where that sample lies inside the frame (the overlap)."""
    h, w = image.shape
    y = np.arange(h)[:, None] + flow[..., 1]
    x = np.arange(w)[None, :] + flow[..., 0]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    return ndi.map_coordinates(image, [y, x], order=1, mode="nearest"), inside


def alignment(center: np.ndarray, moving: np.ndarray, flow: np.ndarray) -> dict:
    """Correlation of ``moving`` with ``center`` (``(H, W)``) before and after warping by ``flow``."""
    warped, inside = warp_average(moving, flow)
    return {"before": _pearson(center, moving, np.ones(center.shape, bool)),
            "after": _pearson(center, warped, inside), "overlap_fraction": float(inside.mean()),
            "warped": warped}


def _unit(img: np.ndarray, lo_hi=None) -> np.ndarray:
    lo, hi = lo_hi or contrast(img)
    return np.clip((img - lo) / (hi - lo), 0, 1)


def overlay(center: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """RGB ``(H, W, 3)``: the center in magenta (red + blue), ``moving`` in green; agreement is grey."""
    c, m = _unit(center), _unit(moving)
    return np.stack([c, m, c], axis=-1)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _fmt(x, spec=".3f") -> str:
    return "-" if x is None else format(x, spec)


def _recording_qc(folder: Path, raw: Path, params, progress) -> dict:
    """The recording's qc.json: reused when it was measured from exactly these files, else measured now."""
    inputs = find_inputs(folder, raw)
    qc_json = folder / layout.QC_JSON
    if not up_to_date(qc_json, inputs):
        tools.qc(folder, None, params.replace(input=str(raw), output=None), progress)
    return json.loads(qc_json.read_text())


def _session_figure(names, center_idx, avgs, aligned, flows, final_valid, threshold):
    plt = pyplot()
    n = len(names)
    fig, axes = plt.subplots(n + 1, 3, figsize=(12, 3.6 * (n + 1)), dpi=90, layout="constrained",
                             squeeze=False)
    center = avgs[center_idx]
    vmax = max(float(np.hypot(f[..., 0], f[..., 1]).max()) for f in flows) or 1.0
    for i, name in enumerate(names):
        a = aligned[i]
        axes[i, 0].imshow(overlay(center, avgs[i]))
        axes[i, 0].set_title(f"{name}: before alignment (r {_fmt(a['before'])})", fontsize=9)
        axes[i, 1].imshow(overlay(center, a["warped"]))
        axes[i, 1].set_title(f"{name}: after alignment (r {_fmt(a['after'])})"
                             + ("  WARNING" if a["warning"] else ""), fontsize=9,
                             color="red" if a["warning"] else "black")
        im = axes[i, 2].imshow(np.hypot(flows[i][..., 0], flows[i][..., 1]), cmap="viridis", vmin=0, vmax=vmax)
        axes[i, 2].set_title(f"{name}: |w_to_reference| (px)" + (" (center)" if i == center_idx else ""),
                             fontsize=9)
        fig.colorbar(im, ax=axes[i, 2], shrink=0.8)
    ax = axes[n, 0]
    ax.imshow(_unit(center), cmap="gray")
    if final_valid is not None:
        tint = np.zeros(center.shape + (4,))
        tint[~final_valid] = (1, 0, 0, 0.45)
        ax.imshow(tint)
        ax.set_title(f"final valid mask over the center\n({100 * final_valid.mean():.1f} % valid; red: invalid)",
                     fontsize=9)
    else:
        ax.set_title("center average\n(no final_valid_idx.npz yet: run stage 3)", fontsize=9)
    ax = axes[n, 1]
    r = [a["after"] if a["after"] is not None else np.nan for a in aligned]
    ax.bar(range(n), r, color=["red" if a["warning"] else "tab:green" for a in aligned])
    ax.set_xticks(range(n), names, rotation=30, fontsize=8)
    ax.set_ylim(min(0.0, np.nanmin(r) if np.isfinite(r).any() else 0.0), 1.0)
    ax.axhline(threshold, color="red", lw=1, ls="--")
    ax.set_title(f"aligned average vs center: correlation (warning below {threshold:g})", fontsize=9)
    axes[n, 2].set_axis_off()
    for row in axes[:n]:
        for a in row[:2]:
            a.set_axis_off()
    axes[n, 0].set_axis_off()
    fig.suptitle("session: center magenta, recording green (grey where they agree)", fontsize=11)
    return fig


def _html(title, headline, rows, images, session_png, warnings) -> str:
    esc = html.escape
    head = ("<tr><th>recording</th><th>frames</th><th>correlation raw &rarr; corrected</th>"
            "<th>crispness raw &rarr; corrected</th><th>residual motion (px)</th><th>bad frames</th>"
            "<th>max displacement (px)</th><th>alignment r before &rarr; after</th><th>verdicts</th></tr>")
    body = []
    for r in rows:
        cls = ' class="warn"' if r["warning"] else ""
        body.append(f"<tr{cls}><td>{esc(r['name'])}</td><td>{r['frames']}</td>"
                    f"<td>{_fmt(r['corr_raw'])} &rarr; {_fmt(r['corr_corrected'])}</td>"
                    f"<td>{_fmt(r['crisp_raw'], '.4g')} &rarr; {_fmt(r['crisp_corrected'], '.4g')}</td>"
                    f"<td>{_fmt(r['residual_px'], '.2f')}</td><td>{r['bad_frames']}</td>"
                    f"<td>{_fmt(r['max_displacement'], '.2f')}</td>"
                    f"<td>{_fmt(r['alignment_before'])} &rarr; {_fmt(r['alignment_after'])}"
                    f"{esc(r['alignment_note'])}</td><td>{esc(r['verdicts'])}</td></tr>")
    warn = "".join(f"<li>{esc(w)}</li>" for w in warnings) or "<li>none</li>"
    figs = "".join(f'<h3>{esc(name)}</h3><img alt="QC of {esc(name)}" src="{_data_uri(png)}">'
                   for name, png in images)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em;max-width:1300px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #bbb;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}
tr.warn td{{background:#fdd}}img{{max-width:100%;border:1px solid #ddd}}.headline{{font-size:1.1em}}</style>
</head><body>
<h1>{esc(title)}</h1>
<p class="headline">{esc(headline)}</p>
<h2>Warnings</h2><ul>{warn}</ul>
<h2>Recordings</h2><table>{head}{''.join(body)}</table>
<h2>Session: alignment to the center</h2>
<img alt="session QC" src="{_data_uri(session_png)}">
<h2>Per recording</h2>{figs}
</body></html>
"""


def session_report(cfg, params, progress=None) -> dict:
    """QC of every recording of the session, then report.html, session_qc.png, session_qc.json in final_results."""
    if cfg.settings.planes is not None:  # one report compares every recording with one center
        raise OptionError("fr-qc --config: the session report covers sessions without 'planes'; with planes, "
                          "run fr-qc on each <stem>_plane<K> folder ('make qc' does)")
    files, center_idx = session_files(cfg)
    recordings = cfg.recordings()
    final = cfg.final_dir
    outputs = [final / n for n in layout.SESSION_QC_OUTPUTS]
    tools.check_outputs([p for f in files for p in (f.average, f.w_to_reference, f.compensated)], outputs)
    for p in reversed(outputs):
        remove_quietly(p)
    names = [f.stem for f in files]
    qcs = [_recording_qc(f.compensated.parent, raw, params, progress) for f, raw in zip(files, recordings)]
    avgs = [_gray(load_average(f.average)) for f in files]
    if len({a.shape for a in avgs}) != 1:
        raise InputError("the recordings' temporal averages differ in size; a session needs one frame size")
    flows = [load_flow(f.w_to_reference) for f in files]
    aligned, rows, warnings = [], [], []
    for i, f in enumerate(files):
        a = alignment(avgs[center_idx], avgs[i], flows[i])
        with np.load(f.w_to_reference) as z:
            key = float(z[layout.ALIGNMENT_CORRELATION]) if layout.ALIGNMENT_CORRELATION in z.files else None
        a["reported"] = key
        after = a["after"]
        low = after is None or after < params.alignment_min_correlation
        dropped = after is not None and a["before"] is not None and after < a["before"] - ALIGNMENT_DROP
        # fr-align's own judgement of its match (band-passed, in the overlap): poor means it warned
        judged_poor = key is not None and key < WARN_CORRELATION
        a["warning"] = i != center_idx and (low or dropped or judged_poor)
        if a["warning"]:
            why = (f"correlation with the center {_fmt(after)} < {params.alignment_min_correlation:g}" if low else
                   f"alignment lowered the correlation with the center ({_fmt(a['before'])} -> {_fmt(after)})"
                   if dropped else f"fr-align judged the match poor (r {key:.3f} < {WARN_CORRELATION:g})")
            warnings.append(f"{f.stem}: {why}; check {f.w_to_reference}")
        aligned.append(a)
        q = qcs[i]
        if q["bad_frames"]["count"]:
            warnings.append(f"{f.stem}: {q['bad_frames']['count']} bad frame(s) "
                            f"({', '.join(str(b['frame']) for b in q['bad_frames']['frames'][:10])}"
                            f"{', ...' if q['bad_frames']['count'] > 10 else ''})")
        rows.append({
            "name": f.stem + (" (center)" if i == center_idx else ""), "frames": q["frames"],
            "corr_raw": q["correlation"]["raw"]["mean"], "corr_corrected": q["correlation"]["corrected"]["mean"],
            "crisp_raw": q["crispness"]["raw"], "crisp_corrected": q["crispness"]["corrected"],
            "residual_px": q["residual_motion_px"]["median"], "bad_frames": q["bad_frames"]["count"],
            "max_displacement": q["displacement"].get("max"), "alignment_before": a["before"],
            "alignment_after": after, "alignment_reported": key,
            "alignment_note": f" (fr-align: {key:.3f})" if key is not None else "",
            "verdicts": ", ".join(f"{k} {v}" for k, v in q["verdicts"].items()), "warning": a["warning"],
        })
    final_valid = None
    if (final / layout.FINAL_NPZ).is_file():
        with np.load(final / layout.FINAL_NPZ) as z:
            fv = np.asarray(z["final_valid"], dtype=bool)
        final_valid = fv if fv.shape == avgs[center_idx].shape else None
    others = [a["after"] for i, a in enumerate(aligned) if i != center_idx and a["after"] is not None]
    mean = lambda k: float(np.mean([r[k] for r in rows if r[k] is not None]))  # noqa: E731
    headline = (f"correlation {mean('corr_raw'):.3f} -> {mean('corr_corrected'):.3f} (mean of {len(rows)}), "
                f"residual motion {max(r['residual_px'] or 0 for r in rows):.2f} px (worst), "
                f"{sum(r['bad_frames'] for r in rows)} bad frame(s), alignment r "
                + (f"{min(others):.3f} (lowest)" if others else "- (one recording)")
                + f", {sum(a['warning'] for a in aligned)} alignment warning(s)")
    fig = _session_figure(names, center_idx, avgs, aligned, flows, final_valid, params.alignment_min_correlation)
    plt = pyplot()
    try:
        session_png = png_bytes(fig)
    finally:
        plt.close(fig)
    images = [(names[i], (f.compensated.parent / layout.QC_PNG).read_bytes()) for i, f in enumerate(files)]
    final.mkdir(parents=True, exist_ok=True)
    with atomic_output(final / layout.SESSION_QC_PNG) as tmp:
        tmp.write_bytes(session_png)
    with atomic_output(final / layout.REPORT_HTML) as tmp:
        tmp.write_text(_html(f"frkit session report: {cfg.root}", headline, rows, images, session_png, warnings),
                       encoding="utf-8")
    summary = {
        "tool": "fr-qc", "center": names[center_idx], "headline": headline, "warnings": warnings,
        "alignment_min_correlation": params.alignment_min_correlation, "alignment_max_drop": ALIGNMENT_DROP,
        "final_valid_fraction": None if final_valid is None else float(final_valid.mean()),
        "recordings": [{k: v for k, v in r.items() if k != "alignment_note"} | {"stem": names[i],
                        "overlap_fraction": aligned[i]["overlap_fraction"]} for i, r in enumerate(rows)],
        "report": str(final / layout.REPORT_HTML),
    }
    write_json_atomic(final / layout.SESSION_QC_JSON, summary)
    return summary

