"""The session pipeline through Make, cluster array tasks, bad sessions, peer folders."""

import json
import os
import shutil
import sys

import h5py
import numpy as np
import pytest

from frkit import layout
from frkit.synth import SyntheticSession, session_views

from conftest import BIN, ENV, run_tool as tool

H, W, T = 48, 64, 24


def write_session(folder, n=3, sizes=None, toml_extra=""):
    folder.mkdir(parents=True, exist_ok=True)
    views = session_views(n, H, W, seed=2, max_shift=4.0, max_rotation=1.0, elastic_px=1.0)
    for i, v in enumerate(views):
        h, w = sizes[i] if sizes else (H, W)
        if (h, w) != (H, W):
            v = None
        s = SyntheticSession(h, w, T, seed=2, shift_px=1.5, warp_px=0.5, view=v, motion_seed=20 + i, margin=32)
        with h5py.File(folder / f"rec_{i + 1}.h5", "w") as f:
            f["mov"] = s.frames()[..., 0]
    cfg = folder / "session.toml"
    cfg.write_text('root = "."\npattern = "rec_*.h5"\nstage1_quality_setting = "fast"\n'
                   'align_output_format = "HDF5"\niterations_between = 30\n' + toml_extra)
    return cfg


def plan(cfg):
    p = tool(sys.executable, "-m", "frkit.session", "plan", cfg)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def make(mk, *targets, jobs=2):
    return tool("make", "--no-print-directory", f"-j{jobs}", "-f", mk, *targets)


def mtimes(paths):
    return {p: p.stat().st_mtime_ns for p in paths}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    root = tmp_path_factory.mktemp("session")
    cfg = write_session(root)
    mk = plan(cfg)
    p = make(mk, "all")
    assert p.returncode == 0, p.stdout + p.stderr
    return root, cfg


def test_all_stages_write_the_seed_layout(session):
    root, _ = session
    out, final = root / "compensated_outputs", root / "final_results"
    for i in (1, 2, 3):
        d = out / f"rec_{i}"
        for name in (layout.COMPENSATED, layout.VALID_IDX, layout.TEMPORAL_AVERAGE, layout.W_TO_REFERENCE,
                     layout.STATISTICS, layout.REFERENCE, layout.RECORD):
            assert (d / name).is_file(), d / name
        assert json.loads((d / "status.json").read_text()) == {"stage1": "done", "stage2": "done"}
        assert (final / f"aligned_rec_{i}.hdf5").is_file()
        assert (final / f"rec_{i}_valid_idx.png").is_file() and (final / f"rec_{i}_valid_idx_aligned.png").is_file()
    for name in ("final_valid_idx.npz", "final_valid_idx.mat", "final_valid_idx.png"):
        assert (final / name).is_file()
    assert json.loads((final / "status.json").read_text()) == {"stage3": "done"}
    z = np.load(final / "final_valid_idx.npz")
    assert int(z["middle_idx"]) == 1 and 0.5 < z["final_valid"].mean() < 1.0
    w = np.load(out / "rec_2" / layout.W_TO_REFERENCE)
    assert not w["u"].any() and not w["v"].any()  # the center
    for i in (1, 2, 3):  # one dtype whatever the recording, the center's zero field included
        assert np.load(out / f"rec_{i}" / layout.W_TO_REFERENCE)["u"].dtype == layout.W_TO_REFERENCE_DTYPE
    with h5py.File(final / "aligned_rec_1.hdf5") as f:
        assert f["ch1"].shape == (T, H, W) and f["ch1"].dtype == np.uint16


def test_rerun_does_nothing_and_changes_recompute_only_what_depends_on_them(session):
    root, cfg = session
    out = root / "compensated_outputs"
    p = make(plan(cfg), "all")
    assert p.returncode == 0 and "Nothing to be done" in p.stdout and "fr-" not in p.stdout
    # other spellings of the same values, and a setting that never changes results: nothing to redo
    text = cfg.read_text()
    cfg.write_text(text.replace("iterations_between = 30", "iterations_between = 30\nalpha_between = [25, 25.0]")
                   + "align_chunk_size = 7\n[flow_options]\nalpha = \"AUTO\"\nquality_setting = \"fast\"\n")
    p = make(plan(cfg), "all")
    assert p.returncode == 0 and "Nothing to be done" in p.stdout and "fr-" not in p.stdout, p.stdout
    cfg.write_text(text)

    stage1 = [out / f"rec_{i}" / layout.COMPENSATED for i in (1, 2, 3)]
    stage2 = [out / f"rec_{i}" / layout.W_TO_REFERENCE for i in (1, 2, 3)]
    before1, before2 = mtimes(stage1), mtimes(stage2)
    cfg.write_text(cfg.read_text().replace("iterations_between = 30", "iterations_between = 40"))
    p = make(plan(cfg), "all")
    assert p.returncode == 0, p.stderr
    assert "fr-compensate" not in p.stdout and p.stdout.count("fr-align") == 3 and "fr-mask" in p.stdout
    assert mtimes(stage1) == before1 and all(mtimes(stage2)[f] > before2[f] for f in stage2)

    # a new input file: only that recording's stage 1, then stages 2-3
    src = root / "rec_1.h5"
    os.utime(src)
    p = make(plan(cfg), "all")
    assert p.stdout.count("fr-compensate") == 1 and "rec_1.h5" in p.stdout


