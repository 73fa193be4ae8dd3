"""fr-align (stage 2): accuracy by default, capture range, partial overlap, the seed's values as one
pyflowreg-style solve, visible failure, channel weights."""

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from frkit import layout
from frkit.errors import OptionError
from frkit.align import (FAIL_CORRELATION, Stage, alignment_match, applied_schedule, between_displacement,
                         flow_params, judge)
from frkit.flow.displacement import get_displacement, warp
from frkit.options import ALIGN, ALIGN_AUTO, resolve
from frkit.rigid import rigid_shift
from frkit.synth import average_sources, transformed_pair

from conftest import BIN, run_tool as tool

H, W, MARGIN = 96, 128, 40


@pytest.fixture(scope="module")
def sources():
    return average_sources(H, W, MARGIN, seed=3)


def pair(sources, shift=(7.0, -5.0), rot=1.5, scale=1.01, elastic=2.0, gain=0.85, **kw):
    return transformed_pair(*sources, H, W, MARGIN, shift, rot, scale, elastic, gain, seed=11, **kw)


def epe(w, truth, interior):
    return float(np.hypot(*(w - truth)[interior].T).mean())


def test_default_is_accurate_on_shift_rotation_scale_elastic_and_gain(sources):
    ref, mov, truth, interior = pair(sources)
    default = epe(between_displacement(ref, mov), truth, interior)
    seed = epe(between_displacement(ref, mov, resolve(ALIGN, sigma_smooth=6, alpha=25, iterations=100)),
               truth, interior)
    assert default <= 0.3, default
    assert default <= 0.5 * seed, (default, seed)  # the refinement is what makes it accurate


def test_quarter_frame_offset_and_3_degrees_are_captured(sources):
    ref, mov, truth, interior = pair(sources, shift=(W / 4, -H / 4 + 6), rot=-3.0, scale=1.0, elastic=1.5, gain=1.2)
    assert interior.mean() > 0.25
    assert epe(between_displacement(ref, mov), truth, interior) <= 0.3


def test_a_missing_30_percent_border_still_aligns_in_the_overlap(sources):
    ref, mov, truth, interior = pair(sources, crop_moving=0.3)
    w = between_displacement(ref, mov)
    assert epe(w, truth, interior) <= 0.3
    corr, overlap = alignment_match(ref, mov, w)
    assert judge(corr, overlap) != "failed"


def test_explicit_values_are_exactly_one_pyflowreg_style_solve(sources):
    ref, mov, _, _ = pair(sources)
    params = resolve(ALIGN, alpha=12, iterations=40)  # sigma_smooth not set: the seed's 6
    (stage,) = applied_schedule(params)
    assert stage == Stage(6.0, (12.0, 12.0), 40)
    # the same by hand: smooth + own-range normalize, rigid start, pre-warp, one flow solve, plus the shift
    img = [ndi.gaussian_filter(a, 6.0, mode="reflect", truncate=4.0) for a in (ref, mov)]
    img = [(a - a.min()) / (a.max() - a.min()) for a in img]
    dx, dy = rigid_shift(img[0][..., None], img[1][..., None], upsample=params.cc_upsample)
    pre = warp(img[1][None].astype(np.float32), np.full((H, W), dx), np.full((H, W), dy),
               img[0][None].astype(np.float32))[0]
    expected = get_displacement(img[0], pre, flow_params(params, 1)) + np.array([dx, dy])
    assert np.allclose(between_displacement(ref, mov, params), expected, atol=1e-3)
    # the seed's values spelled out are the seed's one-shot, not the default's two solves
    seed = resolve(ALIGN, sigma_smooth=6, alpha=25, iterations=100)
    assert len(applied_schedule(seed)) == 1 and len(applied_schedule(resolve(ALIGN))) == len(ALIGN_AUTO) == 2


def write_avgs(folder, **arrays):
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        np.save(folder / f"{name}.npy", a)
    return [folder / f"{n}.npy" for n in arrays]


