"""Session stages 2 and 3: alignment accuracy, masks, the final bundle, reprojection."""

import h5py
import numpy as np
import pytest
import scipy.io
from scipy import ndimage as ndi
from skimage.io import imread

from frkit.align import between_displacement
from frkit.errors import InputError
from frkit.io import Hdf5VideoWriter, open_video
from frkit.layout import FINAL_MAT, FINAL_NPZ, FINAL_PNG, RecordingFiles
from frkit.mask import session_mask, warp_mask
from frkit.reproject import fill_image, reproject
from frkit.engine import CpuEngine
from frkit.synth import View, between_truth, make_template

PYFLOWREG_KEYS = {"final_valid", "aligned_valid_masks", "per_seq_valid_masks", "displacement_fields_u",
                  "displacement_fields_v", "temporal_averages", "compensated_h5_paths", "reference_average",
                  "middle_idx", "aligned_video_paths"}


def field_of_view(h, w, seed, margin=48):
    rng = np.random.default_rng(seed)
    bg, fps, _ = make_template(rng, h, w, margin=margin)
    canvas = bg.copy()
    for sy, sx, patch in fps:
        canvas[sy, sx] += 0.8 * patch
    return canvas


def render(canvas, view, margin=48, noise=0.005, seed=0):
    y, x = np.mgrid[0:view.height, 0:view.width].astype(float)
    vy, vx = view.map(y, x)
    img = ndi.map_coordinates(canvas, [vy + margin, vx + margin], order=3)
    return img + np.random.default_rng(seed).normal(0, noise, img.shape)


@pytest.mark.parametrize("h,w", [(256, 256), (200, 512)])
@pytest.mark.parametrize("seed", [0, 1])
def test_between_recordings_field_within_half_a_pixel(h, w, seed):
    canvas = field_of_view(h, w, seed)
    rng = np.random.default_rng(100 + seed)
    ref = View((0, 0), 0.0, 2.0, seed * 10, h, w)
    mov = View(tuple(rng.uniform(-12, 12, 2)), float(rng.choice([-1.5, 1.5])), 2.0, seed * 10 + 1, h, w)
    truth = between_truth(ref, mov)
    assert np.abs(truth).max() > 6  # a real displacement
    est = between_displacement(render(canvas, ref, seed=1)[..., None], render(canvas, mov, seed=2)[..., None])
    y, x = np.mgrid[0:h, 0:w]
    inside = ((x + truth[..., 0] >= 0) & (x + truth[..., 0] < w) & (y + truth[..., 1] >= 0)
              & (y + truth[..., 1] < h))
    inner = np.zeros_like(inside)
    inner[16:-16, 16:-16] = True
    epe = np.hypot(*(est - truth)[inside & inner].T).mean()
    assert epe < 0.5, epe


def test_rigid_sign_convention_non_square():
    # content moved by (+6 rows, -4 cols) relative to the reference -> u = -4, v = +6
    canvas = field_of_view(200, 512, 3)
    ref = canvas[48:248, 48:560]
    moved = ndi.shift(canvas, (6, -4), order=3)[48:248, 48:560]
    w = between_displacement(ref, moved)
    inner = (slice(20, -20), slice(20, -20))
    assert abs(w[..., 0][inner].mean() + 4) < 0.1 and abs(w[..., 1][inner].mean() - 6) < 0.1


def test_align_rejects_different_shapes():
    with pytest.raises(InputError, match="differ in shape"):
        between_displacement(np.random.rand(32, 32), np.random.rand(32, 40))


def test_warp_mask_rules():
    ones = np.ones((10, 10), bool)
    w = np.zeros((10, 10, 2))
    w[..., 0] = 2
    m = warp_mask(ones, w)
    assert m[:, :8].all() and not m[:, 8:].any()
    w[..., 0] = -1.5
    m = warp_mask(ones, w)
    assert not m[:, :2].any() and m[:, 2:].all()
    hole = ones.copy()
    hole[4, 6] = False
    w[..., 0] = 1
    assert not warp_mask(hole, w)[4, 5] and warp_mask(hole, w)[4, 6]


def _stage1_folder(d, masks, avg, w, idx_name="idx", video_name="compensated.HDF5"):
    d.mkdir(parents=True)
    t, h, wd = masks.shape
    with h5py.File(d / "idx.hdf", "w") as f:
        f[idx_name] = np.where(masks, 255, 0).astype(np.uint8)
    with h5py.File(d / video_name, "w") as f:
        f["ch1"] = np.full((t, h, wd), 100, np.uint16)
    np.save(d / "temporal_average.npy", avg)
    np.savez(d / "w_to_reference.npz", u=w[..., 0], v=w[..., 1])
    return RecordingFiles(stem=d.name, idx=d / "idx.hdf", w_to_reference=d / "w_to_reference.npz",
                          average=d / "temporal_average.npy", compensated=d / video_name)


