"""fr-reproject: warp a compensated video into the session's reference grid."""

from frkit import options
from frkit.cli.harness import tool_main
from frkit.errors import OptionError

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


def run(inv):
    from frkit import tools
    from frkit.session.stages import reproject_all, session_files

    v, cfg = inv.values, inv.config
    with inv.progress("reprojecting") as update:
        if v.compensated is None and v.w_to_reference is None:
            if cfg is None:
                raise OptionError("give COMPENSATED W_TO_REFERENCE, or --config session.toml")
            summaries = reproject_all(cfg, v, update)
            inv.report(f"{len(summaries)} videos -> {cfg.final_dir}")
            return
        if v.compensated is None or v.w_to_reference is None:
            raise OptionError("give both COMPENSATED and W_TO_REFERENCE")
        output = v.output
        if cfg is not None:  # the session gives the center's average and the output folder
            files, center = session_files(cfg)
            v = v.replace(reference_average=v.reference_average or str(files[center].average))
            if output is None:
                output = cfg.final_dir
                output.mkdir(parents=True, exist_ok=True)
        summary = tools.reproject(v.compensated, v.w_to_reference, output, v, update)
    inv.report(f"{summary['frames']} frames -> {summary['output']}")


main = tool_main(PROG, HELP, options.REPROJECT, run)

if __name__ == "__main__":
    main()
