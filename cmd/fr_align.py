"""fr-align: displacement between two recordings' temporal averages."""

from frkit import options
from frkit.cli.harness import info, tool_main
from frkit.errors import OptionError

PROG = "fr-align"
HELP = (
    "Displacement from the center recording's average to another recording's average.\n\n"
    "Writes w_to_reference.npz: u (columns) and v (rows), (H, W) float64, on the reference grid; warping the "
    "moving recording backward with it (out(y, x) = in(y + v, x + u)) aligns it to the reference. Smoothing, a "
    "rigid start by phase correlation, then variational optical-flow refinement (by default a robust coarse "
    "solve, then a fine one). The match quality (correlation in the overlap) is written with the field; a poor "
    "match prints a warning, a clearly failed one exits with status 3 and writes nothing (unless "
    "--accept-poor-alignment).\n\n"
    "Examples:\n\n"
    "  fr-align center/temporal_average.npy day2/temporal_average.npy -o day2/w_to_reference.npz\n\n"
    "  fr-align --config session.toml        # every recording of the session"
)


def _warn(inv, summary) -> None:
    if summary.get("warning"):
        info(inv.prog, summary["warning"])


def run(inv):
    from frkit import tools

    v, cfg = inv.values, inv.config
    if v.reference is None and v.moving is None:
        if cfg is None:
            raise OptionError("give REFERENCE_AVERAGE MOVING_AVERAGE, or --config session.toml")
        from frkit.session.stages import align_all  # local: a pair of averages needs no session machinery

        summaries = align_all(cfg, v, warn=lambda s: _warn(inv, s))
        inv.report(f"{len(summaries)} recordings aligned; largest mean displacement "
                   f"{max(s['mean_displacement'] for s in summaries):.2f} px")
        return
    if v.reference is None or v.moving is None:
        raise OptionError("give both REFERENCE_AVERAGE and MOVING_AVERAGE")
    summary = tools.align(v.reference, v.moving, v.output, v)
    _warn(inv, summary)
    if cfg is not None:
        from pathlib import Path

        from frkit.session import status

        status.mark_done(Path(summary["output"]).parent, "stage2")
    inv.report(f"mean displacement {summary['mean_displacement']:.2f} px, correlation "
               f"{summary['alignment_correlation']:.2f} -> {summary['output']}")


main = tool_main(PROG, HELP, options.ALIGN, run, skip_teardown=True)  # nothing left running: no threads, files closed

if __name__ == "__main__":
    main()