def test_final_bundle_keys_types_and_matlab_file(tmp_path):
    h, w = 20, 24
    rng = np.random.default_rng(0)
    files = []
    for i, (dx, idx_name) in enumerate([(2.0, "idx"), (0.0, "ch1"), (-1.0, "idx")]):
        masks = np.ones((5, h, w), bool)
        masks[2, 0, :] = False  # one frame loses the first row: the temporal AND drops it
        field = np.zeros((h, w, 2))
        field[..., 0] = dx
        files.append(_stage1_folder(tmp_path / f"rec{i}", masks, rng.random((h, w, 1)), field, idx_name))
    summary = session_mask(files, 1, tmp_path / "final")
    z = np.load(tmp_path / "final" / FINAL_NPZ)
    assert PYFLOWREG_KEYS <= set(z.files) and "center_file" in z.files
    assert z["final_valid"].dtype == bool and z["final_valid"].shape == (h, w)
    assert z["aligned_valid_masks"].shape == (3, h, w) and z["per_seq_valid_masks"].shape == (3, h, w)
    assert z["temporal_averages"].shape == (3, h, w, 1) and z["temporal_averages"].dtype == np.float64
    assert int(z["middle_idx"]) == 1 and str(z["center_file"]) == "rec1"
    expect = np.ones((h, w), bool)
    expect[0] = False
    expect[:, w - 2:] = False  # u = +2
    expect[:, :1] = False  # u = -1
    assert np.array_equal(z["final_valid"], expect)
    assert summary["valid_pixels"] == expect.sum()
    m = scipy.io.loadmat(tmp_path / "final" / FINAL_MAT)
    assert m["final_valid"].dtype == np.uint8 or m["final_valid"].dtype == bool
    info = {name: cls for name, _, cls in scipy.io.whosmat(tmp_path / "final" / FINAL_MAT)}
    assert info["final_valid"] == "logical" and info["aligned_valid_masks"] == "logical"
    assert m["middle_idx"].item() == 2  # 1-based for MATLAB
    assert np.array_equal(m["final_valid"].astype(bool), expect)
    png = imread(tmp_path / "final" / FINAL_PNG)
    assert png.dtype == np.uint8 and np.array_equal(png == 255, expect) and set(np.unique(png)) <= {0, 255}
    for i in range(3):
        assert (tmp_path / "final" / f"rec{i}_valid_idx.png").exists()
        assert (tmp_path / "final" / f"rec{i}_valid_idx_aligned.png").exists()


def test_final_mask_refuses_mismatched_sizes(tmp_path):
    a = _stage1_folder(tmp_path / "a", np.ones((3, 10, 10), bool), np.ones((10, 10, 1)), np.zeros((10, 10, 2)))
    b = _stage1_folder(tmp_path / "b", np.ones((3, 12, 10), bool), np.ones((12, 10, 1)), np.zeros((12, 10, 2)))
    with pytest.raises(InputError, match="same frame size"):
        session_mask([a, b], 0, tmp_path / "final")
    assert not (tmp_path / "final").exists()


@pytest.mark.parametrize("fmt,ext", [("TIFF", "tif"), ("HDF5", "hdf5"), ("MAT", "mat")])
def test_reprojection_never_wraps_and_fills_from_the_reference(tmp_path, fmt, ext):
    from frkit.io import open_video_writer

    h, w, t = 24, 30, 5
    video = np.zeros((t, h, w, 1), np.uint16)
    video[:, :, 15:] = 65535  # a step: cubic overshoot below 0 and above 65535 next to it
    src = tmp_path / "compensated.HDF5"
    with Hdf5VideoWriter(src, 1, h, w, np.uint16) as wr:
        wr.append(video)
    flow = np.zeros((h, w, 2), np.float32)
    flow[..., 0] = 0.5
    ref = np.full((h, w, 1), 1234.0)
    fill = fill_image("reference", (h, w, 1), ref)
    out = tmp_path / f"aligned_rec.{ext}"
    with open_video(src) as r, CpuEngine(2) as e, open_video_writer(out, fmt, 1, h, w, np.uint16, n_frames=t) as wr:
        reproject(r, flow, wr, fill, e, chunk=2)
    with open_video(src) as r, CpuEngine(1) as e:
        exact = e.warp_frames(r.read(0, t), flow, fill, "cubic", np.float64)
    with open_video(out) as r:
        got = r.read(0, t)
    assert got.dtype == np.uint16 and got.shape == (t, h, w, 1)
    assert exact[..., 13, 0].max() < 0 and exact[..., 15, 0].min() > 65535  # the overshoot is there
    assert np.all(got[..., 13, 0] == 0) and np.all(got[..., 15, 0] == 65535)  # clipped, not wrapped
    assert np.array_equal(got, np.clip(np.rint(exact), 0, 65535).astype(np.uint16))
    assert np.all(got[:, :, w - 1] == 65535)  # x + 0.5 < W: still in view
    flow[..., 0] = 3.0
    with open_video(src) as r, CpuEngine(1) as e:
        shifted = e.warp_frames(r.read(0, 1), flow, fill, "cubic", np.uint16)
    assert np.all(shifted[:, :, w - 3:] == 1234)  # out of view: the center's temporal average


def test_nan_fill_gives_float(tmp_path):
    from frkit.reproject import output_dtype

    assert output_dtype(np.uint16, "nan") == np.float32 and output_dtype(np.float64, "nan") == np.float64
    assert np.isnan(fill_image("nan", (2, 2, 1), None)).all()
