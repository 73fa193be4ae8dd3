"""session.toml, center choice, array task ids."""

import json

import pytest

from frkit.errors import FrkitError, InputError, OptionError
from frkit.options import ALIGN, COMPENSATE, REPROJECT
from frkit.session.array import array_task_index
from frkit.session.config import center_index, load_config


def write(tmp_path, text, files=("a.tif", "b.tif", "c.tif")):
    for f in files:
        (tmp_path / f).write_bytes(b"")
    p = tmp_path / "session.toml"
    p.write_text(text)
    return p


def test_seed_keys_and_defaults(tmp_path):
    cfg = load_config(write(tmp_path, """
root = "."
pattern = "*.tif"
output_root = "compensated_outputs"
final_results = "final_results"
resume = true
scheduler = "local"
flow_backend = "flowreg"
cc_upsample = 4
sigma_smooth = 6.0
alpha_between = 25.0
iterations_between = 100
n_workers = 2
stage1_quality_setting = "balanced"
align_chunk_size = 32
align_output_format = "hdf5"
[backend_params]
[of_options_override]
quality_setting = "fast"
buffer_size = 1000
save_w = false
save_valid_idx = true
"""))
    assert cfg.root == tmp_path and cfg.output_dir == tmp_path / "compensated_outputs"
    assert cfg.final_dir == tmp_path / "final_results" and cfg.values(REPROJECT).format == "HDF5"
    assert [p.name for p in cfg.recordings()] == ["a.tif", "b.tif", "c.tif"]
    # flow options override the quality setting, as in pyflowreg
    stage1 = cfg.values(COMPENSATE)
    assert (stage1.quality, stage1.buffer_size, stage1.save_w, stage1.workers) == ("fast", 1000, False, 2)
    assert cfg.values(REPROJECT).chunk_size == 32 and cfg.values(ALIGN).alpha == (25.0, 25.0)


def test_unknown_key_names_the_closest(tmp_path):
    with pytest.raises(OptionError, match="alpha_betwen.*did you mean 'alpha_between'"):
        load_config(write(tmp_path, 'root = "."\nalpha_betwen = 3.0\n'))
    with pytest.raises(OptionError, match="'quality_seting'.*did you mean 'quality_setting'"):
        load_config(write(tmp_path, 'root = "."\n[flow_options]\nquality_seting = "fast"\n'))


@pytest.mark.parametrize("line,needle", [
    ('cc_upsample = "4"', "cc_upsample"),
    ("resume = 1", "resume"),
    ("sigma_smooth = true", "sigma_smooth"),
    ('scheduler = "slurm"', "scheduler"),
    ('align_output_format = "AVI"', "align_output_format"),
    ('flow_backend = "diso"', "flow_backend"),
])
def test_wrong_value_types(tmp_path, line, needle):
    with pytest.raises(OptionError, match=needle):
        load_config(write(tmp_path, f'root = "."\n{line}\n'))


def test_pinned_stage1_keys(tmp_path):
    with pytest.raises(OptionError, match="flow_options.output_format in .*must be 'HDF5'"):
        load_config(write(tmp_path, 'root = "."\n[flow_options]\noutput_format = "MAT"\n'))
    with pytest.raises(OptionError, match="save_valid_idx"):
        load_config(write(tmp_path, 'root = "."\n[flow_options]\nsave_valid_idx = false\n'))


def test_flow_options_from_a_peer_options_file(tmp_path):
    # the format MATLAB and pyflowreg write: header line, blank line, JSON with every field
    (tmp_path / "opts.json").write_text("Compensation options 2025-01-01\n\n" + json.dumps({
        "alpha": [2, 2], "quality_setting": "balanced", "output_format": "HDF5", "save_valid_idx": True,
        "use_gpu": False, "output_file_writer": "x", "levels": 100}))
    cfg = load_config(write(tmp_path, 'root = "."\nflow_options = "opts.json"\n'))
    stage1 = cfg.values(COMPENSATE)
    assert (stage1.alpha, stage1.quality, stage1.levels) == ((2.0, 2.0), "balanced", 100)


def test_root_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config(write(tmp_path, 'root = "nowhere"\n'))
    with pytest.raises(OptionError, match="'root' is missing"):
        load_config(write(tmp_path, 'pattern = "*.tif"\n'))


def test_recordings_exclude_outputs_and_reject_duplicate_stems(tmp_path):
    cfg = load_config(write(tmp_path, 'root = "."\npattern = "**/*.tif"\n'))
    (tmp_path / "final_results").mkdir()
    (tmp_path / "final_results" / "aligned_a.tif").write_bytes(b"")
    assert [p.name for p in cfg.recordings()] == ["a.tif", "b.tif", "c.tif"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.tif").write_bytes(b"")
    with pytest.raises(InputError, match="same stem 'a'"):
        cfg.recordings()


def test_empty_pattern(tmp_path):
    cfg = load_config(write(tmp_path, 'root = "."\npattern = "*.h5"\n'))
    with pytest.raises(InputError, match=r"no files match pattern '\*.h5'"):
        cfg.recordings()


@pytest.mark.parametrize("n,want", [(1, 0), (2, 0), (3, 1), (4, 1), (5, 2), (6, 2)])
def test_center_is_the_lexicographic_middle(tmp_path, n, want):
    recs = [tmp_path / f"r{i}.tif" for i in range(n)]
    assert center_index(recs, None, tmp_path) == want


def test_explicit_center(tmp_path):
    recs = [tmp_path / f"r{i}.tif" for i in range(3)]
    assert center_index(recs, "r2.tif", tmp_path) == 2
    with pytest.raises(InputError, match="not among the recordings"):
        center_index(recs, "r9.tif", tmp_path)


@pytest.mark.parametrize("env,base,want", [
    ({"SLURM_ARRAY_TASK_ID": "1"}, 1, 0),
    ({"SLURM_ARRAY_TASK_ID": "3"}, 1, 2),
    ({"SLURM_ARRAY_TASK_ID": "0"}, 0, 0),
    ({"SGE_TASK_ID": "2"}, 1, 1),
    ({"PBS_ARRAY_INDEX": "2"}, 0, 2),
    ({"PBS_ARRAYID": "1"}, 1, 0),
])
def test_array_task_ids(env, base, want):
    assert array_task_index(3, base, env) == want


@pytest.mark.parametrize("env,base,needle", [
    ({"SGE_TASK_ID": "undefined"}, 1, "not a task number"),
    ({"SLURM_ARRAY_TASK_ID": "0"}, 1, "out of range"),
    ({"SLURM_ARRAY_TASK_ID": "4"}, 1, "ids 1..3"),
    ({"SLURM_ARRAY_TASK_ID": "3"}, 0, "ids 0..2"),
    ({}, 1, "no array task id"),
])
def test_array_task_errors(env, base, needle):
    with pytest.raises(OptionError, match=needle):
        array_task_index(3, base, env)


def test_errors_are_frkit_errors():
    assert issubclass(OptionError, FrkitError) and issubclass(InputError, FrkitError)
