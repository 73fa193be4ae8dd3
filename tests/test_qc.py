"""fr-qc: the measures, bad-frame detection, outputs and bad input.

Stage-1 folders are built here from synthetic recordings with known motion:
the "corrected" video is the true unmoved field (what a perfect correction
gives), so the QC is tested without paying for a compensation run.
"""

import csv
import json

import h5py
import numpy as np
import pytest
from PIL import Image

from frkit import layout, options, tools
from frkit.errors import InputError
from frkit.qc import measures as M
from frkit.qc.recording import find_inputs, measure
from frkit.synth import SyntheticSession

from conftest import run_tool as tool, truncate_to_half

H, W, T = 64, 80, 60
BLANK, JUMP, TORN = 10, 30, 45


def _noisy(x, seed):
    return np.random.default_rng(seed).poisson(np.clip(x, 0, None) * 100).astype(np.uint16)


def _stage1(folder, raw, corrected, record=True, flow=None):
    """A stage-1 folder: compensated.HDF5 (ch1), idx.hdf (all valid), optional w.h5, compensate.json -> ``raw``."""
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / layout.COMPENSATED, "w") as f:
        f["ch1"] = corrected
    with h5py.File(folder / layout.VALID_IDX, "w") as f:
        f["idx"] = np.ones(corrected.shape, dtype=np.uint8)
    if flow is not None:
        with h5py.File(folder / layout.FLOW, "w") as f:
            f["u"], f["v"] = flow[..., 0].astype(np.float32), flow[..., 1].astype(np.float32)
    if record:
        (folder / layout.RECORD).write_text(json.dumps({"tool": "fr-compensate", "input": {"path": str(raw)},
                                                        "parameters": {"bin_size": 1}}))
    return folder


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """(clean folder, folder with injected bad frames, true flow) of one synthetic recording."""
    root = tmp_path_factory.mktemp("qc")
    s = SyntheticSession(H, W, T, seed=1, shift_px=3.0, warp_px=1.0, margin=40)
    raw = s.frames()[..., 0]
    corrected = _noisy(s.still_frames(), 7)
    flow = np.stack([s.true_flow(t) for t in range(T)])
    with h5py.File(root / "clean.h5", "w") as f:
        f["mov"] = raw
    bad = raw.copy()
    bad[BLANK] = 0
    bad[JUMP] = np.roll(raw[JUMP], 30, axis=1)  # a 30 px jump of one frame
    bad[TORN, H // 2:] = np.roll(raw[TORN, H // 2:], 12, axis=1)  # the lower half torn 12 px sideways
    with h5py.File(root / "bad.h5", "w") as f:
        f["mov"] = bad
    cbad = corrected.copy()
    cbad[BLANK] = 0
    clean = _stage1(root / "clean", root / "clean.h5", corrected, flow=flow)
    dirty = _stage1(root / "bad", root / "bad.h5", cbad)
    return clean, dirty, flow


def _qc(folder, **kw):
    return tools.qc(folder, None, options.resolve(options.QC, **kw))


def test_injected_blank_jumped_and_torn_frames_are_flagged(synthetic):
    _, dirty, _ = synthetic
    s = _qc(dirty)
    assert {b["frame"]: b["reasons"] for b in s["bad_frames"]["frames"]} == {
        BLANK: ["blank"], JUMP: ["jump"], TORN: ["torn"]}
    with open(dirty / layout.QC_FRAMES, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["frame"]) for r in rows] == list(range(T))
    assert [i for i, r in enumerate(rows) if r["bad"] == "1"] == [BLANK, JUMP, TORN]
    assert 25 < float(rows[JUMP]["raw_shift_x"]) < 35  # the jump is measured, not just flagged


