"""fr-qc's figure process: it draws the figure the tool would draw itself, reports a failure in one line,
and leaves nothing when it is ended without a figure."""

import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from frkit.errors import OutputError
from frkit.qc.drawing import FigureProcess
from frkit.qc.figures import png_bytes, recording_figure
from frkit.qc.recording import find_inputs, measure
from frkit.synth import SyntheticSession

from test_qc_pass import _folder


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    frames = SyntheticSession(48, 64, 40, seed=4, shift_px=2.0, warp_px=0.5, margin=20).frames()[..., 0]
    frames[7] = 0  # a blank frame: the figure marks it
    d = _folder(tmp_path_factory.mktemp("drawing") / "rec", frames, len(frames))
    return measure(find_inputs(d))


def test_the_child_draws_the_figure_drawn_here(measured, tmp_path):
    summary, frames, images = measured
    assert summary["bad_frames"]["count"] == 1
    with FigureProcess() as drawer:
        drawer.draw(tmp_path / "qc.png", summary, frames, images, "rec: 40 frames")
    assert drawer.proc.returncode == 0
    here = png_bytes(recording_figure(summary, frames, images, "rec: 40 frames"))
    assert (tmp_path / "qc.png").read_bytes() == here  # the same pixels, to the byte
    png = Image.open(tmp_path / "qc.png")
    png.load()
    assert png.size[0] > 800 and np.asarray(png.convert("L")).std() > 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qc.png"]


def test_a_failure_is_one_line_and_leaves_no_file(measured, tmp_path):
    summary, frames, images = measured
    target = tmp_path / "missing_dir" / "qc.png"
    with FigureProcess() as drawer, pytest.raises(OutputError) as err:
        drawer.draw(target, summary, frames, images, "x")
    assert str(target) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "missing_dir").exists() and not list(tmp_path.iterdir())


def test_ended_without_a_figure_the_child_is_gone(tmp_path):
    """An error in the pass closes the process before anything is sent: it ends, and draws nothing."""
    with pytest.raises(RuntimeError), FigureProcess() as drawer:
        raise RuntimeError("the pass failed")
    assert drawer.proc.returncode is not None
    # and a child given no data at all (its parent gone) exits quietly by itself
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "frkit.qc.drawing"], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=60)
    assert p.returncode == 0 and p.stderr == b"" and time.monotonic() - t0 < 60


def test_without_an_interpreter_to_start_it_draws_in_this_process(measured, tmp_path, monkeypatch):
    summary, frames, images = measured
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no_python"))
    with FigureProcess() as drawer:
        assert drawer.proc is None
        drawer.draw(tmp_path / "qc.png", summary, frames, images, "x")
    assert (tmp_path / "qc.png").read_bytes() == png_bytes(recording_figure(summary, frames, images, "x"))
