"""What the command line shows for a fault: one plain line, whatever the command."""
from __future__ import annotations

import pytest

from .conftest import assert_user_error, gap


def test_error_line_is_plain_text_cli(case):
    res = case.run("run", "absent.yaml")
    line = assert_user_error(res, file="absent.yaml")
    assert line.startswith("error: "), f"console markup shown as text: {line}"


@pytest.mark.parametrize("content", [b"\x00\x01\x02binary", b"a,b\n1\n"], ids=["binary", "ragged"])
def test_columns_command_on_a_bad_file_cli(case, content):
    case.write("table.csv", content)
    res = case.run("columns", "table.csv")
    assert_user_error(res, file="table.csv")
    case.check()


@gap("a usage error (an unknown option) exits 2, the code the contract keeps for segmint's bugs, "
     "with click's multi-line usage box on stderr")
def test_unknown_option_cli(case):
    res = case.run("run", "spec.yaml", "--fast")
    assert_user_error(res, contains=("--fast",))
    case.check()
