"""Time chunks: reference step, chunks, join; the join's refusals; chunked sessions and their array tasks."""

import json
import shutil
import sys

import h5py
import numpy as np
import pytest

from frkit import layout, options, tools
from frkit.chunks import chunk_ranges, join
from frkit.session.array import array_task_index, format_task_table, task_table
from frkit.synth import SyntheticSession

from conftest import run_tool as tool

H, W, T, BUFFER = 32, 40, 50, 20
FLAGS = ("--quality", "fast", "--buffer-size", str(BUFFER), "--save-w", "-q")
STAGE1_FILES = (layout.COMPENSATED, layout.VALID_IDX, layout.FLOW, layout.STATISTICS, layout.REFERENCE)


def params(**kw):
    return options.resolve(options.COMPENSATE, quality="fast", buffer_size=BUFFER, save_w=True, **kw)


def write_recording(path, n=T, seed=3):
    s = SyntheticSession(H, W, n, seed=seed, shift_px=1.5, warp_px=0.5)
    with h5py.File(path, "w") as f:
        f["mov"] = s.frames()[..., 0]
    return path


def chunked(rec, out, spans, **kw):
    tools.compensate(rec, out, params(reference_only=True, **kw))
    for span in spans:
        tools.compensate(rec, out, params(frames=span, **kw))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("chunks")
    rec = write_recording(root / "rec.h5")
    tools.compensate(rec, root / "whole", params())
    # 0:25 ends inside a batch (the temporal filter and the next batch read across it)
    chunked(rec, root / "joined", [(25, 50), (0, 25)])
    join(root / "joined")
    return root, rec


def test_joined_files_are_the_bytes_of_a_whole_run(runs):
    root, _ = runs
    for name in STAGE1_FILES:
        assert (root / "joined" / name).read_bytes() == (root / "whole" / name).read_bytes(), name
    whole, joined = (json.loads((root / d / layout.RECORD).read_text()) for d in ("whole", "joined"))
    assert joined["result_parameters"] == whole["result_parameters"]
    assert joined["input"] == whole["input"]
    for key in ("frames", "shape", "alpha", "min_level", "noise_variance", "mean_displacement", "max_displacement"):
        assert joined["summary"][key] == whole["summary"][key], key
    assert joined["summary"]["chunks"] == [[0, 25], [25, 50]]
    assert not (root / "joined" / layout.CHUNK_DIR).exists()


def test_the_flow_really_varies_between_batches(runs):
    """Byte identity would be trivial if the carried initialization were zero."""
    root, _ = runs
    with h5py.File(root / "whole" / layout.FLOW) as f:
        u = f["u"][()]
    assert np.abs(u).max() > 0.5 and not np.allclose(u[5], u[45])


@pytest.fixture(scope="module")
def long_rec(tmp_path_factory):
    root = tmp_path_factory.mktemp("long")
    rec = write_recording(root / "rec.h5", n=100)  # 5 batches of BUFFER = 20
    tools.compensate(rec, root / "whole", params())
    return rec, root / "whole"


# 30 lies inside the carried frames of batch 1 (20:40: all of it with BUFFER = 20), so the chunk takes batch
# 2's stored initialization; a chunk on a batch border (40) carries it out of its first batch itself
@pytest.mark.parametrize("last,stored", [(30, 3), (40, 3), (60, 4)])
def test_chunks_carry_the_initialization_past_the_last_chunks_start(long_rec, tmp_path, last, stored):
    """--initialize-until: the reference step stores the first batches' initializations only, the chunks carry
    it on through the later batches themselves; the joined files are still the whole run's bytes."""
    rec, whole = long_rec
    out = tmp_path / "joined"
    record = tools.compensate(rec, out, params(reference_only=True, initialize_until=last))
    assert record["initialized_batches"] == stored
    assert np.load(out / layout.CHUNK_DIR / layout.CHUNK_INITIALIZATION).shape[0] == stored
    for span in ((0, last), (last, 100)):
        tools.compensate(rec, out, params(frames=span))
    join(out)
    for name in STAGE1_FILES:
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name


