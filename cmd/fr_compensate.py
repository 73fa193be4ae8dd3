"""fr-compensate: Flow-Registration motion correction of one recording."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

from enum import Enum

import typer

from frkit.cli.harness import explicit, info, load_session, main_for, make_app, parse_floats, parse_frames, progress_bar

PROG = "fr-compensate"

HELP = (
    "Correct the motion inside one recording with variational optical flow (Flow-Registration).\n\n"
    "Writes to OUTDIR: compensated.HDF5 (datasets ch1..chN, (T, H, W)), idx.hdf (dataset idx, uint8 0/255), "
    "statistics.npz, reference_frame.npy, compensate.json and, with --save-w, w.h5 (u, v).\n\n"
    "Examples:\n\n"
    "  fr-compensate rec.tif -o out/rec --quality balanced\n\n"
    "  fr-compensate rec.h5 -o out/rec --dataset green --dataset red --weight 0.8,0.2\n\n"
    "  fr-compensate movie.h5 -o out/movie --axes HWT --reference-frames 0:200"
)
app = make_app(HELP)

class Quality(str, Enum):
    quality = "quality"
    balanced = "balanced"
    fast = "fast"


class Normalization(str, Enum):
    joint = "joint"
    separate = "separate"


class Interpolation(str, Enum):
    cubic = "cubic"
    linear = "linear"


class OutputDtype(str, Enum):
    same = "same"
    uint8 = "uint8"
    uint16 = "uint16"
    int16 = "int16"
    int32 = "int32"
    float32 = "float32"
    float64 = "float64"


P_IN = "Input"
P_FLOW = "Optical flow"
P_PRE = "Preprocessing"
P_REF = "Reference and initialization"
P_OUT = "Output"
P_RUN = "Execution"
P_SESSION = "Session"


@app.command(help=HELP)
def compensate(
    ctx: typer.Context,
    input: Annotated[Optional[Path], typer.Argument(
        help="Recording: TIFF, HDF5 (.h5/.hdf5/.hdf) or MAT (v5 or v7.3).", show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help="Output directory (created if missing). With --config: "
        "<output_root>/<stem> of the session.", show_default=False, rich_help_panel=P_OUT)] = None,
    # input layout
    dataset: Annotated[Optional[List[str]], typer.Option(
        "--dataset", help="HDF5/MAT dataset to read; repeat once per channel. Default: discover ch1..chN, "
        "mov/data, or the largest 3-D/4-D dataset.", rich_help_panel=P_IN)] = None,
    axes: Annotated[Optional[str], typer.Option(
        help="Stored axis order, e.g. THW, HWT, TCYX, THWC (MAT files: MATLAB's order, default HWT).",
        rich_help_panel=P_IN)] = None,
    deinterleave: Annotated[int, typer.Option(
        min=1, help="TIFF: N consecutive single-channel pages form one N-channel frame.", rich_help_panel=P_IN)] = 1,
    bin_size: Annotated[int, typer.Option(
        min=1, help="Average N consecutive frames into one before correcting.", rich_help_panel=P_IN)] = 1,
    # method
    quality: Annotated[Quality, typer.Option(
        help="Preset for the finest pyramid level: quality (0), balanced (4), fast (6).",
        rich_help_panel=P_FLOW)] = Quality.quality,
    min_level: Annotated[int, typer.Option(
        min=-1, help="Finest pyramid level solved (0 = full resolution); -1 takes it from --quality.",
        rich_help_panel=P_FLOW)] = -1,
    alpha: Annotated[str, typer.Option(
        help="Smoothness weight: one value or alpha_x,alpha_y.", rich_help_panel=P_FLOW)] = "1.5",
    weight: Annotated[str, typer.Option(
        help="Channel weights of the data term, comma separated (normalized to sum 1).",
        rich_help_panel=P_FLOW)] = "0.5,0.5",
    levels: Annotated[int, typer.Option(min=1, help="Upper bound on the pyramid depth.", rich_help_panel=P_FLOW)] = 100,
    eta: Annotated[float, typer.Option(help="Pyramid downscale factor per level, in (0, 1].",
                                       rich_help_panel=P_FLOW)] = 0.8,
    iterations: Annotated[int, typer.Option(min=1, help="SOR iterations per pyramid level.",
                                            rich_help_panel=P_FLOW)] = 50,
    update_lag: Annotated[int, typer.Option(min=1, help="Iterations between updates of the robust weights.",
                                            rich_help_panel=P_FLOW)] = 5,
    a_data: Annotated[float, typer.Option(help="Data penalty exponent in (0, 1] (1 = quadratic).",
                                          rich_help_panel=P_FLOW)] = 0.45,
    a_smooth: Annotated[float, typer.Option(help="Smoothness penalty exponent (1 = quadratic).",
                                            rich_help_panel=P_FLOW)] = 1.0,
    # preprocessing
    sigma: Annotated[str, typer.Option(
        help="Gaussian sigma rows,cols,time; per channel separate rows with ';' (e.g. '1,1,0.1;2,2,0.1').",
        rich_help_panel=P_PRE)] = "1,1,0.1",
    channel_normalization: Annotated[Normalization, typer.Option(
        help="Intensity normalization from the reference: joint (all channels) or separate.",
        rich_help_panel=P_PRE)] = Normalization.joint,
    buffer_size: Annotated[int, typer.Option(
        min=1, help="Frames per batch: the flow initialization (and the reference, with --update-reference) "
        "is renewed between batches.", rich_help_panel=P_PRE)] = 400,
    # reference
    reference_frames: Annotated[Optional[str], typer.Option(
        help="Frames averaged (after pre-registration) into the reference: START:STOP (0-based, STOP excluded) "
        "or a list 0,5,9. Default 50:500, clipped to the recording; under 100 frames: all frames.",
        show_default=False, rich_help_panel=P_REF)] = None,
    reference: Annotated[Optional[Path], typer.Option(
        help="Reference image file instead (.npy, .tif, .mat, .h5, .png), (H, W) or (H, W, C).",
        rich_help_panel=P_REF)] = None,
    update_reference: Annotated[bool, typer.Option(
        help="Replace the reference by the mean of the last 100 corrected frames after each batch.",
        rich_help_panel=P_REF)] = False,
    update_initialization_w: Annotated[bool, typer.Option(
        help="Start each frame's flow from the mean flow of the first 22 frames, then of the last 20 of the "
        "previous batch.", rich_help_panel=P_REF)] = True,
    cc_init: Annotated[bool, typer.Option(
        "--cc-init/--no-cc-init", help="Rigid pre-alignment of every frame by phase correlation.",
        rich_help_panel=P_REF)] = False,
    cc_up: Annotated[int, typer.Option(min=1, help="Sub-pixel upsampling of the phase correlation.",
                                       rich_help_panel=P_REF)] = 1,
    # output
    interpolation: Annotated[Interpolation, typer.Option(
        help="Interpolation of the corrected frames.", rich_help_panel=P_OUT)] = Interpolation.cubic,
    output_dtype: Annotated[OutputDtype, typer.Option(
        help="Data type of compensated.HDF5: same (as the input; integers rounded and clipped, never wrapped), "
        "or the one named.", rich_help_panel=P_OUT)] = OutputDtype.same,
    save_w: Annotated[bool, typer.Option("--save-w", help="Also write the flow fields to w.h5 (u, v; float32).",
                                         rich_help_panel=P_OUT)] = False,
    # session
    config: Annotated[Optional[Path], typer.Option(
        help="session.toml: take the stage-1 options from it (flags given here win).",
        rich_help_panel=P_SESSION)] = None,
    array_task: Annotated[bool, typer.Option(
        "--array-task", help="With --config: run the whole stage 1 (compensation, temporal average, status) for "
        "the recording picked by SLURM_ARRAY_TASK_ID, SGE_TASK_ID, PBS_ARRAY_INDEX or PBS_ARRAYID.",
        rich_help_panel=P_SESSION)] = False,
    index_base: Annotated[int, typer.Option(
        help="Array id of the first recording: 1 for --array=1-N, 0 for --array=0-(N-1).",
        rich_help_panel=P_SESSION)] = 1,
    # execution
    workers: Annotated[int, typer.Option(min=0, help="CPU worker threads (0 = all CPUs this job may use).",
                                         rich_help_panel=P_RUN)] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N (needs the gpu extra).",
                                        rich_help_panel=P_RUN)] = "cpu",
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar and no summary line.",
                                        rich_help_panel=P_RUN)] = False,
) -> int:
    from frkit.binned import binned
    from frkit.compensate import CompensateOptions, compensate_recording, describe_input, options_from_values
    from frkit.engine import make_engine
    from frkit.errors import OptionError
    from frkit.io import open_video
    from frkit.paths import check_distinct_output, require_file

    cfg = load_session(config)
    if array_task:
        from frkit.session.array import array_task_index

        if cfg is None:
            raise OptionError("--array-task needs --config session.toml")
        if input is not None:
            raise OptionError("give INPUT or --array-task, not both")
        recordings = cfg.recordings()
        input = recordings[array_task_index(len(recordings), index_base)]
    if input is None:
        raise OptionError("missing INPUT (or --config session.toml --array-task)")
    if output is None:
        if cfg is None:
            raise OptionError("missing -o/--output OUTDIR")
        output = cfg.recording_dir(input)
    require_file(input)

    # defaults <- session config <- flags given on the command line
    values = {}
    if cfg is not None:
        where = f"{cfg.source}: flow_options"
        values.update(options_from_values(cfg.compensate_overrides(), where))
        if cfg.n_workers > 0:
            values["workers"] = cfg.n_workers

    def sigma_rows():
        rows = tuple(parse_floats(row, "--sigma", 3) for row in sigma.split(";") if row.strip())
        if not rows or any(len(r) != 3 for r in rows):
            raise OptionError("--sigma needs three values per channel: rows,cols,time")
        return rows

    flags = {
        "alpha": lambda: _pair(parse_floats(alpha, "--alpha", 2)),
        "weight": lambda: parse_floats(weight, "--weight"),
        "levels": lambda: levels, "min_level": lambda: min_level, "quality": lambda: quality.value,
        "eta": lambda: eta, "update_lag": lambda: update_lag, "iterations": lambda: iterations,
        "a_smooth": lambda: a_smooth, "a_data": lambda: a_data, "sigma": sigma_rows,
        "bin_size": lambda: bin_size, "buffer_size": lambda: buffer_size,
        "reference_frames": lambda: parse_frames(reference_frames, "--reference-frames"),
        "reference": lambda: str(reference), "update_reference": lambda: update_reference,
        "update_initialization_w": lambda: update_initialization_w, "cc_init": lambda: cc_init,
        "cc_up": lambda: cc_up, "channel_normalization": lambda: channel_normalization.value,
        "interpolation": lambda: interpolation.value, "output_dtype": lambda: output_dtype.value,
        "save_w": lambda: save_w, "workers": lambda: workers,
    }
    renamed = {"reference": "reference_file", "cc_init": "cc_initialization"}
    for name, get in flags.items():
        if explicit(ctx, name):
            values[renamed.get(name, name)] = get()
    if "reference_file" in values and "reference_frames" in values:
        raise OptionError("give --reference-frames or --reference, not both")
    opts = CompensateOptions(**values).validate()
    check_distinct_output(input, output)
    engine = make_engine(device, opts.workers)
    try:
        with open_video(input, axes=axes, datasets=dataset or None, deinterleave=deinterleave) as raw:
            reader = binned(raw, opts.bin_size)
            with progress_bar("compensating", None if not quiet else False) as update:
                summary = compensate_recording(reader, output, opts, engine, progress=update,
                                               input_info=describe_input(input))
    finally:
        engine.close()
    if array_task:
        from frkit.session.stages import finish_stage1

        finish_stage1(output)
    if not quiet:
        t, h, w, c = summary["shape"]
        info(PROG, f"{t} frames {h}x{w}x{c} -> {output}  ({summary['frames_per_s']:.1f} frames/s, "
                   f"mean displacement {summary['mean_displacement']:.2f} px, {summary['engine']})")
    return 0


def _pair(values):
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


main = main_for(app, PROG)

if __name__ == "__main__":
    main()
