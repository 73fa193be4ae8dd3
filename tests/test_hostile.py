"""Hostile inputs, crash safety, staleness, MATLAB (GNU Octave) interop.

Every bad-input case gives one line on stderr, exit status 2, nothing that a
later step could take for a result, and the message the README's table
promises.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from frkit import layout
from frkit.synth import SyntheticSession

from conftest import BIN, ENV, run_tool as run, write_h5 as h5

README = Path(__file__).resolve().parents[1] / "README.md"
RESULTS = set(layout.COMPENSATE_OUTPUTS) | {layout.TEMPORAL_AVERAGE, layout.W_TO_REFERENCE}


def frames(t=6, h=32, w=32, seed=0):
    return np.random.default_rng(seed).integers(10, 1000, (t, h, w)).astype(np.uint16)


# -- each case: (build(tmp) -> argv, message expected on stderr) --------------

def _missing(tmp):
    return ["fr-compensate", tmp / "nope.h5", "-o", tmp / "out"]


def _directory(tmp):
    (tmp / "adir").mkdir()
    return ["fr-compensate", tmp / "adir", "-o", tmp / "out"]


def _empty(tmp):
    (tmp / "empty.h5").write_bytes(b"")
    return ["fr-compensate", tmp / "empty.h5", "-o", tmp / "out"]


def _truncated_h5(tmp):
    data = h5(tmp / "full.h5", frames()).read_bytes()
    (tmp / "cut.h5").write_bytes(data[: len(data) // 2])
    return ["fr-compensate", tmp / "cut.h5", "-o", tmp / "out"]


def _truncated_tif(tmp):
    tifffile.imwrite(tmp / "full.tif", frames())
    data = (tmp / "full.tif").read_bytes()
    (tmp / "cut.tif").write_bytes(data[: len(data) // 2])
    return ["fr-compensate", tmp / "cut.tif", "-o", tmp / "out"]


def _no_video(tmp):
    return ["fr-compensate", h5(tmp / "novideo.h5", np.zeros(10), "x"), "-o", tmp / "out"]


def _ambiguous(tmp):
    with h5py.File(tmp / "two.h5", "w") as f:
        f["a"], f["b"] = frames(), frames(seed=1)
    return ["fr-compensate", tmp / "two.h5", "-o", tmp / "out"]


def _two_d(tmp):
    return ["fr-compensate", h5(tmp / "flat.h5", frames()[0]), "-o", tmp / "out"]


def _one_frame(tmp):
    return ["fr-compensate", h5(tmp / "one.h5", frames(t=1)), "-o", tmp / "out"]


def _nan(tmp):
    f = SyntheticSession(48, 48, 20, seed=1).frames(dtype=np.float32)[..., 0]
    f[12, 5, 5] = np.nan
    return ["fr-compensate", h5(tmp / "nan.h5", f), "-o", tmp / "out", "--quality", "fast", "--reference-frames",
            "0:4", "--buffer-size", "6"]


def _inf(tmp):
    f = SyntheticSession(48, 48, 20, seed=1).frames(dtype=np.float64)[..., 0]
    f[3, 1, 1] = -np.inf
    return ["fr-compensate", h5(tmp / "inf.h5", f), "-o", tmp / "out"]


def _constant(tmp):
    return ["fr-compensate", h5(tmp / "const.h5", np.full((6, 32, 32), 7, np.uint16)), "-o", tmp / "out"]


def _session(tmp, shapes, extra=""):
    for i, shape in enumerate(shapes):
        h5(tmp / f"r{i}.h5", np.random.default_rng(i).integers(0, 100, shape).astype(np.uint16))
    (tmp / "s.toml").write_text('root = "."\npattern = "r*.h5"\n' + extra)
    return [sys.executable, "-m", "frkit.session", "plan", tmp / "s.toml"]


def _sizes(tmp):
    return _session(tmp, [(6, 32, 32), (6, 32, 40)])


def _channels(tmp):
    _session(tmp, [(6, 32, 32), (6, 32, 32)])
    with h5py.File(tmp / "r1.h5", "w") as f:
        f["ch1"], f["ch2"] = frames(), frames(seed=2)
    return [sys.executable, "-m", "frkit.session", "plan", tmp / "s.toml"]


def _unknown_key(tmp):
    return _session(tmp, [(6, 32, 32)], "alpha_betwen = 2.0\n")


def _wrong_type(tmp):
    return _session(tmp, [(6, 32, 32)], 'cc_upsample = "4"\n')


def _unwritable(tmp):
    blocker = tmp / "file"
    blocker.write_text("x")
    return ["fr-compensate", h5(tmp / "ok.h5", frames()), "-o", blocker / "out"]


def _same_as_input(tmp):
    d = tmp / "d"
    d.mkdir()
    return ["fr-compensate", h5(d / layout.COMPENSATED, frames()), "-o", d]


def _bad_option_value(tmp):
    return ["fr-compensate", h5(tmp / "ok.h5", frames()), "-o", tmp / "out", "--quality", "best"]


CASES = {
    "missing path": (_missing, "no such file"),
    "a directory": (_directory, "is a directory"),
    "an empty file": (_empty, "file is empty"),
    "a truncated HDF5 file": (_truncated_h5, "truncated or corrupt"),
    "a truncated TIFF file": (_truncated_tif, "corrupt or truncated TIFF"),
    "HDF5 without a video dataset": (_no_video, "no video dataset"),
    "several candidate datasets": (_ambiguous, "ambiguous: several video datasets"),
    "2-D data": (_two_d, "need a time axis"),
    "fewer than 2 frames": (_one_frame, "need at least 2"),
    "NaN in a frame": (_nan, "frame 12 contains NaN or Inf"),
    "Inf in a frame": (_inf, "frame 3 contains NaN or Inf"),
    "all-constant frames": (_constant, "reference frame is constant"),
    "different frame sizes in a session": (_sizes, "a session needs one frame size and channel count"),
    "different channel counts in a session": (_channels, "a session needs one frame size and channel count"),
    "unknown config key": (_unknown_key, "unknown key 'alpha_betwen' (did you mean 'alpha_between'?)"),
    "wrong value type in the config": (_wrong_type, "must be an integer >= 1, not '4'"),
    "unwritable output directory": (_unwritable, "cannot create output directory"),
    "output path equal to the input": (_same_as_input, "the input would be overwritten"),
    "unknown option value": (_bad_option_value, "--quality: must be one of quality, balanced, fast, not 'best'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_one_line_exit_2_nothing_left(tmp_path, case):
    build, message = CASES[case]
    argv = build(tmp_path)
    if argv[0].startswith("fr-"):
        argv[0] = BIN / argv[0]
    p = run(*argv, cwd=tmp_path)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2, p.stderr
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in p.stderr, p.stderr
    assert message in lines[0], lines[0]
    left = {q.name for q in tmp_path.rglob("*") if q.is_file()}
    made_here = left & RESULTS
    if case == "output path equal to the input":
        made_here -= {layout.COMPENSATED}  # that one is the input, untouched
    assert not made_here, made_here


def test_readme_lists_every_case_with_its_message():
    text = README.read_text()
    table = text[text.index("| bad input |"):]
    for case, (_, message) in CASES.items():
        row = next((ln for ln in table.splitlines() if ln.startswith(f"| {case} |")), None)
        assert row is not None, f"README table lacks '{case}'"
        assert message.replace("|", "\\|") in row or message in row, (case, row)


# -- crash safety -------------------------------------------------------------

@pytest.fixture(scope="module")
def long_recording(tmp_path_factory):
    d = tmp_path_factory.mktemp("crash")
    s = SyntheticSession(160, 160, 240, seed=6)
    with h5py.File(d / "rec.h5", "w") as f:
        ds = f.create_dataset("mov", (240, 160, 160), np.uint16)
        for a in range(0, 240, 60):
            ds[a:a + 60] = s.frames(a, a + 60)[..., 0]
    return d / "rec.h5"


def _result_bytes(folder):
    return {n: (folder / n).read_bytes() for n in layout.COMPENSATE_OUTPUTS if n != layout.RECORD
            and (folder / n).exists()}


def test_sigkill_leaves_nothing_taken_for_a_result_and_the_rerun_matches(long_recording, tmp_path):
    args = [BIN / "fr-compensate", long_recording, "-q", "--quality", "fast", "--save-w", "--buffer-size", "50",
            "--workers", "2"]
    ref = run(*args, "-o", tmp_path / "clean")
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen([str(a) for a in args] + ["-o", str(out)], env=ENV)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "compensated.HDF5.partial").exists():
        time.sleep(0.05)
    time.sleep(0.5)  # well inside the run: frames are being written
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    names = {p.name for p in out.iterdir()}
    assert not (names & set(layout.COMPENSATE_OUTPUTS)), names  # only *.partial files
    # nothing downstream takes it for a result
    p = run(BIN / "fr-average", out / layout.COMPENSATED)
    assert p.returncode == 2 and "no such file" in p.stderr
    p = run(BIN / "fr-mask", "--recording", out, "-o", tmp_path / "final")
    assert p.returncode == 2 and "idx.hdf" in p.stderr
    # the rerun completes and equals the uninterrupted run bit for bit
    again = run(*args, "-o", out)
    assert again.returncode == 0, again.stderr
    assert not list(out.glob("*.partial"))
    assert _result_bytes(out) == _result_bytes(tmp_path / "clean")


def _session_folder(tmp, n=2, t=24):
    for i in range(n):
        s = SyntheticSession(48, 64, t, seed=3, motion_seed=30 + i)
        h5(tmp / f"rec_{i + 1}.h5", s.frames()[..., 0])
    cfg = tmp / "session.toml"
    cfg.write_text('root = "."\npattern = "rec_*.h5"\nstage1_quality_setting = "fast"\niterations_between = 20\n')
    return cfg


def _make(cfg, *targets):
    mk = run(sys.executable, "-m", "frkit.session", "plan", cfg)
    assert mk.returncode == 0, mk.stderr
    return run("make", "--no-print-directory", "-f", mk.stdout.strip(), *(targets or ("all",)))


def test_truncated_peer_output_is_recomputed_and_a_complete_one_adopted(tmp_path):
    cfg = _session_folder(tmp_path)
    assert _make(cfg, "stage1").returncode == 0
    out = tmp_path / "compensated_outputs"
    # make both folders look like another tool's: no record, lower-case name
    for d in (out / "rec_1", out / "rec_2"):
        (d / layout.RECORD).unlink()
        (d / layout.COMPENSATED).rename(d / "compensated.hdf5")
    with h5py.File(out / "rec_2" / "compensated.hdf5", "a") as f:  # rec_2 was cut short
        f["ch1"].resize(10, axis=0)
    p = _make(cfg, "stage1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("fr-compensate") == 1 and "rec_2.h5" in p.stdout
    assert json.loads((out / "rec_1" / layout.RECORD).read_text())["tool"] == "adopted"
    with h5py.File(out / "rec_2" / layout.COMPENSATED) as f:
        assert f["ch1"].shape[0] == 24
    assert not (out / "rec_2" / "compensated.hdf5").exists()  # the truncated one is gone, not shadowing


def test_records_decide_staleness_not_only_timestamps(tmp_path):
    cfg = _session_folder(tmp_path)
    assert _make(cfg).returncode == 0
    out = tmp_path / "compensated_outputs"
    # an input replaced by different content carrying an old timestamp
    old = (tmp_path / "rec_1.h5").stat().st_mtime - 3600
    h5(tmp_path / "rec_1.h5", SyntheticSession(48, 64, 24, seed=3, motion_seed=99).frames()[..., 0])
    os.utime(tmp_path / "rec_1.h5", (old, old))
    p = _make(cfg)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("fr-compensate") == 1 and "rec_1.h5" in p.stdout
    # a stage-1 parameter: every recording's stage 1, then what follows
    cfg.write_text(cfg.read_text().replace('"fast"', '"balanced"'))
    p = _make(cfg)
    assert p.stdout.count("fr-compensate") == 2 and "fr-mask" in p.stdout
    rec = json.loads((out / "rec_2" / layout.RECORD).read_text())
    assert rec["result_parameters"]["quality"] == "balanced"
    assert "Nothing to be done" in _make(cfg).stdout


# -- MATLAB: GNU Octave reads every .mat frkit writes ----------------------------

@pytest.mark.skipif(shutil.which("octave-cli") is None and shutil.which("octave") is None,
                    reason="GNU Octave is not installed")
def test_octave_loads_every_mat_file(tmp_path):
    octave = shutil.which("octave-cli") or shutil.which("octave")
    cfg = _session_folder(tmp_path, n=3)
    cfg.write_text(cfg.read_text() + 'align_output_format = "MAT"\n')
    assert _make(cfg).returncode == 0
    out, final = tmp_path / "compensated_outputs", tmp_path / "final_results"
    d = out / "rec_1"
    assert run(BIN / "fr-average", d / layout.COMPENSATED, "-o", tmp_path / "avg.npy", "--mat").returncode == 0
    assert run(BIN / "fr-align", out / "rec_2" / layout.TEMPORAL_AVERAGE, d / layout.TEMPORAL_AVERAGE, "-o",
               tmp_path / "w.npz", "--mat").returncode == 0
    z = np.load(final / "final_valid_idx.npz")
    script = f"""
    f = load('{final / "final_valid_idx.mat"}');
    assert(islogical(f.final_valid)); assert(isequal(size(f.final_valid), [48 64]));
    assert(islogical(f.aligned_valid_masks)); assert(isequal(size(f.aligned_valid_masks), [3 48 64]));
    assert(f.middle_idx == 2); assert(isa(f.temporal_averages, 'double'));
    assert(iscell(f.compensated_h5_paths) && numel(f.compensated_h5_paths) == 3);
    printf('valid %d\\n', nnz(f.final_valid));
    a = load('{tmp_path / "avg.mat"}'); assert(isequal(size(a.temporal_average), [48 64]));
    assert(isa(a.temporal_average, 'double'));
    w = load('{tmp_path / "w.mat"}'); assert(isa(w.u, 'double') && isequal(size(w.v), [48 64]));
    printf('u %.6f\\n', w.u(10, 20));
    v = load('{final / "aligned_rec_1.mat"}'); assert(isa(v.ch1, 'uint16')); assert(isequal(size(v.ch1), [48 64 24]));
    printf('px %d\\n', v.ch1(5, 7, 3));
    """
    p = subprocess.run([octave, "--no-gui", "--quiet", "--eval", script], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    values = dict(re.findall(r"(\w+) (\S+)", p.stdout))
    assert int(values["valid"]) == int(z["final_valid"].sum())
    w = np.load(tmp_path / "w.npz")
    assert abs(float(values["u"]) - w["u"][9, 19]) < 1e-5
    from frkit.io import open_video

    with open_video(final / "aligned_rec_1.mat") as r:
        assert int(values["px"]) == int(r.read(2, 3)[0, 4, 6, 0])
