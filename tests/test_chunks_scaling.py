"""What lets time chunks scale: the reference step's worker count never changes a byte and the Make rule gives
it the threads of the recording's chunks; the join starts without the compute imports; the joined record says
where the time went."""

import json
import subprocess
import sys

import pytest

from frkit import layout, tools
from frkit.chunks import join
from frkit.session.chunkrules import reference_workers

from conftest import run_tool as tool
from test_chunks import params, write_recording

T = 50  # 3 batches of test_chunks.BUFFER = 20 frames: two carried initializations


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    return write_recording(tmp_path_factory.mktemp("workers") / "rec.h5", n=T)


def reference_files(out):
    d = out / layout.CHUNK_DIR
    return {name: (d / name).read_bytes() for name in (layout.REFERENCE, layout.CHUNK_INITIALIZATION)}


def test_reference_step_is_the_same_bytes_with_any_worker_count(rec, tmp_path):
    """1 worker (chunks of 4 frames) and 3 workers (chunks of 12): same reference, same initialization chain."""
    made = {}
    for workers in (1, 3):
        out = tmp_path / f"w{workers}"
        record = tools.compensate(rec, out, params(reference_only=True, workers=workers))
        assert record["engine"] == f"cpu ({workers} worker{'s' * (workers > 1)})"
        assert record["parameters"]["chunk_size"] == 4 * workers  # the span sizes really differ
        made[workers] = (reference_files(out), record["digest"])
    assert made[1] == made[3]


def test_chunks_from_a_many_worker_reference_join_to_the_single_worker_whole_run(rec, tmp_path):
    tools.compensate(rec, tmp_path / "whole", params(workers=1))
    out = tmp_path / "joined"
    tools.compensate(rec, out, params(reference_only=True, workers=3))
    for span in ((0, 20), (20, 50)):
        tools.compensate(rec, out, params(frames=span, workers=1))
    summary = join(out)
    for name in (layout.COMPENSATED, layout.VALID_IDX, layout.FLOW, layout.STATISTICS, layout.REFERENCE):
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    steps = summary["steps"]
    assert steps["reference"]["engine"] == "cpu (3 workers)" and steps["reference"]["seconds"] > 0
    assert {"reference", "initialization"} <= set(steps["reference"]["stage_seconds"])
    assert [c["frames"] for c in steps["chunks"]] == [[0, 20], [20, 50]]
    assert all(c["engine"] == "cpu (1 worker)" and "flow" in c["stage_seconds"] for c in steps["chunks"])
    assert steps["join"] >= 0
    assert json.loads((out / layout.RECORD).read_text())["summary"]["steps"] == steps


@pytest.mark.parametrize("n_workers, n_chunks, cpus, expected", [
    (1, 2, 8, 2),    # the two chunks' threads
    (2, 3, 8, 6),
    (1, 20, 8, 0),   # more than the machine: all CPUs
    (3, 3, 8, 0),
    (0, 2, 8, 0),    # all, as the session asks
    (-1, 2, 8, 0),
    (1, 1, 8, 1),    # one chunk: as the session asks
])
def test_reference_workers(n_workers, n_chunks, cpus, expected):
    assert reference_workers(n_workers, n_chunks, cpus) == expected


def test_the_make_rule_gives_the_reference_step_its_chunks_threads(tmp_path):
    write_recording(tmp_path / "rec_1.h5", n=24)
    cfg = tmp_path / "session.toml"
    cfg.write_text('root = "."\npattern = "rec_*.h5"\nchunk_frames = 12\nn_workers = 1\n'
                   '[flow_options]\nbuffer_size = 12\n')
    mk = tool(sys.executable, "-m", "frkit.session", "plan", cfg).stdout.strip()
    lines = open(mk).read().splitlines()
    ref = [x for x in lines if "--reference-only" in x]
    chunks = [x for x in lines if "--frames" in x]
    assert len(ref) == 1 and len(chunks) == 2
    assert ref[0].endswith(f"--workers {reference_workers(1, 2)} -q")
    assert "--initialize-until 12 " in ref[0]  # the last chunk's start: the chunks carry it on from there
    assert all("--workers" not in x for x in chunks)  # session.toml's n_workers, through --config


def test_the_join_process_imports_nothing_that_computes(rec, tmp_path):
    """numba and scipy cost ~1 s per process start; the join, on every chunked recording's critical path, needs
    neither (and must not regain them through an import)."""
    out = tmp_path / "out"
    tools.compensate(rec, out, params(reference_only=True))
    tools.compensate(rec, out, params(frames=(0, T)))
    code = ("import sys; from frkit.session.__main__ import main; rc = main(['join', sys.argv[1]]); "
            "print(rc, sorted(m for m in ('numba', 'scipy', 'frkit.compensate', 'frkit.engine') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True)
    assert p.stdout.split() == ["0", "[]"], p.stdout + p.stderr
    assert (out / layout.RECORD).is_file() and not (out / layout.CHUNK_DIR).exists()


def _slow_imports_of_a_step(rec, out, extra: str) -> list[str]:
    """Which of scipy.ndimage and skimage a fresh process has imported after ``tools.compensate`` of ``rec``
    into ``out`` with the test's parameters plus ``extra`` (keyword arguments, as Python source)."""
    code = ("import sys; from frkit import options, tools; "
            "tools.compensate(sys.argv[1], sys.argv[2], options.resolve(options.COMPENSATE, quality='fast', "
            f"buffer_size=20, save_w=True, {extra})); "
            "print(sorted(m for m in ('scipy.ndimage', 'skimage') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code, str(rec), str(out)], capture_output=True, text=True)
    return p.stdout.split() if p.returncode == 0 else [p.stdout + p.stderr]


def test_a_chunk_process_imports_neither_scipy_ndimage_nor_skimage(rec, tmp_path):
    """A chunk's fr-compensate measures no noise and (without --cc-init) no rigid shift: ~0.3 s of imports less
    at the start of every chunk."""
    out = tmp_path / "out"
    tools.compensate(rec, out, params(reference_only=True))
    assert _slow_imports_of_a_step(rec, out, "frames=(0, 20)") == ["[]"]
    assert (layout.chunk_folder(out, 0, 20) / layout.CHUNK_RECORD).is_file()


def test_the_reference_step_imports_no_scipy_ndimage(rec, tmp_path):
    """It measures the noise (frkit.noise sums its 3x3 mask itself): ~0.2 s of imports less on the critical path
    of every chunked recording, before any chunk can start."""
    out = tmp_path / "out"
    assert _slow_imports_of_a_step(rec, out, "reference_only=True") == ["[]"]
    assert (out / layout.CHUNK_DIR / layout.CHUNK_REFERENCE_RECORD).is_file()