def test_clean_recording_no_flags_and_correction_raises_correlation_and_crispness(synthetic):
    clean, _, flow = synthetic
    s = _qc(clean)
    assert s["bad_frames"]["count"] == 0 and s["verdicts"]["bad_frames"] == "none"
    c = s["correlation"]
    assert c["corrected"]["mean"] > c["raw"]["mean"] + 0.1 and c["corrected"]["p5"] > c["raw"]["p5"]
    assert s["crispness"]["corrected"] > 1.3 * s["crispness"]["raw"]
    assert s["verdicts"]["correlation"] == "improved" and s["verdicts"]["crispness"] == "improved"
    # residual motion is measured on the corrected video: near zero for a perfect correction,
    # while the raw video moves by pixels
    assert s["residual_motion_px"]["median"] < 0.3 < 1.0 < s["raw_motion_px"]["p95"]
    # displacement statistics from w.h5: the true flow's
    mag = np.hypot(flow[..., 0], flow[..., 1])
    assert s["displacement"]["source"] == layout.FLOW
    assert s["displacement"]["max"] == pytest.approx(mag.max(), rel=1e-4)
    assert s["displacement"]["mean"] == pytest.approx(mag.mean(axis=(1, 2)).mean(), rel=1e-4)
    png = Image.open(clean / layout.QC_PNG)
    png.load()
    assert png.size[0] > 800 and np.asarray(png.convert("L")).std() > 10


def test_streaming_batch_size_does_not_change_results(synthetic):
    clean, _, _ = synthetic
    a, fa, _ = measure(find_inputs(clean), batch=64)
    b, fb, _ = measure(find_inputs(clean), batch=7)
    for k in ("correlation_raw", "correlation_corrected", "residual_px", "raw_shift_x", "mean_displacement"):
        np.testing.assert_allclose(fa[k], fb[k], rtol=1e-9, atol=1e-12)
    assert a["crispness"] == pytest.approx(b["crispness"])


def test_threads_give_the_same_bits_as_one(synthetic, tmp_path):
    """Batches measured side by side in threads are added up in order: every number equals one thread's
    (float64 frames too, whose sums depend on the order of the additions)."""
    clean, dirty, _ = synthetic
    with h5py.File(clean / layout.COMPENSATED) as f:
        fractional = f["ch1"][:] * (1 / 3)  # float64 with every bit used: the sums depend on their order
    floats = _stage1(tmp_path / "float", find_inputs(clean).raw, fractional)
    for folder in (clean, dirty, floats):
        one = measure(find_inputs(folder), batch=7, workers=1)
        three = measure(find_inputs(folder), batch=7, workers=3)
        for k, col in one[1].items():
            if k == "reasons":
                assert three[1][k] == col
            else:
                np.testing.assert_array_equal(three[1][k], col, err_msg=k)
        for k, image in one[2].items():
            np.testing.assert_array_equal(three[2][k], image, err_msg=k)
        assert three[0]["crispness"] == one[0]["crispness"]


def _with_statistics(src, dst, flow, keys):
    """A copy of stage-1 folder ``src`` with a statistics.npz of ``keys`` (computed from ``flow``)."""
    from frkit.flow.policy import STAT_NAMES, flow_statistics

    dst.mkdir()
    for f in src.iterdir():
        if f.suffix != ".png":
            (dst / f.name).write_bytes(f.read_bytes())
    stats = flow_statistics(flow.astype(np.float32))
    np.savez(dst / layout.STATISTICS, **{k: stats[:, STAT_NAMES.index(k)] for k in keys})
    return dst


