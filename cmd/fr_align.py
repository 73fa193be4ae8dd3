"""fr-align: displacement between two recordings' temporal averages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from frkit.cli.harness import explicit, load_session, main_for, make_app

PROG = "fr-align"
HELP = (
    "Displacement from the center recording's average to another recording's average.\n\n"
    "Writes w_to_reference.npz: u (columns) and v (rows), (H, W), on the reference grid; warping the moving "
    "recording backward with it (out(y, x) = in(y + v, x + u)) aligns it to the reference. Smoothing, a rigid "
    "start by phase correlation, then variational optical-flow refinement.\n\n"
    "Examples:\n\n"
    "  fr-align center/temporal_average.npy day2/temporal_average.npy -o day2/w_to_reference.npz\n\n"
    "  fr-align --config session.toml        # every recording of the session"
)
app = make_app(HELP)


@app.command(help=HELP)
def align(
    ctx: typer.Context,
    reference: Annotated[Optional[Path], typer.Argument(help="Center recording's temporal_average.npy.",
                                                        show_default=False)] = None,
    moving: Annotated[Optional[Path], typer.Argument(help="Moving recording's temporal_average.npy.",
                                                     show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help="Output .npz (default: w_to_reference.npz next to MOVING).",
        show_default=False)] = None,
    sigma_smooth: Annotated[float, typer.Option(help="Gaussian smoothing of both averages (pixels).")] = 6.0,
    cc_upsample: Annotated[int, typer.Option(min=1, help="Sub-pixel upsampling of the phase correlation.")] = 4,
    alpha: Annotated[float, typer.Option("--alpha", help="Smoothness weight of the flow [alpha_between].")] = 25.0,
    iterations: Annotated[int, typer.Option(min=1, help="Solver iterations per level [iterations_between].")] = 100,
    mat: Annotated[bool, typer.Option("--mat", help="Also write w_to_reference.mat (u, v double).")] = False,
    config: Annotated[Optional[Path], typer.Option(
        help="session.toml: parameters from it (flags win); without files, align every recording.")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
) -> int:
    from frkit import layout
    from frkit.engine import make_engine
    from frkit.errors import OptionError
    from frkit.session import status
    from frkit.session.stages import align_averages, align_params, session_files

    cfg = load_session(config)
    given = {k: v for k, v in (("sigma_smooth", sigma_smooth), ("cc_upsample", cc_upsample), ("alpha", alpha),
                               ("iterations", iterations)) if explicit(ctx, k)}
    if cfg is None:
        given = {"sigma_smooth": sigma_smooth, "cc_upsample": cc_upsample, "alpha": alpha,
                 "iterations": iterations}
    params = align_params(cfg, **given)
    engine = make_engine(device) if device != "cpu" else None
    if reference is None and moving is None:
        if cfg is None:
            raise OptionError("give REFERENCE_AVERAGE MOVING_AVERAGE, or --config session.toml")
        files, center = session_files(cfg)
        for f in files:
            align_averages(files[center].average, f.average, f.w_to_reference, params, mat, engine)
            status.mark_done(f.w_to_reference.parent, "stage2")
        return 0
    if reference is None or moving is None:
        raise OptionError("give both REFERENCE_AVERAGE and MOVING_AVERAGE")
    out = output or moving.parent / layout.W_TO_REFERENCE
    align_averages(reference, moving, out, params, mat, engine)
    if cfg is not None:
        status.mark_done(out.parent, "stage2")
    return 0


main = main_for(app, PROG)

if __name__ == "__main__":
    main()