def test_a_chunk_starting_past_the_initialized_batches_is_refused(long_rec, tmp_path):
    rec, _ = long_rec
    out = tmp_path / "out"
    tools.compensate(rec, out, params(reference_only=True, initialize_until=10))  # batches 0 and 1
    tools.compensate(rec, out, params(frames=(10, 20)))
    tools.compensate(rec, out, params(frames=(20, 40)))  # on the border of batch 1: carries batch 2's itself
    p = tool("fr-compensate", rec, "-o", out, "--frames", "25:100", *FLAGS)  # inside batch 1: needs batch 2's
    assert_refused(p, "first 2 batches", "--initialize-until", "frames 25:100", "need 3")
    assert not layout.chunk_folder(out, 25, 100).joinpath(layout.CHUNK_RECORD).exists()


def join_cli(folder):
    return tool(sys.executable, "-m", "frkit.session", "join", folder)


def assert_refused(p, *words):
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_join_refuses_missing_overlapping_and_foreign_chunks(runs, tmp_path):
    _, rec = runs
    out = tmp_path / "out"
    chunked(rec, out, [(0, 20)])
    assert_refused(join_cli(out), "frames 20:50 are in no complete chunk")
    # an interrupted chunk (no record) is missing, not adopted
    part = layout.chunk_folder(out, 20, 50)
    part.mkdir()
    (part / (layout.COMPENSATED + ".partial")).write_bytes(b"half")
    assert_refused(join_cli(out), "frames 20:50 are in no complete chunk")
    tools.compensate(rec, out, params(frames=(10, 50)))
    assert_refused(join_cli(out), "chunks 0:20 and 10:50 overlap")
    shutil.rmtree(layout.chunk_folder(out, 10, 50))
    # a chunk from a reference with other parameters
    keep = tmp_path / "keep"
    shutil.copytree(layout.chunk_folder(out, 0, 20), keep)
    chunked(rec, out, [(20, 50)], alpha=(3.0, 3.0))
    shutil.copytree(keep, layout.chunk_folder(out, 0, 20))
    assert_refused(join_cli(out), "frames_00000000-00000020", "other parameters", "alpha")
    # reference files changed after their record
    shutil.rmtree(layout.chunk_folder(out, 0, 20))
    tools.compensate(rec, out, params(frames=(0, 20), alpha=(3.0, 3.0)))
    ref = out / layout.CHUNK_DIR / layout.REFERENCE
    np.save(ref, np.load(ref) + 1)
    assert_refused(join_cli(out), "reference files changed")
    for name in layout.COMPENSATE_OUTPUTS:  # nothing adopted
        assert not (out / name).exists(), name


def test_a_chunk_refuses_a_reference_made_otherwise(runs, tmp_path):
    _, rec = runs
    out = tmp_path / "out"
    tools.compensate(rec, out, params(reference_only=True))
    p = tool("fr-compensate", rec, "-o", out, "--frames", "0:20", "--alpha", "4", *FLAGS)
    assert_refused(p, "other parameters", "alpha")
    p = tool("fr-compensate", rec, "-o", out, "--frames", "0:60", *FLAGS)
    assert_refused(p, "--frames 0:60", "50 frames")
    p = tool("fr-compensate", rec, "-o", out, "--frames", "20:10", *FLAGS)
    assert_refused(p, "--frames")
    p = tool("fr-compensate", rec, "-o", out, "--frames", "0:20", "--update-reference", *FLAGS)
    assert_refused(p, "--update-reference")
    p = tool("fr-compensate", rec, "-o", tmp_path / "none", "--frames", "0:20", *FLAGS)
    assert_refused(p, "no shared reference", "--reference-only")
    assert not list(out.glob(f"{layout.CHUNK_DIR}/frames_*/{layout.CHUNK_RECORD}"))


# -- array tasks -------------------------------------------------------------------------------------------------

def test_chunk_ranges_cover_the_recording():
    assert chunk_ranges(50, 20) == [(0, 20), (20, 40), (40, 50)]
    assert chunk_ranges(50, 0) == [(0, 50)] and chunk_ranges(50, 80) == [(0, 50)]


