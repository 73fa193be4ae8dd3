"""frkit.options: one declaration per parameter, and everything that derives from it."""

import re
from pathlib import Path

import pytest

from frkit import options
from frkit.errors import OptionError
from frkit.options import ALIGN, AVERAGE, COMPENSATE, MASK, QC, REPROJECT, SESSION, resolve
from frkit.session.config import KNOWN_KEYS, config_from_mapping

README = Path(__file__).resolve().parents[1] / "README.md"
TOOLS = {"fr-compensate": COMPENSATE, "fr-average": AVERAGE, "fr-align": ALIGN, "fr-mask": MASK,
         "fr-reproject": REPROJECT, "fr-qc": QC}


def test_names_flags_and_keys_are_unique_within_a_tool():
    for tool, params in TOOLS.items():
        names = [p.name for p in params]
        flags = [f for p in params for f in p.flags if not p.argument]
        assert len(names) == len(set(names)), tool
        assert len(flags) == len(set(flags)), tool
    owners = {}
    for group in (COMPENSATE, ALIGN, REPROJECT, QC, SESSION, options.STAGE1_TABLE):
        for p in group:
            for key in p.keys:
                assert owners.setdefault(key, p.name) == p.name, key


def test_compensate_and_align_share_the_flow_method_declarations():
    comp = {p.name: p for p in COMPENSATE}
    for p in ALIGN:
        if p.name in comp and p.name not in ("output", "config", "device", "quiet"):
            shared = comp[p.name]
            assert p.panel == shared.panel and shared.flags[0] in p.flags, p.name  # one spelling, one meaning
            if p.name in ("alpha", "iterations"):  # the same bounds; "auto" is each tool's own design
                assert (p.kind.gt, p.kind.ge, p.kind.integer, shared.kind.auto, p.kind.auto) == \
                    (shared.kind.gt, shared.kind.ge, shared.kind.integer, p.name == "alpha", True)
            elif p.name == "weight":  # the same parsing; fr-align's default is equal weights for any channel count
                assert p.kind == shared.kind and p.default is None
            else:
                assert (p.kind, p.help) == (shared.kind, shared.help), p.name


def test_one_name_one_meaning_across_tools():
    by_flag = {}
    for tool, params in TOOLS.items():
        for p in params:
            for f in p.flags:
                if not p.argument:
                    by_flag.setdefault(f, set()).add(p.name)
    assert all(len(names) == 1 for names in by_flag.values()), by_flag
    assert "--cc-up" in {f for p in COMPENSATE for f in p.flags}  # the old spelling stays as an alias


@pytest.mark.parametrize("tool", list(TOOLS))
def test_readme_option_tables_are_generated_from_the_declarations(tool):
    text = README.read_text()
    start = text.index(f"<!-- options: {tool} -->")
    end = text.index("<!-- end -->", start)
    assert text[start:end].split("\n", 1)[1].strip() == options.markdown_table(TOOLS[tool]).strip(), \
        "regenerate with: python -m frkit.options README.md"


def test_equivalent_spellings_normalize_to_one_value(tmp_path):
    e = config_from_mapping({"root": ".", "align_output_format": "tiff"}, tmp_path / "s.toml")
    assert e.stage_parameters(3) == config_from_mapping({"root": "."}, tmp_path / "s.toml").stage_parameters(3)
    a = config_from_mapping({"root": ".", "flow_options": {"alpha": 2}}, tmp_path / "s.toml")
    b = config_from_mapping({"root": ".", "of_options_override": {"alpha": [2, 2.0]}}, tmp_path / "s.toml")
    c = config_from_mapping({"root": ".", "flow_options": {"quality_setting": "quality", "sigma": [1, 1, 0.1]}},
                            tmp_path / "s.toml")
    d = config_from_mapping({"root": "."}, tmp_path / "s.toml")
    for stage in (1, 2, 3):
        assert a.stage_parameters(stage) == b.stage_parameters(stage)
        assert c.stage_parameters(stage) == d.stage_parameters(stage)  # the defaults, spelled out
    assert a.values(COMPENSATE).alpha == (2.0, 2.0)
    assert resolve(COMPENSATE, flags={"alpha": "2"}).record() == resolve(COMPENSATE, alpha=[2, 2]).record()


def test_a_bad_value_names_where_it_came_from(tmp_path):
    with pytest.raises(OptionError, match=r"^--alpha: must be > 0, not -1"):
        resolve(ALIGN, flags={"alpha": "-1"})
    with pytest.raises(OptionError, match=r"^flow_options.alpha in .*s.toml: must be > 0, not 0$"):
        config_from_mapping({"root": ".", "flow_options": {"alpha": 0}}, tmp_path / "s.toml")
    with pytest.raises(OptionError, match=r"^alpha_between in .*s.toml: must be > 0"):
        config_from_mapping({"root": ".", "alpha_between": -3}, tmp_path / "s.toml")
    with pytest.raises(OptionError, match=r"^--sigma-smooth: must be >= 0, not -3"):
        resolve(ALIGN, flags={"sigma_smooth": "-3"})


def test_flags_win_over_the_config_which_wins_over_defaults(tmp_path):
    cfg = config_from_mapping({"root": ".", "stage1_quality_setting": "fast", "n_workers": 3,
                               "flow_options": {"iterations": 7}}, tmp_path / "s.toml")
    v = resolve(COMPENSATE, cfg, flags={"iterations": "9"})
    assert (v.quality, v.workers, v.iterations, v.eta) == ("fast", 3, 9, 0.8)


@pytest.mark.parametrize("param", [p for group in (COMPENSATE, ALIGN, REPROJECT, SESSION) for p in group],
                         ids=lambda p: p.name)
def test_every_default_is_a_valid_normalized_value(param):
    if param.default is None or isinstance(param.kind, options.Table):
        return
    assert param.parse(param.default, "default") == param.default


def test_every_config_key_is_known_to_the_session_parser():
    for group in (COMPENSATE, ALIGN, REPROJECT, SESSION):
        for p in group:
            for key in p.keys:
                assert KNOWN_KEYS[key].name == p.name


def test_markdown_table_lists_every_flag():
    table = options.markdown_table(COMPENSATE)
    for p in COMPENSATE:
        if not p.argument:
            assert f"`{p.flag}`" in table
    assert re.search(r"\| `--alpha` \| auto \| `flow_options.alpha` \|", table)
