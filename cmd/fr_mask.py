"""fr-mask: the pixels valid in every recording of a session."""

from frkit import options
from frkit.cli.harness import tool_main
from frkit.errors import OptionError

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


def run(inv):
    from pathlib import Path

    from frkit import layout, tools
    from frkit.session.stages import mask_session

    v, cfg = inv.values, inv.config
    if cfg is not None and v.recording:
        raise OptionError("give --config or --recording folders, not both")
    if cfg is not None:
        summary = mask_session(cfg, v.output, v)
    elif v.recording:
        for d in map(Path, v.recording):
            if not d.is_dir():
                raise OptionError(f"{d}: not a stage-1 folder")
        if v.output is None:
            raise OptionError("missing -o/--output FOLDER")
        summary = tools.mask([layout.RecordingFiles.in_folder(d) for d in v.recording], v.output, v)
    else:
        raise OptionError("give --config session.toml or --recording folders")
    h, w = summary["shape"]
    inv.report(f"{summary['valid_pixels']} of {h * w} pixels valid in all {len(summary['per_recording_valid_fraction'])} "
               f"recordings ({100 * summary['valid_fraction']:.1f} %) -> {summary['output']}")


main = tool_main(PROG, HELP, options.MASK, run)

if __name__ == "__main__":
    main()