@pytest.mark.parametrize("base", [0, 1])
def test_array_ids_address_recording_chunk_pairs(tmp_path, base):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    tasks = task_table([a, b], {a: 50, b: 30}, 20)
    assert [(t.recording.name, t.frames) for t in tasks] == [
        ("a.h5", (0, 20)), ("a.h5", (20, 40)), ("a.h5", (40, 50)), ("b.h5", (0, 20)), ("b.h5", (20, 30))]
    picked = tasks[array_task_index(len(tasks), base, {"SLURM_ARRAY_TASK_ID": str(3 + base)})]
    assert (picked.recording, picked.frames) == (b, (0, 20))
    with pytest.raises(Exception, match="out of range"):
        array_task_index(len(tasks), base, {"SGE_TASK_ID": str(5 + base)})
    table = format_task_table(tasks)
    assert "4\t3\tb.h5\t0:20" in table and "--array=1-5" in table and "--array=0-4" in table
    # binned frames: 50 raw frames in bins of 2 are 25 stage-1 frames
    assert [t.frames for t in task_table([a], {a: 50}, 20, bin_size=2)] == [(0, 20), (20, 25)]
    assert [t.frames for t in task_table([a, b], {}, 0)] == [None, None]


# -- devices and backends ----------------------------------------------------------------------------------------

def test_tasks_spread_over_the_visible_gpus():
    from frkit.session.devices import task_device

    four = {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}
    assert [task_device("cuda", k, four) for k in range(6)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0",
                                                                "cuda:1"]
    # tasks of one job step (srun -n 2): the local id, not the array index
    step = dict(four, SLURM_LOCALID="1", SLURM_NTASKS="2")
    assert task_device("cuda", 6, step) == "cuda:1"
    # an array task with --gres=gpu:1 sees one GPU; explicit devices and the CPU are kept
    assert task_device("cuda", 5, {"CUDA_VISIBLE_DEVICES": "3"}) == "cuda"
    assert task_device("cuda", 5, {}) == "cuda"
    assert task_device("cuda:2", 5, four) == "cuda:2" and task_device("cpu", 5, four) == "cpu"
    assert task_device("cuda", 1, {"CUDA_VISIBLE_DEVICES": "0,-1,2"}) == "cuda"  # CUDA stops at -1


def test_array_task_takes_the_device_of_its_slot(tmp_path, monkeypatch):
    """The session's GPU backend and the task id reach tools.compensate as one device per task."""
    from frkit.session import stages
    from frkit.session.config import config_from_mapping

    for i in (1, 2):
        write_recording(tmp_path / f"rec_{i}.h5", n=30)
    cfg = config_from_mapping({"root": str(tmp_path), "pattern": "rec_*.h5", "chunk_frames": 20,
                               "flow_backend": "torch"})
    calls = []
    monkeypatch.setattr(stages.tools, "compensate", lambda rec, out, p, progress=None: calls.append(
        (rec.name, p.frames, p.device, p.reference_only)) or {})
    env = {"CUDA_VISIBLE_DEVICES": "0,1", "SLURM_ARRAY_TASK_ID": "0"}
    p = cfg.values(options.COMPENSATE).replace(index_base=0)
    for k in range(4):
        stages.compensate_array_task(cfg, p, env=dict(env, SLURM_ARRAY_TASK_ID=str(k)))
    stages.compensate_array_task(cfg, p.replace(reference_only=True), env=dict(env, SLURM_ARRAY_TASK_ID="1"))
    assert calls == [("rec_1.h5", (0, 20), "cuda:0", False), ("rec_1.h5", (20, 30), "cuda:1", False),
                     ("rec_2.h5", (0, 20), "cuda:0", False), ("rec_2.h5", (20, 30), "cuda:1", False),
                     ("rec_2.h5", None, "cuda:1", True)]
    # the reference task carries the initialization as far as its recording's last chunk starts
    monkeypatch.setattr(stages.tools, "compensate", lambda rec, out, p, progress=None: calls.append(
        p.initialize_until) or {})
    stages.compensate_array_task(cfg, p.replace(reference_only=True), env=dict(env, SLURM_ARRAY_TASK_ID="0"))
    assert calls[-1] == 20


