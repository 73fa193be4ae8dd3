"""Every tool through the shared harness: out-of-range options and outputs that would replace an input.

The sweep is generated from the declarations (frkit.options), so a new tool
or option is covered without a new test: exit status 2, one line on stderr
naming the option (or the input), no traceback, the inputs keep their bytes,
and nothing is left under a result's name.
"""

import hashlib
import os
from pathlib import Path

import h5py
import pytest

from frkit import layout, options, tools
from frkit.cli.harness import run_app
from frkit.synth import SyntheticSession
from frkit_cmd import fr_align, fr_apply_flow, fr_average, fr_compensate, fr_mask, fr_reproject

MAINS = {"fr-compensate": fr_compensate.main, "fr-average": fr_average.main, "fr-align": fr_align.main,
         "fr-mask": fr_mask.main, "fr-reproject": fr_reproject.main, "fr-apply-flow": fr_apply_flow.main}
PARAMS = {"fr-compensate": options.COMPENSATE, "fr-average": options.AVERAGE, "fr-align": options.ALIGN,
          "fr-mask": options.MASK, "fr-reproject": options.REPROJECT, "fr-apply-flow": options.APPLY_FLOW}


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    """Two recordings through stages 1 and 2 with the library entry points: {name: path}."""
    root = tmp_path_factory.mktemp("tools")
    files = {}
    for i in (1, 2):
        s = SyntheticSession(32, 40, 8, seed=1, motion_seed=i, shift_px=1.0, warp_px=0.3)  # one field of view
        rec = root / f"rec{i}.h5"
        with h5py.File(rec, "w") as f:
            f["mov"] = s.frames()[..., 0]
        d = root / f"rec{i}"
        tools.compensate(rec, d, options.resolve(options.COMPENSATE, quality="fast", workers=1, save_w=True))
        tools.average(d, None, options.resolve(options.AVERAGE))
        files[f"rec{i}"], files[f"dir{i}"] = rec, d
    tools.align(root / "rec1" / layout.TEMPORAL_AVERAGE, root / "rec2" / layout.TEMPORAL_AVERAGE, None,
                options.resolve(options.ALIGN, iterations=5))
    tools.align(root / "rec1" / layout.TEMPORAL_AVERAGE, root / "rec1" / layout.TEMPORAL_AVERAGE, None,
                options.resolve(options.ALIGN))
    files["root"] = root
    return files


def base_args(tool, f):
    """Valid positional arguments and options for ``tool`` (so a failure is the swept option's)."""
    d1, d2 = f["dir1"], f["dir2"]
    return {
        "fr-compensate": [f["rec1"], "-o", f["root"] / "sweep"],
        "fr-average": [d1, "-o", f["root"] / "sweep.npy"],
        "fr-align": [d1 / layout.TEMPORAL_AVERAGE, d2 / layout.TEMPORAL_AVERAGE, "-o", f["root"] / "sweep.npz"],
        "fr-mask": ["--recording", d1, "--recording", d2, "-o", f["root"] / "sweep"],
        "fr-reproject": [d2, d2 / layout.W_TO_REFERENCE, "-o", f["root"] / "sweep.tif", "--fill", "zero"],
        "fr-apply-flow": [f["rec1"], d1 / layout.FLOW, "-o", f["root"] / "sweep.h5"],
    }[tool]


def digest(root: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def call(tool, args, capsys):
    code = run_app(MAINS[tool].app, tool, [str(a) for a in args])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return code, lines, err


def out_of_range(kind):
    """Values just outside a numeric declaration's bounds, and one that is not a number."""
    bad = ["x"]
    if kind.ge is not None:
        bad.append(str(kind.ge - 1))
    if kind.gt is not None:
        bad.append(str(kind.gt))
    if kind.le is not None:
        bad.append(str(kind.le + 1))
    return bad


NUMERIC = [(tool, p, value) for tool, params in PARAMS.items() for p in params
           if isinstance(p.kind, options.Number) and not p.argument for value in out_of_range(p.kind)]


@pytest.mark.parametrize("tool,param,value", NUMERIC, ids=lambda x: getattr(x, "name", x))
def test_every_numeric_option_out_of_range(stage1, capsys, tool, param, value):
    before = digest(stage1["root"])
    code, lines, err = call(tool, base_args(tool, stage1) + [param.flag, value], capsys)
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"{tool}: error: {param.flag}: must be"), lines[0]
    assert digest(stage1["root"]) == before  # nothing written, nothing changed


