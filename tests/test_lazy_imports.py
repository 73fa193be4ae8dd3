"""fr-align's start-up: aligning two .npy averages imports no video reader (h5py, tifffile) and neither
scipy.ndimage nor skimage; fr-qc of a stage-1 folder imports no numba.

Start-up time counts for a tool run once per recording (fr-align on 512 x 512 should take under 3 s on one
core, about a third of it imports); the readers cost ~0.2 s and fr-align never reads a video; scipy.ndimage
(which skimage.registration imports) cost ~0.16 s for a Gaussian filter and a phase correlation that
frkit.filters and frkit.rigid now compute (tests/test_filters.py checks they agree).
"""

import subprocess
import sys

import frkit.io

#: both probes start the same way: fr-align's module, then two .npy averages one pixel apart in sys.argv[1]
AVERAGES = r"""
import json, sys
import numpy as np
from frkit_cmd import fr_align
d = sys.argv[1]
rng = np.random.default_rng(0)
img = np.kron(rng.random((8, 8)), np.ones((4, 4)))
np.save(f"{d}/ref.npy", img)
np.save(f"{d}/mov.npy", np.roll(img, 1, axis=1))
"""

PROBE = AVERAGES + r"""
from frkit import tools
from frkit.options import ALIGN, resolve
tools.align(f"{d}/ref.npy", f"{d}/mov.npy", f"{d}/w.npz", resolve(ALIGN))
print(" ".join(m for m in ("h5py", "tifffile", "frkit.io.readers", "frkit.session.stages", "scipy.ndimage",
                           "skimage") if m in sys.modules))
"""


def test_fr_align_imports_no_video_reader_nor_ndimage(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "w.npz").is_file()
    assert out.stdout.split() == []


def test_io_names_resolve_on_first_use():
    for name in frkit.io.__all__:
        assert getattr(frkit.io, name).__name__ == name
    assert set(frkit.io.__all__) <= set(dir(frkit.io))


CLI_PROBE = AVERAGES + r"""
try:
    fr_align.main([f"{d}/ref.npy", f"{d}/mov.npy", "-o", f"{d}/w.npz", "--alpha", "3,4", "--iterations", "7"])
except SystemExit as exc:
    assert exc.code == 0, exc.code
print(json.dumps(["pydantic" in sys.modules, json.loads(str(np.load(f"{d}/w.npz")["alignment_schedule"]))]))
"""


def test_fr_align_command_line_builds_no_pydantic_adapters(tmp_path):
    """typer's per-parameter coercion (pydantic) is bypassed: frkit.options parses the text, values arrive."""
    import json

    out = subprocess.run([sys.executable, "-c", CLI_PROBE, str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    pydantic_loaded, schedule = json.loads(out.stdout.strip().splitlines()[-1])
    assert not pydantic_loaded
    assert [(s["alpha_between"], s["iterations_between"]) for s in schedule] == [([3.0, 4.0], 7)]


QC_PROBE = r"""
import json, sys
import h5py
import numpy as np
from frkit_cmd import fr_qc
d = sys.argv[1]
rng = np.random.default_rng(0)
frames = (rng.random((12, 32, 40)) * 1000).astype(np.uint16)
with h5py.File(f"{d}/raw.h5", "w") as f:
    f["mov"] = frames
with h5py.File(f"{d}/compensated.HDF5", "w") as f:
    f["ch1"] = frames
with h5py.File(f"{d}/idx.hdf", "w") as f:
    f["idx"] = np.ones(frames.shape, np.uint8)
with open(f"{d}/compensate.json", "w") as f:
    json.dump({"tool": "fr-compensate", "input": {"path": f"{d}/raw.h5"}, "parameters": {"bin_size": 1}}, f)
try:
    fr_qc.main([d, "-q"])
except SystemExit as exc:
    assert exc.code == 0, exc.code
print(json.dumps([json.load(open(f"{d}/qc.json"))["frames"], "numba" in sys.modules]))
"""


def test_fr_qc_of_a_folder_imports_no_numba(tmp_path):
    """fr-qc's sweeps are numpy: a QC process pays neither numba's import and set-up (~0.3 s) nor a compile."""
    import json

    out = subprocess.run([sys.executable, "-c", QC_PROBE, str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [12, False]