def test_center_change_realigns_without_stage1(tmp_path):
    cfg = write_session(tmp_path, n=2)
    assert make(plan(cfg), "stage2").returncode == 0
    cfg.write_text(cfg.read_text() + 'center = "rec_2.h5"\n')
    p = make(plan(cfg), "stage2")
    assert p.returncode == 0 and "fr-compensate" not in p.stdout and p.stdout.count("fr-align") == 2


def test_array_task_runs_one_whole_stage1(tmp_path):
    cfg = write_session(tmp_path, n=3)
    env = dict(ENV, SLURM_ARRAY_TASK_ID="2")
    p = tool(BIN / "fr-compensate", "--config", cfg, "--array-task", "-q", env=env)
    assert p.returncode == 0, p.stderr
    d = tmp_path / "compensated_outputs"
    assert sorted(x.name for x in d.iterdir() if not x.name.startswith(".")) == ["rec_2"]
    assert (d / "rec_2" / layout.TEMPORAL_AVERAGE).is_file()
    assert json.loads((d / "rec_2" / "status.json").read_text()) == {"stage1": "done"}
    p = tool(BIN / "fr-compensate", "--config", cfg, "--array-task", "--index-base", "0",
             env=dict(ENV, SLURM_ARRAY_TASK_ID="3"))
    assert p.returncode == 2 and "out of range" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = tool(BIN / "fr-compensate", "--config", cfg, "--array-task", env=dict(ENV, SGE_TASK_ID="undefined"))
    assert p.returncode == 2 and "not a task number" in p.stderr


@pytest.mark.parametrize("case", ["sizes", "empty", "center", "stems"])
def test_bad_sessions_fail_before_any_work(tmp_path, case):
    if case == "sizes":
        cfg = write_session(tmp_path, n=2, sizes=[(H, W), (H, W + 8)])
        needle = "one frame size"
    elif case == "empty":
        cfg = write_session(tmp_path, n=1)
        cfg.write_text(cfg.read_text().replace('"rec_*.h5"', '"*.tif"'))
        needle = "no files match"
    elif case == "center":
        cfg = write_session(tmp_path, n=2, toml_extra='center = "rec_9.h5"\n')
        needle = "not among the recordings"
    else:
        cfg = write_session(tmp_path, n=1)
        (tmp_path / "sub").mkdir()
        shutil.copy(tmp_path / "rec_1.h5", tmp_path / "sub" / "rec_1.h5")
        cfg.write_text(cfg.read_text().replace('"rec_*.h5"', '"**/rec_*.h5"'))
        needle = "same stem"
    p = tool(sys.executable, "-m", "frkit.session", "plan", cfg)
    assert p.returncode == 2 and needle in p.stderr and len(p.stderr.strip().splitlines()) == 1
    out = tmp_path / "compensated_outputs"
    assert not out.exists() or not [x for x in out.iterdir() if not x.name.startswith(".")]


def test_missing_stage1_outputs_are_clear_errors(tmp_path):
    cfg = write_session(tmp_path, n=2)
    p = tool(BIN / "fr-mask", "--config", cfg)
    assert p.returncode == 2 and "idx.hdf" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = tool(BIN / "fr-align", tmp_path / "a.npy", tmp_path / "b.npy", "-o", tmp_path / "w.npz")
    assert p.returncode == 2 and "a.npy" in p.stderr and not (tmp_path / "w.npz").exists()


