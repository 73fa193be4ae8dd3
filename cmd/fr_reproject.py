"""fr-reproject: warp a compensated video into the session's reference grid."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from frkit.cli.harness import explicit, load_session, main_for, make_app, progress_bar

PROG = "fr-reproject"
HELP = (
    "Warp a compensated video into the center recording's grid with its w_to_reference.npz, in chunks.\n\n"
    "Out-of-view pixels take the center recording's temporal average (--fill reference), 0 or NaN (NaN makes "
    "integer videos float32). Integer outputs are rounded and clipped, never wrapped. The output is "
    "aligned_<stem>.<ext>, stem = the recording's folder name.\n\n"
    "Examples:\n\n"
    "  fr-reproject out/day2/compensated.HDF5 out/day2/w_to_reference.npz --reference-average "
    "out/day1/temporal_average.npy -o final/aligned_day2.tif\n\n"
    "  fr-reproject --config session.toml      # every recording of the session"
)
app = make_app(HELP)


class Fill(str, Enum):
    reference = "reference"
    zero = "zero"
    nan = "nan"


class Format(str, Enum):
    TIFF = "TIFF"
    HDF5 = "HDF5"
    MAT = "MAT"


@app.command(help=HELP)
def reproject(
    ctx: typer.Context,
    compensated: Annotated[Optional[Path], typer.Argument(
        help="Compensated video, or a stage-1 folder holding one.", show_default=False)] = None,
    w_to_reference: Annotated[Optional[Path], typer.Argument(help="Its w_to_reference.npz.",
                                                             show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help="Output file (default: aligned_<stem>.<ext> in the current folder, or in "
        "final_results with --config).", show_default=False)] = None,
    fill: Annotated[Fill, typer.Option(help="Out-of-view pixels.")] = Fill.reference,
    reference_average: Annotated[Optional[Path], typer.Option(
        help="Center recording's temporal_average.npy (for --fill reference).")] = None,
    format: Annotated[Optional[Format], typer.Option(
        "--format", help="Output format [align_output_format]; default from the -o suffix, else TIFF.",
        show_default=False)] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Frames per chunk [align_chunk_size].")] = 64,
    config: Annotated[Optional[Path], typer.Option(
        help="session.toml: parameters and paths from it (flags win); without files, every recording.")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    workers: Annotated[int, typer.Option(min=0, help="CPU worker threads (0 = all).")] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar.")] = False,
) -> int:
    from frkit import layout
    from frkit.engine import make_engine
    from frkit.errors import OptionError
    from frkit.io import open_video, open_video_writer
    from frkit.paths import resolve_video
    from frkit.reproject import fill_image, output_dtype, reproject as run
    from frkit.session.final import load_average, load_flow
    from frkit.session.plan import ALIGN_EXT, aligned_name
    from frkit.session.stages import session_files

    cfg = load_session(config)
    fmt = format.value if format is not None else None
    chunk = chunk_size
    if cfg is not None:
        fmt = fmt if explicit(ctx, "format") else cfg.align_output_format
        chunk = chunk_size if explicit(ctx, "chunk_size") else cfg.align_chunk_size

    jobs = []  # (video, field, output, reference average)
    if compensated is None and w_to_reference is None:
        if cfg is None:
            raise OptionError("give COMPENSATED W_TO_REFERENCE, or --config session.toml")
        files, c = session_files(cfg)
        ref_avg = reference_average or files[c].average
        for f in files:
            jobs.append((f.compensated.parent, f.w_to_reference, f.aligned_video, ref_avg))
    elif compensated is None or w_to_reference is None:
        raise OptionError("give both COMPENSATED and W_TO_REFERENCE")
    else:
        compensated = resolve_video(compensated)
        stem = compensated.parent.name if compensated.stem.lower() == "compensated" else compensated.stem
        ref_avg = reference_average
        if ref_avg is None and cfg is not None:
            files, c = session_files(cfg)
            ref_avg = files[c].average
        if output is None:
            name = aligned_name(stem, fmt or "TIFF")
            output = (cfg.final_dir if cfg is not None else Path.cwd()) / name
        if fmt is None:
            by_suffix = {v: k for k, v in ALIGN_EXT.items()} | {"tiff": "TIFF", "h5": "HDF5", "hdf": "HDF5"}
            fmt = by_suffix.get(output.suffix.lower().lstrip("."), "TIFF")
        jobs.append((compensated, w_to_reference, output, ref_avg))

    engine = make_engine(device, workers)
    try:
        for video, field, out, ref_avg in jobs:
            video = resolve_video(video)
            flow = load_flow(field)
            avg = load_average(ref_avg) if (fill == Fill.reference and ref_avg is not None) else None
            with open_video(video) as reader:
                t, h, w, c = reader.shape
                img = fill_image(fill.value, (h, w, c), avg)
                dtype = output_dtype(reader.dtype, fill.value)
                out.parent.mkdir(parents=True, exist_ok=True)
                with open_video_writer(out, fmt, c, h, w, dtype, n_frames=t) as writer:
                    with progress_bar(f"reprojecting {out.name}", None if not quiet else False) as update:
                        run(reader, flow, writer, img, engine, chunk, progress=update)
    finally:
        engine.close()
    return 0


main = main_for(app, PROG)

if __name__ == "__main__":
    main()