def test_displacement_from_frkit_statistics_without_the_flow_fields(synthetic, tmp_path):
    """frkit's statistics.npz holds every displacement column, so w.h5 is not read; a pyflowreg
    statistics.npz (no mean_u, mean_v) leaves the fields to be read, as without statistics."""
    clean, _, flow = synthetic
    from_fields = measure(find_inputs(clean))[1]
    frkit_stats = _with_statistics(clean, tmp_path / "frkit", flow, ("mean_disp", "max_disp", "mean_div",
                                                                      "mean_translation", "mean_u", "mean_v"))
    peer_stats = _with_statistics(clean, tmp_path / "peer", flow, ("mean_disp", "max_disp", "mean_div",
                                                                    "mean_translation"))
    inputs = find_inputs(frkit_stats)
    assert inputs.flow is None and "flow" not in inputs.files() and "statistics" in inputs.files()
    summary, cols, _ = measure(inputs)
    assert summary["displacement"]["source"] == layout.STATISTICS
    for k in ("mean_displacement", "max_displacement", "mean_u", "mean_v"):
        assert np.isfinite(cols[k]).all()
        np.testing.assert_allclose(cols[k], from_fields[k], rtol=1e-6, atol=1e-9, err_msg=k)
    inputs = find_inputs(peer_stats)
    assert inputs.flow == peer_stats / layout.FLOW
    summary, cols, _ = measure(inputs)
    assert summary["displacement"]["source"] == layout.FLOW
    np.testing.assert_array_equal(cols["mean_u"], from_fields["mean_u"])


def test_measures_shift_sign_and_correlation_over_valid_pixels():
    rng = np.random.default_rng(0)
    img = np.asarray(np.kron(rng.random((16, 20)), np.ones((4, 4))), dtype=np.float64)
    moved = np.roll(img, (3, -5), axis=(0, 1))  # content +3 rows, -5 columns
    dx, dy = M.Template(img).shifts(moved[None])[0, 0]
    assert (dx, dy) == pytest.approx((-5, 3), abs=0.2)
    # a frame equal to the template over its valid pixels, garbage outside: r = 1
    frame = img.copy()
    frame[:, :10] = 1e6
    valid = np.ones(img.shape, bool)
    valid[:, :10] = False
    assert M.frame_correlation(frame[None], img, valid[None])[0] == pytest.approx(1.0)
    assert M.frame_correlation(frame[None], img)[0] < 0.9
    # crispness: CaImAn's Frobenius norm of the gradient magnitude
    gy, gx = np.gradient(img)
    assert M.crispness(img) == pytest.approx(np.sqrt((gx ** 2 + gy ** 2).sum()))


def test_saturated_frames_are_flagged(tmp_path, synthetic):
    clean, _, _ = synthetic
    with h5py.File(find_inputs(clean).raw) as f:
        raw = f["mov"][:]
    raw[5, :20] = np.iinfo(np.uint16).max
    with h5py.File(tmp_path / "sat.h5", "w") as f:
        f["mov"] = raw
    with h5py.File(clean / layout.COMPENSATED) as f:
        corrected = f["ch1"][:]
    d = _stage1(tmp_path / "sat", tmp_path / "sat.h5", corrected)
    s = _qc(d)
    assert [(b["frame"], b["reasons"]) for b in s["bad_frames"]["frames"]] == [(5, ["saturated"])]


def test_real_recording_few_false_alarms(tmp_path, shared_data):
    """A real movie (no correction: the corrected video is the raw one): at most 1 frame in 20 flagged."""
    from frkit.io import open_video

    src = shared_data / "allen_movie_100x100x100.h5"
    with open_video(src) as r:
        frames = r.read(0, r.shape[0])[..., 0]
    d = _stage1(tmp_path / "allen", src, frames)
    s = _qc(d)
    assert s["bad_frames"]["count"] <= len(frames) // 20
    assert s["correlation"]["raw"]["mean"] == pytest.approx(s["correlation"]["corrected"]["mean"])


# -- the command line and bad input ---------------------------------------------------------------------------

def _no_outputs(folder):
    return not any((folder / n).exists() for n in layout.QC_OUTPUTS) and not list(folder.glob("*.partial"))


def test_cli_end_to_end_with_output_folder(synthetic, tmp_path):
    clean, _, _ = synthetic
    p = tool("fr-qc", clean, "-o", tmp_path / "qc")
    assert p.returncode == 0, p.stderr
    assert "correlation" in p.stderr and "bad frame" in p.stderr
    s = json.loads((tmp_path / "qc" / layout.QC_JSON).read_text())
    assert s["frames"] == T and set(s["verdicts"]) == {"correlation", "crispness", "residual_motion",
                                                        "bad_frames", "displacement"}
    assert (tmp_path / "qc" / layout.QC_PNG).stat().st_size > 10_000


