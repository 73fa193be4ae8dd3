"""fr-qc: quality control of a motion correction (one folder) or of a whole session (--config)."""

from frkit import options
from frkit.cli.harness import tool_main
from frkit.errors import OptionError

PROG = "fr-qc"
HELP = (
    "Quality control you can look at. For a stage-1 folder: per-frame correlation with the corrected mean "
    "(raw and corrected), crispness of the mean images, residual motion measured on the corrected video, "
    "displacement statistics and bad frames (blank, saturated, torn, jumps). Writes qc.json (summary and a "
    "one-word verdict per check), qc_frames.csv (one row per frame) and qc.png.\n\n"
    "With --config session.toml (and no folder): the QC of every recording, then final_results/report.html "
    "(one self-contained page), session_qc.png and session_qc.json.\n\n"
    "Examples:\n\n"
    "  fr-qc out/rec_1\n\n"
    "  fr-qc pyflowreg_out/rec_1 --input raw/rec_1.tif -o qc/rec_1\n\n"
    "  fr-qc --config session.toml"
)


def run(inv):
    v, cfg = inv.values, inv.config
    if v.stage1 is not None:
        return _recording(inv)
    if cfg is None:
        raise OptionError("give a stage-1 folder, or --config session.toml for the session report")
    if v.input is not None:
        raise OptionError("--input goes with a stage-1 folder, not with --config alone")
    from frkit.qc.session import session_report

    with inv.progress("fr-qc") as progress:
        summary = session_report(cfg, v, progress)
    inv.report(summary["headline"] + f" -> {summary['report']}")


def _recording(inv):
    from frkit.pipelining import keep_freed_memory
    from frkit.qc.drawing import FigureProcess

    # started first: the figure's process imports matplotlib while this one imports the rest and measures
    with FigureProcess() as drawer:
        from frkit import tools

        keep_freed_memory()  # the pass allocates and frees batch-sized arrays over and over
        v = inv.values
        with inv.progress("fr-qc") as progress:
            s = tools.qc(v.stage1, v.output, v, progress, drawer)
    c = s["correlation"]
    inv.report(f"correlation {c['raw']['mean']:.3f} -> {c['corrected']['mean']:.3f}, crispness "
               f"{s['crispness']['raw']:.4g} -> {s['crispness']['corrected']:.4g}, residual motion "
               f"{s['residual_motion_px']['median']:.2f} px, {s['bad_frames']['count']} bad frame(s) -> "
               f"{s['output']}")


main = tool_main(PROG, HELP, options.QC, run, skip_teardown=True)

if __name__ == "__main__":
    main()
