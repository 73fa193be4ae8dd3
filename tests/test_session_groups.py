"""Sessions whose recordings are several files: numbered-file groups (group_files) and directories."""

import json
import os
import sys

import h5py
import numpy as np
import pytest
import tifffile

from frkit.errors import InputError
from frkit.session.config import FileGroup, load_config
from frkit.synth import SyntheticSession

from conftest import run_tool as tool

H, W, T = 32, 40, 12


def _frames(seed):
    s = SyntheticSession(H, W, T, seed=seed, shift_px=1.0, warp_px=0.3, motion_seed=seed, margin=16)
    return np.clip(s.frames()[..., 0], 0, 65535).astype(np.uint16)


def _session(root):
    root.mkdir(parents=True, exist_ok=True)
    a = _frames(1)
    for i, part in enumerate((a[:5], a[5:10], a[10:])):  # ScanImage-style numbered files
        tifffile.imwrite(root / f"mouseA_{i + 1:05d}.tif", part, photometric="minisblack")
    (root / "mouseB").mkdir()  # a directory of parts
    b = _frames(2)
    for i, part in enumerate((b[:6], b[6:])):
        tifffile.imwrite(root / "mouseB" / f"block{i + 1}.tif", part, photometric="minisblack")
    cfg = root / "session.toml"
    cfg.write_text('root = "."\npattern = "mouse*"\ngroup_files = true\nstage1_quality_setting = "fast"\n'
                   '[flow_options]\niterations = 3\n')
    return cfg, a, b


def test_grouping_rule(tmp_path):
    cfg, _, _ = _session(tmp_path / "s")
    recs = load_config(cfg).recordings()
    assert [r.stem for r in recs] == ["mouseA", "mouseB"]
    assert isinstance(recs[0], FileGroup) and [p.name for p in recs[0]] == [
        "mouseA_00001.tif", "mouseA_00002.tif", "mouseA_00003.tif"]
    assert recs[1].is_dir()


def test_session_stage1_on_groups_and_staleness_covers_every_file(tmp_path):
    root = tmp_path / "s"
    cfg, a, b = _session(root)
    p = tool(sys.executable, "-m", "frkit.session", "plan", cfg)
    assert p.returncode == 0, p.stderr
    mk = p.stdout.strip()
    text = open(mk).read()
    rules = {line.split(":")[0]: line for line in text.splitlines() if "compensate.json:" in line}
    rule_a = rules[str((root / "compensated_outputs" / "mouseA" / "compensate.json").resolve())]
    rule_b = rules[str((root / "compensated_outputs" / "mouseB" / "compensate.json").resolve())]
    assert all(f"mouseA_0000{i}.tif" in rule_a for i in (1, 2, 3))  # every file of the group is a prerequisite
    assert "mouseB/block1.tif" in rule_b and "mouseB/block2.tif" in rule_b
    res = tool("make", "--no-print-directory", "-f", mk, "stage1")
    assert res.returncode == 0, res.stdout + res.stderr
    out = root / "compensated_outputs"
    for stem, data in (("mouseA", a), ("mouseB", b)):
        with h5py.File(out / stem / "compensated.HDF5") as f:
            assert f["ch1"].shape == data.shape
    assert tool("make", "-q", "-f", mk, "stage1").returncode == 0  # up to date
    assert tool(sys.executable, "-m", "frkit.session", "plan", cfg).returncode == 0  # the records still match
    assert (out / "mouseA" / "compensate.json").exists() and (out / "mouseB" / "compensate.json").exists()
    # change one middle file of the group: its recording (only) is out of date
    part = root / "mouseA_00002.tif"
    tifffile.imwrite(part, a[5:10][::-1].copy(), photometric="minisblack")
    os.utime(part, (part.stat().st_atime + 5, part.stat().st_mtime + 5))
    p = tool(sys.executable, "-m", "frkit.session", "plan", cfg)
    assert p.returncode == 0, p.stderr
    assert not (out / "mouseA" / "compensate.json").exists()  # the record no longer matches its input
    assert (out / "mouseB" / "compensate.json").exists()
    dry = tool("make", "-n", "--no-print-directory", "-f", mk, "stage1").stdout
    assert "mouseA_00001.tif" in dry and "block1.tif" not in dry


def test_gap_in_a_group_fails_the_plan(tmp_path):
    root = tmp_path / "s"
    cfg, _, _ = _session(root)
    (root / "mouseA_00002.tif").unlink()
    p = tool(sys.executable, "-m", "frkit.session", "plan", cfg)
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert "mouseA_00002.tif: missing from the numbered group" in p.stderr