def test_array_tasks_of_a_chunked_session_join_to_the_whole_run(long_rec, tmp_path):
    """The reference array task carries the initialization to its recording's last chunk start only (60: 4 of
    5 batches); the chunk tasks carry it on; the join is the whole run's bytes."""
    from conftest import ENV
    from frkit.session.config import load_config

    rec, _ = long_rec
    shutil.copy(rec, tmp_path / "rec_1.h5")
    cfg = tmp_path / "session.toml"
    cfg.write_text('root = "."\npattern = "rec_*.h5"\nstage1_quality_setting = "fast"\nchunk_frames = 60\n'
                   f'[flow_options]\nbuffer_size = {BUFFER}\nsave_w = true\n')
    for args, task in ((("--reference-only",), 1), ((), 1), ((), 2)):
        p = tool("fr-compensate", "--config", cfg, "--array-task", *args, "-q",
                 env=dict(ENV, SLURM_ARRAY_TASK_ID=str(task)))
        assert p.returncode == 0, p.stderr
    out = tmp_path / "compensated_outputs" / "rec_1"
    assert np.load(out / layout.CHUNK_DIR / layout.CHUNK_INITIALIZATION).shape[0] == 4
    join(out)
    tools.compensate(rec, tmp_path / "whole", load_config(cfg).values(options.COMPENSATE))
    for name in STAGE1_FILES:
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


@pytest.mark.parametrize("table,device", [
    ({"flow_backend": "torch", "backend_params": {"device": "cuda:0"}}, "cuda:0"),
    ({"flow_backend": "flowreg_torch"}, "cuda"),
    ({"flow_backend": "torch", "backend_params": {"device": "cpu", "dtype": "float32"}}, "cpu"),
    ({}, "cpu"),
])
def test_pyflowreg_gpu_backend_runs_on_the_cuda_engine(tmp_path, table, device):
    from frkit.session.config import config_from_mapping

    cfg = config_from_mapping({"root": str(tmp_path), **table})
    for group in (options.COMPENSATE, options.ALIGN, options.REPROJECT):
        assert cfg.values(group).device == device


@pytest.mark.parametrize("table,needle", [
    ({"scheduler": "dask"}, "scheduler.*'dask' is not supported.*array"),
    ({"flow_backend": "diso"}, "flow_backend.*'diso' is not supported"),
    ({"backend_params": {"device": "cuda:0"}}, "backend_params.*flowreg.*torch"),
    ({"flow_backend": "torch", "backend_params": {"dtype": "float64"}}, "dtype.*float32"),
    ({"flow_backend": "torch", "backend_params": {"devise": "cuda"}}, "unknown key 'devise'"),
    ({"flow_backend": "torch", "backend_params": {"device": "gpu0"}}, "device.*cpu, cuda or cuda:N"),
])
def test_keys_frkit_would_not_honour_are_refused(tmp_path, table, needle):
    from frkit.errors import OptionError
    from frkit.session.config import config_from_mapping

    with pytest.raises(OptionError, match=needle):
        config_from_mapping({"root": str(tmp_path), **table})


def test_a_chunked_session_through_make(tmp_path):
    """chunk_frames: make runs the reference, the chunks and the join; a second make does nothing."""
    from frkit.session.config import load_config

    rec = write_recording(tmp_path / "rec_1.h5", n=24)
    cfg = tmp_path / "session.toml"
    cfg.write_text('root = "."\npattern = "rec_*.h5"\nstage1_quality_setting = "fast"\nchunk_frames = 12\n'
                   '[flow_options]\nbuffer_size = 12\n')
    mk = tool(sys.executable, "-m", "frkit.session", "plan", cfg).stdout.strip()
    p = tool("make", "--no-print-directory", "-j2", "-f", mk, "stage1")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("--frames") == 2 and "session join" in p.stdout
    out = tmp_path / "compensated_outputs" / "rec_1"
    record = json.loads((out / layout.RECORD).read_text())
    assert record["summary"]["chunks"] == [[0, 12], [12, 24]] and not (out / layout.CHUNK_DIR).exists()
    assert json.loads((out / "status.json").read_text()) == {"stage1": "done"}
    tools.compensate(rec, tmp_path / "whole", load_config(cfg).values(options.COMPENSATE))
    for name in (layout.COMPENSATED, layout.VALID_IDX, layout.STATISTICS):
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    mk = tool(sys.executable, "-m", "frkit.session", "plan", cfg).stdout.strip()
    p = tool("make", "--no-print-directory", "-j2", "-f", mk, "stage1")
    assert p.returncode == 0 and "fr-compensate" not in p.stdout and "join" not in p.stdout, p.stdout