def test_pyflowreg_style_stage1_folders_are_consumed(session, tmp_path):
    """A stage-1 folder as pyflowreg writes it: compensated.hdf5, idx dataset 'ch1', no status.json."""
    root, _ = session
    peer = tmp_path / "peer"
    shutil.copytree(root, peer, ignore=shutil.ignore_patterns("final_results", ".frkit"))
    out = peer / "compensated_outputs"
    for d in out.iterdir():
        if not d.is_dir() or d.name.startswith("."):
            continue
        for name in (layout.TEMPORAL_AVERAGE, layout.W_TO_REFERENCE, "status.json", layout.RECORD):
            (d / name).unlink(missing_ok=True)
        (d / layout.COMPENSATED).rename(d / "compensated.hdf5")
        with h5py.File(d / layout.VALID_IDX, "a") as f:
            f.move("idx", "ch1")
    cfg = peer / "session.toml"
    for d in sorted(x for x in out.iterdir() if x.is_dir() and not x.name.startswith(".")):
        p = tool(BIN / "fr-average", d / "compensated.hdf5", "--config", cfg)
        assert p.returncode == 0, p.stderr
        avg = np.load(d / layout.TEMPORAL_AVERAGE)
        assert avg.shape == (H, W, 1) and avg.dtype == np.float64
    p = tool(BIN / "fr-align", "--config", cfg)
    assert p.returncode == 0, p.stderr
    p = tool(BIN / "fr-mask", "--config", cfg, "-q")
    assert p.returncode == 0, p.stderr
    mine = np.load(root / "final_results" / "final_valid_idx.npz")["final_valid"]
    theirs = np.load(peer / "final_results" / "final_valid_idx.npz")["final_valid"]
    assert np.array_equal(mine, theirs)


def test_outputs_have_the_keys_pyflowreg_stage3_reads(session):
    root, _ = session
    d = root / "compensated_outputs" / "rec_1"
    with np.load(d / layout.W_TO_REFERENCE) as z:
        # pyflowreg takes u and v by name; the match quality beside them loads without pickle
        assert set(z.files) == {"u", "v", layout.ALIGNMENT_CORRELATION, layout.ALIGNMENT_OVERLAP,
                                layout.ALIGNMENT_SCHEDULE}
        assert z["u"].shape == (H, W) and z["u"].dtype.kind == "f" and z[layout.ALIGNMENT_CORRELATION].ndim == 0
    assert np.load(d / layout.TEMPORAL_AVERAGE).shape == (H, W, 1)
    with h5py.File(d / layout.VALID_IDX) as f:
        assert f["idx"].dtype == np.uint8 and f["idx"].shape == (T, H, W)


def test_pyflowreg_runs_its_stage3_on_frkit_outputs(session, tmp_path):
    pytest.importorskip("pyflowreg")
    from pyflowreg.session.config import SessionConfig as PeerConfig
    from pyflowreg.session.stage3_valid_mask import run_stage3

    root, _ = session
    peer = tmp_path / "p"
    shutil.copytree(root, peer, ignore=shutil.ignore_patterns("final_results"))
    cfg = PeerConfig(root=str(peer), pattern="rec_*.h5", resume=False, align_output_format="HDF5")
    final = run_stage3(cfg)
    mine = np.load(root / "final_results" / "final_valid_idx.npz")["final_valid"]
    assert final.shape == mine.shape and (final == mine).mean() > 0.98


# -- fr-qc in the session pipeline --------------------------------------------------------------------------------

def test_session_builds_every_qc_output(session):
    import html as htmllib
    import re

    root, _ = session
    out, final = root / "compensated_outputs", root / "final_results"
    for i in (1, 2, 3):
        for name in layout.QC_OUTPUTS:
            assert (out / f"rec_{i}" / name).is_file(), name
    report = json.loads((final / layout.SESSION_QC_JSON).read_text())
    assert report["center"] == "rec_2" and report["warnings"] == []
    for r in report["recordings"]:
        assert r["corr_corrected"] > r["corr_raw"] and r["alignment_after"] > 0.8
        if r["stem"] != "rec_2":  # alignment to the center raises the match
            assert r["alignment_after"] > r["alignment_before"] + 0.1
    html = (final / layout.REPORT_HTML).read_text()
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) == 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http" not in html.replace("http-equiv", "") and "<link" not in html and "<script" not in html
    assert "rec_1" in html and htmllib.escape(report["headline"]) in html


def test_qc_is_redone_exactly_when_its_inputs_change(session):
    root, cfg = session
    out, final = root / "compensated_outputs", root / "final_results"
    text = cfg.read_text()
    try:
        # the report's own setting: only the session report is redone, with the warning it now calls for
        cfg.write_text(text + "qc_alignment_min_correlation = 0.999\n")
        p = make(plan(cfg), "all")
        assert p.returncode == 0, p.stderr
        assert p.stdout.count("fr-qc") == 1 and "fr-qc --config" in p.stdout and "fr-align" not in p.stdout
        report = json.loads((final / layout.SESSION_QC_JSON).read_text())
        assert sum("check" in w for w in report["warnings"]) == 2  # the two non-center recordings
        # a recording's stage-1 result changes: its qc.json and the report, nothing else of QC
        os.utime(out / "rec_3" / layout.TEMPORAL_AVERAGE)
        p = make(plan(cfg), "qc")
        assert p.returncode == 0, p.stderr
        assert f"fr-qc {out / 'rec_3'}" in p.stdout and "rec_1 -q" not in p.stdout and "fr-qc --config" in p.stdout
    finally:
        cfg.write_text(text)
    assert make(plan(cfg), "all").returncode == 0