def test_cli_folder_without_corrected_video(tmp_path):
    (tmp_path / "empty").mkdir()
    p = tool("fr-qc", tmp_path / "empty")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "compensated.HDF5" in p.stderr
    assert _no_outputs(tmp_path / "empty")


def test_cli_record_pointing_to_missing_input(tmp_path, synthetic):
    clean, _, _ = synthetic
    with h5py.File(clean / layout.COMPENSATED) as f:
        corrected = f["ch1"][:]
    d = _stage1(tmp_path / "gone", tmp_path / "moved_away.h5", corrected)
    p = tool("fr-qc", d)
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert "moved_away.h5" in p.stderr and "--input" in p.stderr
    assert _no_outputs(d)


def test_peer_folder_needs_input(tmp_path, synthetic):
    clean, _, _ = synthetic
    with h5py.File(clean / layout.COMPENSATED) as f:
        corrected = f["ch1"][:]
    d = _stage1(tmp_path / "peer", None, corrected, record=False)
    p = tool("fr-qc", d)
    assert p.returncode == 2 and "--input" in p.stderr and _no_outputs(d)
    p = tool("fr-qc", d, "--input", find_inputs(clean).raw, "-q")
    assert p.returncode == 0, p.stderr
    assert json.loads((d / layout.QC_JSON).read_text())["displacement"]["source"] is None


def test_cli_truncated_video_leaves_nothing(tmp_path, synthetic):
    clean, _, _ = synthetic
    with h5py.File(clean / layout.COMPENSATED) as f:
        corrected = f["ch1"][:]
    d = _stage1(tmp_path / "cut", find_inputs(clean).raw, corrected)
    # a previous result must not survive a failed rerun
    assert tool("fr-qc", d, "-q").returncode == 0 and (d / layout.QC_JSON).is_file()
    truncate_to_half(d / layout.COMPENSATED)
    p = tool("fr-qc", d)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "compensated" in p.stderr
    assert _no_outputs(d)


def test_raw_with_other_frame_count_is_refused(tmp_path, synthetic):
    clean, _, _ = synthetic
    with h5py.File(clean / layout.COMPENSATED) as f:
        corrected = f["ch1"][: T - 5]
    d = _stage1(tmp_path / "short", find_inputs(clean).raw, corrected)
    with pytest.raises(InputError, match="frames"):
        _qc(d)


def test_multi_file_recording_is_found_from_the_record(tmp_path):
    """A recording of several files (a folder of numbered TIFFs) corrected by fr-compensate: fr-qc reopens it
    from the record (no --input), and a file of the group gone is one line, exit 2."""
    import tifffile

    s = SyntheticSession(48, 56, 24, seed=3, shift_px=2.0, warp_px=0.5, margin=30)
    raw = _noisy(s.frames()[..., 0], 5)
    src = tmp_path / "rec"
    src.mkdir()
    for i in range(3):
        tifffile.imwrite(src / f"rec_{i + 1:05d}.tif", raw[8 * i:8 * (i + 1)])
    p = tool("fr-compensate", src, "-o", tmp_path / "out", "--quality", "fast", "-q")
    assert p.returncode == 0, p.stderr
    record = json.loads((tmp_path / "out" / layout.RECORD).read_text())
    assert record["input"]["files"] == 3
    q = tool("fr-qc", tmp_path / "out", "-q")
    assert q.returncode == 0, q.stderr
    summary = json.loads((tmp_path / "out" / layout.QC_JSON).read_text())
    assert summary["frames"] == 24
    assert summary["correlation"]["corrected"]["mean"] > summary["correlation"]["raw"]["mean"]
    (src / "rec_00002.tif").unlink()
    for name in layout.QC_OUTPUTS:
        (tmp_path / "out" / name).unlink()
    q = tool("fr-qc", tmp_path / "out")
    assert q.returncode == 2 and q.stderr.count("\n") == 1 and "--input" in q.stderr
    assert _no_outputs(tmp_path / "out")
