"""fr-mask: the pixels valid in every recording of a session."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from frkit.cli.harness import info, load_session, main_for, make_app

PROG = "fr-mask"
HELP = (
    "Valid-pixel mask of a session: each recording's idx.hdf is reduced by a temporal AND, warped into the "
    "center recording's grid with its w_to_reference.npz (nearest sample, in-bounds rule), and all are ANDed.\n\n"
    "Writes final_valid_idx.npz (pyflowreg's keys plus center_file), final_valid_idx.mat (logical masks, 1-based "
    "middle_idx), final_valid_idx.png and <stem>_valid_idx.png / <stem>_valid_idx_aligned.png per recording.\n\n"
    "Examples:\n\n"
    "  fr-mask --config session.toml\n\n"
    "  fr-mask --recording out/a --recording out/b --recording out/c --center 1 -o final"
)
app = make_app(HELP)


@app.command(help=HELP)
def mask(
    config: Annotated[Optional[Path], typer.Option(help="session.toml: take every path from the session.")] = None,
    recording: Annotated[Optional[List[Path]], typer.Option(
        "--recording", help="A stage-1 folder (idx.hdf, temporal_average.npy, w_to_reference.npz); repeat, "
        "in session order.")] = None,
    center: Annotated[Optional[int], typer.Option(
        help="0-based index of the center recording among --recording (default: the middle, (N+1)//2-1).")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help="Output folder (default with --config: final_results).", show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No summary line.")] = False,
) -> int:
    from frkit import layout
    from frkit.errors import OptionError
    from frkit.session.final import RecordingFiles, session_mask
    from frkit.session.stages import session_files

    if config is not None and recording:
        raise OptionError("give --config or --recording folders, not both")
    if config is not None:
        cfg = load_session(config)
        files, c = session_files(cfg)
        if center is not None:
            raise OptionError("with --config the center comes from session.toml ('center')")
        out = output or cfg.final_dir
    elif recording:
        files = []
        for d in recording:
            if not d.is_dir():
                raise OptionError(f"{d}: not a stage-1 folder")
            files.append(RecordingFiles(stem=d.name, idx=d / layout.VALID_IDX, w_to_reference=d / layout.W_TO_REFERENCE,
                                        average=d / layout.TEMPORAL_AVERAGE,
                                        compensated=layout.find_compensated(d) or d / layout.COMPENSATED))
        if len({f.stem for f in files}) != len(files):
            raise OptionError("two --recording folders have the same name")
        c = (len(files) + 1) // 2 - 1 if center is None else center
        if output is None:
            raise OptionError("missing -o/--output FOLDER")
        out = output
    else:
        raise OptionError("give --config session.toml or --recording folders")
    for f in files:  # pyflowreg names the idx dataset ch1, MATLAB idx; both read the same
        if not f.idx.exists():
            raise OptionError(f"{f.idx}: missing (run stage 1 with valid masks)")
    summary = session_mask(files, c, out)
    if not quiet:
        info(PROG, f"{summary['valid_pixels']} of {summary['shape'][0] * summary['shape'][1]} pixels valid in all "
                   f"{len(files)} recordings ({100 * summary['valid_fraction']:.1f} %) -> {out}")
    return 0


main = main_for(app, PROG)

if __name__ == "__main__":
    main()