def test_cli_writes_the_match_quality_and_what_was_applied(sources, tmp_path):
    ref, mov, truth, interior = pair(sources)
    a, b = write_avgs(tmp_path, ref=ref, mov=mov)
    p = tool(BIN / "fr-align", a, b, "-o", tmp_path / "w.npz")
    assert p.returncode == 0, p.stderr
    assert "warning" not in p.stderr
    z = np.load(tmp_path / "w.npz")
    assert z[layout.ALIGNMENT_CORRELATION] > 0.9 and z[layout.ALIGNMENT_OVERLAP] > 0.8
    assert epe(np.stack([z["u"], z["v"]], -1), truth, interior) <= 0.3
    applied = json.loads(str(z[layout.ALIGNMENT_SCHEDULE]))
    assert [s["sigma_smooth"] for s in applied] == [s["sigma_smooth"] for s in ALIGN_AUTO]
    p = tool(BIN / "fr-align", a, b, "-o", tmp_path / "w2.npz", "--alpha", "7")
    assert p.returncode == 0, p.stderr
    assert json.loads(str(np.load(tmp_path / "w2.npz")[layout.ALIGNMENT_SCHEDULE])) == [
        {"sigma_smooth": 6.0, "alpha_between": [7.0, 7.0], "iterations_between": 100, "levels": None,
         "min_level": 0}]


def test_unrelated_fields_of_view_fail_visibly_and_write_nothing(sources, tmp_path):
    other = average_sources(H, W, MARGIN, seed=4)[1][MARGIN:-MARGIN, MARGIN:-MARGIN]
    ref = sources[0][MARGIN:-MARGIN, MARGIN:-MARGIN]
    a, b = write_avgs(tmp_path, ref=ref, other=other)
    out = tmp_path / "w.npz"
    p = tool(BIN / "fr-align", a, b, "-o", out)
    assert p.returncode == 3, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "failed" in lines[0] and "other.npy" in lines[0] and "correlation" in lines[0]
    assert not out.exists() and not list(tmp_path.glob("*partial*"))
    p = tool(BIN / "fr-align", a, b, "-o", out, "--accept-poor-alignment")
    assert p.returncode == 0, p.stderr
    assert sum("warning" in line and "poor alignment" in line for line in p.stderr.splitlines()) == 1
    z = np.load(out)
    assert z[layout.ALIGNMENT_CORRELATION] < FAIL_CORRELATION or z[layout.ALIGNMENT_OVERLAP] < 0.4


def test_channel_weights_align_on_the_chosen_channel(sources, tmp_path):
    ref, mov, truth, interior = pair(sources)
    # channel 1 moves differently (a strong texture moved by (+6, -4) px, against the true (-7, 5));
    # channel 2 is the structural one
    tex = ndi.gaussian_filter(np.random.default_rng(0).standard_normal((H + 20, W + 20)), 1.5) * ref.std() * 3
    ref2 = np.stack([tex[10:-10, 10:-10] + ref.mean(), ref], -1)
    mov2 = np.stack([tex[14:-6, 4:-16] + ref.mean(), mov], -1)
    chosen = epe(between_displacement(ref2, mov2, resolve(ALIGN, weight=(0, 1))), truth, interior)
    other = epe(between_displacement(ref2, mov2, resolve(ALIGN, weight=(1, 0))), truth, interior)
    assert chosen <= 0.3 and other > 3.0, (chosen, other)  # the weights decide which motion is followed
    a, b = write_avgs(tmp_path, ref=ref2, mov=mov2)
    p = tool(BIN / "fr-align", a, b, "-o", tmp_path / "w.npz", "--weight", "0,1,0")
    assert p.returncode == 2 and "--weight" in p.stderr and "2 channel" in p.stderr
    assert not (tmp_path / "w.npz").exists()


def test_cli_parses_auto_and_rejects_bad_stage2_values():
    assert resolve(ALIGN, sigma_smooth="auto", alpha="AUTO", iterations="auto")["alpha"] == "auto"
    for flags, where in (({"sigma_smooth": "-1"}, "--sigma-smooth"), ({"iterations": "0"}, "--iterations"),
                         ({"weight": "0,0"}, "--weight")):
        with pytest.raises(OptionError, match=where):
            resolve(ALIGN, flags=flags)
    assert applied_schedule(resolve(ALIGN, flags={"sigma_smooth": "2"})) == (Stage(2.0, (25.0, 25.0), 100),)