def test_report_warns_on_a_wrong_alignment_and_shows_the_reported_key(session, tmp_path):
    root, _ = session
    copy = tmp_path / "s"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".frkit"))
    w = copy / "compensated_outputs" / "rec_1" / layout.W_TO_REFERENCE
    with np.load(w) as z:
        u, v = z["u"], z["v"]
    np.savez(w, u=u + 9.0, v=v - 7.0, alignment_correlation=np.float64(0.123))  # a field gone wrong
    w3 = copy / "compensated_outputs" / "rec_3" / layout.W_TO_REFERENCE
    with np.load(w3) as z:  # a good field that fr-align itself judged poor (its band-passed match)
        np.savez(w3, **{k: z[k] for k in z.files if k != layout.ALIGNMENT_CORRELATION},
                 alignment_correlation=np.float64(0.5))
    p = tool(BIN / "fr-qc", "--config", copy / "session.toml")
    assert p.returncode == 0, p.stderr
    assert "2 alignment warning" in p.stderr
    report = json.loads((copy / "final_results" / layout.SESSION_QC_JSON).read_text())
    rec1 = next(r for r in report["recordings"] if r["stem"] == "rec_1")
    assert rec1["warning"] and rec1["alignment_reported"] == pytest.approx(0.123)
    assert any(w.startswith("rec_1:") for w in report["warnings"])
    assert any(w.startswith("rec_3:") and "fr-align judged the match poor" in w for w in report["warnings"])
    assert "fr-align: 0.123" in (copy / "final_results" / layout.REPORT_HTML).read_text()


def test_report_renders_in_a_headless_browser(session, tmp_path):
    """report.html opened from disk in Debian's chromium: the page renders with its images, and each decodes."""
    import base64
    import io
    import re

    from PIL import Image

    root, _ = session
    report = root / "final_results" / layout.REPORT_HTML
    for uri in re.findall(r'src="data:image/png;base64,([^"]*)"', report.read_text()):
        img = Image.open(io.BytesIO(base64.b64decode(uri, validate=True)))
        img.load()
        assert img.format == "PNG" and min(img.size) > 100 and np.asarray(img.convert("L")).std() > 5
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    shot = tmp_path / "shot.png"
    p = tool(browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
             f"--screenshot={shot}", "--window-size=1300,2000", report.resolve().as_uri())
    assert shot.is_file(), p.stderr[-2000:]
    px = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert px.shape[:2] == (2000, 1300)
    assert (px.sum(axis=-1) < 600).mean() > 0.1  # not a blank page: text, tables and figures
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    # the overlays (center magenta, recording green) were drawn: the embedded images rendered
    assert ((g > r + 60) & (g > b + 60)).sum() > 500 and ((r > g + 60) & (b > g + 60)).sum() > 500


def test_make_stops_at_a_failed_alignment_until_it_is_accepted(session):
    """A recording whose average shows another field of view: fr-align exits 3 and removes its old field, make
    stops before stage 3; accept_poor_alignment in session.toml lets it through with a warning. (On the shared
    session, restored at the end: a copy would recompute stage 1.)"""
    root, cfg = session
    out, final = root / "compensated_outputs", root / "final_results"
    text, avg = cfg.read_text(), out / "rec_3" / layout.TEMPORAL_AVERAGE
    saved, saved_ns = avg.read_bytes(), avg.stat().st_mtime_ns
    before = mtimes([final / "final_valid_idx.npz"])
    try:
        other = SyntheticSession(H, W, 1, seed=9, margin=32, photons=None).template()
        np.save(avg, (other * np.load(avg).mean() / other.mean())[..., None])
        p = make(plan(cfg), "all")
        assert p.returncode != 0 and "rec_3" in p.stderr and "alignment" in p.stderr and "failed" in p.stderr
        assert "fr-compensate" not in p.stdout
        assert not (out / "rec_3" / layout.W_TO_REFERENCE).exists()  # the stale field is gone, not reused
        assert mtimes([final / "final_valid_idx.npz"]) == before  # stage 3 did not run
        cfg.write_text(text + "accept_poor_alignment = true\n")
        p = make(plan(cfg), "all")
        assert p.returncode == 0, p.stdout + p.stderr
        assert "poor alignment" in p.stderr and (out / "rec_3" / layout.W_TO_REFERENCE).exists()
        assert mtimes([final / "final_valid_idx.npz"]) != before
    finally:
        cfg.write_text(text)
        avg.write_bytes(saved)
        os.utime(avg, ns=(saved_ns, saved_ns))
        (out / "rec_3" / layout.W_TO_REFERENCE).unlink(missing_ok=True)
        assert make(plan(cfg), "all").returncode == 0
