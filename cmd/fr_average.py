"""fr-average: temporal average of a compensated video."""

from frkit import options
from frkit.cli.harness import tool_main
from frkit.errors import OptionError

PROG = "fr-average"
HELP = (
    "Average a compensated video over time into temporal_average.npy ((H, W, C) float64).\n\n"
    "Reads frkit's, pyflowreg's or MATLAB's compensated.HDF5 (or any video fr-compensate reads), "
    "streaming in batches.\n\n"
    "Example:\n\n  fr-average out/rec/compensated.HDF5   # writes out/rec/temporal_average.npy"
)


def run(inv):
    from pathlib import Path

    from frkit import tools
    from frkit.session import status

    v = inv.values
    if v.compensated is None:
        raise OptionError("missing COMPENSATED (a video or a stage-1 folder)")
    summary = tools.average(v.compensated, v.output, v)
    if inv.config is not None:  # a session run: the video's folder has finished stage 1
        status.mark_done(tools.resolve_video(v.compensated).parent, "stage1")
    inv.report(f"{summary['frames']} frames -> {Path(summary['output'])}")


main = tool_main(PROG, HELP, options.AVERAGE, run)

if __name__ == "__main__":
    main()
