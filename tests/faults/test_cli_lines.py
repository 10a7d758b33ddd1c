"""What the command line shows for a fault: one plain line, whatever the command."""
from __future__ import annotations

import pytest

from .conftest import assert_user_error


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


def test_unknown_option_cli(case):
    # a command line the parser refuses: click's usage message and exit code 2 (bugs are 70)
    res = case.run("run", "spec.yaml", "--fast")
    assert res.code == 2 and "--fast" in res.stderr and "Traceback" not in res.stderr
    case.check()
