"""fr-apply-flow: apply a saved per-frame correction to another recording of the same frames."""

from frkit import options
from frkit.cli.harness import tool_main

PROG = "fr-apply-flow"
HELP = (
    "Warp every frame of VIDEO by its flow field from FLOW (w.h5 of fr-compensate --save-w, pyflowreg's w.h5 or "
    "MATLAB's w.hdf): register on one channel, then correct another channel, or a raw or differently filtered "
    "copy, with exactly the same motion.\n\n"
    "Interpolation, integer rounding and the valid-pixel rule are fr-compensate's; out-of-view pixels take "
    "--reference (default: VIDEO's mean over frames 50:500 warped by their flows). VIDEO must have FLOW's frame "
    "count and frame size.\n\n"
    "Examples:\n\n"
    "  fr-compensate rec_red.tif -o out/red --save-w\n\n"
    "  fr-apply-flow rec_green.tif out/red/w.h5 -o out/green.h5\n\n"
    "  fr-apply-flow rec.h5 out/red/w.h5 --dataset green -o out/green.h5 --output-format suite2p"
)


def run(inv):
    from frkit import tools

    v = inv.values
    with inv.progress("applying flow") as update:
        summary = tools.apply_flow(v.video, v.flow, v.output, v, update)
    t, h, w, c = summary["shape"]
    inv.report(f"{t} frames {h}x{w}x{c} -> {summary['output']}  (valid {100 * summary['valid_fraction']:.1f} %, "
               f"mean displacement {summary['mean_displacement']:.2f} px)")


main = tool_main(PROG, HELP, options.APPLY_FLOW, run)

if __name__ == "__main__":
    main()
