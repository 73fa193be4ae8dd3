"""fr-compensate: Flow-Registration motion correction of one recording."""

from frkit import options
from frkit.cli.harness import tool_main
from frkit.errors import OptionError

PROG = "fr-compensate"
HELP = (
    "Correct the motion inside one recording with variational optical flow (Flow-Registration).\n\n"
    "Writes to OUTDIR: compensated.HDF5 (datasets ch1..chN, (T, H, W)), idx.hdf (dataset idx, uint8 0/255), "
    "statistics.npz, reference_frame.npy, compensate.json and, with --save-w, w.h5 (u, v). --output-format "
    "tiff|suite2p|caiman|nwb also writes the corrected video for the next tool (Fiji, suite2p, CaImAn, NWB/DANDI)."
    "\n\n"
    "Examples:\n\n"
    "  fr-compensate rec.tif -o out/rec --quality balanced\n\n"
    "  fr-compensate rec.h5 -o out/rec --dataset green --dataset red --weight 0.8,0.2\n\n"
    "  fr-compensate movie.h5 -o out/movie --axes HWT --reference-frames 0:200\n\n"
    "  fr-compensate rec.tif -o out/rec --output-format suite2p --frame-rate 30\n\n"
    "  fr-compensate --config session.toml --array-task   # one recording of a session, by array task id\n\n"
    "  fr-compensate rec.h5 -o out/rec --reference-only; fr-compensate rec.h5 -o out/rec --frames 0:4000; ...;\n"
    "  python -m frkit.session join out/rec   # time chunks, same files as a whole run"
)


def run(inv):
    from frkit import tools
    from frkit.session.stages import compensate_array_task

    v, cfg = inv.values, inv.config
    with inv.progress("compensating") as update:
        if v.array_task:
            if cfg is None or v.input is not None:
                raise OptionError("--array-task needs --config session.toml and no INPUT")
            output, summary = compensate_array_task(cfg, v, update)
        else:
            if v.input is None:
                raise OptionError("missing INPUT (or --config session.toml --array-task)")
            if v.output is None and cfg is None:
                raise OptionError("missing -o/--output OUTDIR")
            output = v.output or cfg.recording_dir(v.input)
            summary = tools.compensate(v.input, output, v, update)
    if "frames_per_s" not in summary:  # a time chunk or the shared reference (frkit.chunks)
        what = "frames {}:{}".format(*summary["frames"]) if "frames" in summary else "shared reference"
        inv.report(f"{what} -> {output}/chunks ({summary['elapsed_s']:.1f} s); when all chunks are done: "
                   f"python -m frkit.session join {output}")
        return
    t, h, w, c = summary["shape"]
    inv.report(f"{t} frames {h}x{w}x{c} -> {output}  ({summary['frames_per_s']:.1f} frames/s, "
               f"mean displacement {summary['mean_displacement']:.2f} px, {summary['engine']})")


main = tool_main(PROG, HELP, options.COMPENSATE, run)

if __name__ == "__main__":
    main()
