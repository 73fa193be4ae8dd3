"""The README's "your microscope -> what to pass" table names, for each row, the tests that check it:
every row has tests, and every test named exists (so the table cannot drift from what is tested)."""

import re

from conftest import HERE, REPO


def _rows():
    text = (REPO / "README.md").read_text()
    table = text.split("<!-- microscopes -->")[1].split("<!-- end microscopes -->")[0]
    return [line for line in table.strip().splitlines()[2:] if line.startswith("|")]


def test_every_row_names_existing_tests():
    rows = _rows()
    assert len(rows) >= 8
    for row in rows:
        tested_by = row.rstrip("|").rsplit("|", 1)[1]
        ids = re.findall(r"`([\w.]+\.py)::(\w+)`", tested_by)
        assert ids, f"row without tests: {row[:60]}"
        for module, name in ids:
            source = (HERE / module).read_text()
            assert re.search(rf"^def {name}\(", source, re.MULTILINE), f"{module}::{name} does not exist"