KEYED = sorted({k: p for g in (options.COMPENSATE, options.ALIGN, options.REPROJECT) for p in g
                for k in p.keys if isinstance(p.kind, options.Number)}.items())


@pytest.mark.parametrize("key,value", [(k, out_of_range(p.kind)[1]) for k, p in KEYED])
def test_out_of_range_config_values_name_the_key(stage1, capsys, tmp_path, key, value):
    table, _, name = key.rpartition(".")
    body = f"{name} = {value}\n"
    cfg = tmp_path / "session.toml"
    cfg.write_text('root = "."\n' + (f"[{table}]\n" if table else "") + body)
    code, lines, err = call("fr-compensate", [stage1["rec1"], "-o", tmp_path / "o", "--config", cfg], capsys)
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert f"{key} in {cfg}: must be" in lines[0], lines[0]
    assert not (tmp_path / "o").exists()


def outputs_onto_inputs(f):
    """(tool, argv, the input it must not touch): every output given as each input."""
    d1, d2 = f["dir1"], f["dir2"]
    avg1, avg2 = d1 / layout.TEMPORAL_AVERAGE, d2 / layout.TEMPORAL_AVERAGE
    video2, field2 = d2 / layout.COMPENSATED, d2 / layout.W_TO_REFERENCE
    cases = [
        ("fr-average", [video2, "-o", video2], video2),
        ("fr-average", [d2, "-o", video2], video2),
        ("fr-align", [avg1, avg2, "-o", avg1], avg1),
        ("fr-align", [avg1, avg2, "-o", avg2], avg2),
        ("fr-reproject", [d2, field2, "-o", video2], video2),
        ("fr-reproject", [d2, field2, "-o", field2], field2),
        ("fr-reproject", [d2, field2, "-o", avg1, "--reference-average", avg1], avg1),
        ("fr-mask", ["--recording", d1, "--recording", d2, "-o", avg1], avg1),
        ("fr-apply-flow", [f["rec1"], d1 / layout.FLOW, "-o", f["rec1"]], f["rec1"]),
        ("fr-apply-flow", [f["rec1"], d1 / layout.FLOW, "-o", d1 / layout.FLOW], d1 / layout.FLOW),
        # the hand-on copy named like the recording
        ("fr-compensate", [d2 / "compensated.tif", "-o", d2, "--output-format", "tiff"], d2 / "compensated.tif"),
    ]
    for name in layout.COMPENSATE_OUTPUTS:  # the recording named like each output of its own folder
        cases.append(("fr-compensate", [d2 / name, "-o", d2], d2 / name))
    return cases


def test_no_tool_can_replace_its_input(stage1, capsys, tmp_path):
    link = stage1["root"] / "hardlink.npy"
    os.link(stage1["dir1"] / layout.TEMPORAL_AVERAGE, link)
    cases = outputs_onto_inputs(stage1) + [
        ("fr-align", [stage1["dir1"] / layout.TEMPORAL_AVERAGE, stage1["dir2"] / layout.TEMPORAL_AVERAGE, "-o",
                      link], link)]
    for tool, args, victim in cases:
        if not victim.exists():  # compensate: a recording under an output's name
            victim.write_bytes(stage1["rec1"].read_bytes())
        before = digest(stage1["root"])
        code, lines, err = call(tool, args, capsys)
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, (tool, args, err)
        assert "would be overwritten" in lines[0] or "not a directory" in lines[0], lines[0]
        assert digest(stage1["root"]) == before, (tool, args)
    for p in stage1["root"].rglob("*" + layout.PARTIAL_SUFFIX):
        pytest.fail(f"left behind: {p}")


def test_version_and_help_for_every_tool(capsys):
    from frkit import __version__

    for tool, params in PARAMS.items():
        assert run_app(MAINS[tool].app, tool, ["--version"]) == 0
        assert capsys.readouterr().out.strip() == f"frkit {__version__}"
        assert run_app(MAINS[tool].app, tool, ["-h"]) == 0
        text = capsys.readouterr().out
        assert "Example" in text, tool
        for p in params:
            if not p.argument:
                assert p.flag in text, (tool, p.flag)


def test_entry_points_have_one_shape():
    import inspect

    for name in ("compensate", "average", "align", "mask", "reproject", "apply_flow"):
        sig = list(inspect.signature(getattr(tools, name)).parameters)
        assert sig[-3:] == ["output", "params", "progress"], (name, sig)
