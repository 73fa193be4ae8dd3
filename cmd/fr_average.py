"""fr-average: temporal average of a compensated video."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from frkit.cli.harness import load_session, main_for, make_app

PROG = "fr-average"
HELP = (
    "Average a compensated video over time into temporal_average.npy ((H, W, C) float64).\n\n"
    "Reads frkit's, pyflowreg's or MATLAB's compensated.HDF5 (or any video fr-compensate reads), "
    "streaming in batches.\n\n"
    "Example:\n\n  fr-average out/rec/compensated.HDF5   # writes out/rec/temporal_average.npy"
)
app = make_app(HELP)


@app.command(help=HELP)
def average(
    compensated: Annotated[Path, typer.Argument(help="Compensated video, or a stage-1 folder holding one.",
                                                show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help="Output .npy (default: temporal_average.npy next to the video).",
        show_default=False)] = None,
    mat: Annotated[bool, typer.Option("--mat", help="Also write a .mat copy (variable temporal_average).")] = False,
    tif: Annotated[bool, typer.Option("--tif", help="Also write a float32 .tif copy.")] = False,
    config: Annotated[Optional[Path], typer.Option(
        help="session.toml: also mark stage1 done in the video's folder (status.json).")] = None,
) -> int:
    from frkit import layout
    from frkit.paths import resolve_video
    from frkit.session.stages import average_video

    compensated = resolve_video(compensated)
    cfg = load_session(config)  # validated: a session run
    out = output or compensated.parent / layout.TEMPORAL_AVERAGE
    average_video(compensated, out, mat=mat, tif=tif)
    if cfg is not None:
        from frkit.session import status

        status.mark_done(compensated.parent, "stage1")
    return 0


main = main_for(app, PROG)

if __name__ == "__main__":
    main()
