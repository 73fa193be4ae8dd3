import os
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # helper modules next to the tests

REPO = HERE.parent
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data():
    """The real recordings in ../shared/data (skipped where absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA


# -- helpers shared by the test modules (import them: ``from conftest import run_tool``) ----------

import subprocess  # noqa: E402

import h5py  # noqa: E402

from frkit.errors import InputError  # noqa: E402
from frkit.io import VideoReader, open_video  # noqa: E402

#: the installed fr-* tools, first on PATH for subprocesses (Make rules call them by name)
BIN = Path(sys.executable).parent
ENV = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def run_tool(*args, env=None, cwd=None):
    """Run a command (an ``fr-*`` name resolves to the installed tool); capture text output."""
    args = [str(a) for a in args]
    if args[0].startswith("fr-"):
        args[0] = str(BIN / args[0])
    return subprocess.run(args, capture_output=True, text=True, env=env or ENV, cwd=cwd, timeout=600)


class InProcessResult:
    """What :func:`run_in_process` returns: the exit status and the text written to stderr."""

    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


def run_in_process(tool, *args):
    """Run an ``fr-*`` tool through its command line in this process (fast: no interpreter start)."""
    import contextlib
    import importlib
    import io

    from frkit.cli.harness import run_app

    module = importlib.import_module("frkit_cmd." + tool.replace("-", "_"))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run_app(module.main.app, tool, [str(a) for a in args])
    return InProcessResult(code, err.getvalue())


def write_h5(path, data, name="mov"):
    """``(T, H, W, C)`` frames as HDF5 (``name`` for one channel, ``ch1..chN`` for several); other arrays as is."""
    data = np.asarray(data)
    with h5py.File(path, "w") as f:
        if data.ndim == 4 and data.shape[-1] > 1:
            for c in range(data.shape[-1]):
                f.create_dataset(f"ch{c + 1}", data=data[..., c])
        else:
            f.create_dataset(name, data=data[..., 0] if data.ndim == 4 else data)
    return path


# -- the reader contract (test_io_*) ----------------------------------------------------------------

DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "float32", "float64"]


def make_video(shape, dtype, seed=0) -> np.ndarray:
    """Random test data covering the dtype's range (distinct values per frame)."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt) * 1000
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)


def check_reader(reader: VideoReader, expected: np.ndarray) -> None:
    """``reader`` yields exactly ``expected`` (T, H, W, C) through every read path."""
    expected = np.asarray(expected)
    native = expected.dtype.newbyteorder("=")
    t = expected.shape[0]
    assert reader.shape == expected.shape
    assert len(reader) == reader.n_frames == t
    assert (reader.height, reader.width, reader.n_channels) == expected.shape[1:]
    assert reader.dtype == native and reader.dtype.isnative
    full = reader.read(0, t)
    assert full.dtype == native and full.dtype.isnative
    assert full.flags.c_contiguous and full.flags.writeable
    np.testing.assert_array_equal(full, expected)
    for a, b in [(0, 1), (t - 1, t), (t // 3, t // 3 + 2), (1, t)]:
        if 0 <= a < b <= t:
            np.testing.assert_array_equal(reader.read(a, b), expected[a:b])
    assert reader.read(2, 2).shape == (0,) + expected.shape[1:]
    idx = [t - 1, 0, t // 2, t // 2, 1 % t, t - 1]
    got = reader.read_indices(idx)
    assert got.dtype == native and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected[idx])
    np.testing.assert_array_equal(reader.read_indices(np.arange(t)[::-1]), expected[::-1])
    assert reader.read_indices([]).shape == (0,) + expected.shape[1:]


def truncate_to_half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def assert_input_error_open_or_read(path, **kw) -> InputError:
    """Opening or reading every frame of ``path`` raises InputError naming the file."""
    with pytest.raises(InputError) as ei:
        with open_video(path, **kw) as r:
            r.read(0, r.n_frames)
            r.read_indices(range(r.n_frames))
    msg = str(ei.value)
    assert Path(path).name in msg and "\n" not in msg
    return ei.value


# -- dispatch ------------------------------------------------------------------
