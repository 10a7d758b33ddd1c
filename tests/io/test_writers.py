"""Atomic writers: the destination holds the old content or the new, never half of either."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from segmint.errors import SegmintError
from segmint.io import atomic_dir, write_csv_atomic, write_parquet_atomic, write_text_atomic


def _names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_parquet_round_trip_and_replace(tmp_path):
    path = tmp_path / "out" / "customers.parquet"  # the folder is created
    first = pd.DataFrame({"customer": ["17850", "14527"], "recency_days": [372, 2]})
    assert write_parquet_atomic(first, path) == path
    pd.testing.assert_frame_equal(pd.read_parquet(path), first)
    second = pd.DataFrame({"customer": ["12346"], "recency_days": [325]})
    write_parquet_atomic(second, path)
    pd.testing.assert_frame_equal(pd.read_parquet(path), second)
    assert _names(path.parent) == ["customers.parquet"]  # no temporary left


def test_write_parquet_keeps_a_meaningful_index(tmp_path):
    profile = pd.DataFrame({"size": [120, 80]}, index=pd.Index([0, 1], name="segment"))
    write_parquet_atomic(profile, tmp_path / "profile.parquet")
    assert pd.read_parquet(tmp_path / "profile.parquet").index.name == "segment"


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "customers.parquet"
    write_parquet_atomic(pd.DataFrame({"a": [1]}), path)
    before = path.read_bytes()
    unwritable = pd.DataFrame({"a": [object()]})  # Arrow cannot store a bare object
    with pytest.raises((pa.ArrowException, TypeError, ValueError)):
        write_parquet_atomic(unwritable, path)
    assert path.read_bytes() == before
    assert _names(tmp_path) == ["customers.parquet"]


def test_write_csv(tmp_path):
    path = tmp_path / "leaderboard.csv"
    board = pd.DataFrame({"algorithm": ["kmeans", "birch"], "k": [4, 5], "silhouette": [0.41, 0.38]})
    write_csv_atomic(board, path)
    assert path.read_text(encoding="utf-8") == ("algorithm,k,silhouette\n"
                                               "kmeans,4,0.41\n"
                                               "birch,5,0.38\n")
    write_csv_atomic(board.set_index("algorithm"), path)  # a named index is written
    assert path.read_text().splitlines()[:2] == ["algorithm,k,silhouette", "kmeans,4,0.41"]
    write_csv_atomic(board.set_index("algorithm"), path, index=False)
    assert path.read_text().splitlines()[:2] == ["k,silhouette", "4,0.41"]
    assert _names(tmp_path) == ["leaderboard.csv"]


def test_write_text(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("old\n")
    write_text_atomic("name: insiders\nseed: 0\n", path)
    assert path.read_text() == "name: insiders\nseed: 0\n"
    write_text_atomic("£ 10\r\n", path)  # written as given: UTF-8, no newline translation
    assert path.read_bytes() == "£ 10\r\n".encode()
    assert _names(tmp_path) == ["spec.yaml"]


def test_atomic_dir_moves_the_folder_into_place_on_success(tmp_path):
    final = tmp_path / "runs" / "run-1"
    with atomic_dir(final) as tmp:
        assert tmp.parent == final.parent and tmp.name.startswith(".run-1.tmp-")
        assert not final.exists()  # nobody sees the run until it is complete
        write_text_atomic("{}", tmp / "manifest.json")
        (tmp / "solutions").mkdir()
    assert _names(final.parent) == ["run-1"]
    assert _names(final) == ["manifest.json", "solutions"]
    assert (final / "manifest.json").read_text() == "{}"


def test_atomic_dir_leaves_nothing_on_exception(tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(RuntimeError, match="sweep failed"):
        with atomic_dir(runs / "run-1") as tmp:
            (tmp / "manifest.json").write_text("{}")
            raise RuntimeError("sweep failed")
    assert _names(runs) == []


def test_atomic_dir_leaves_nothing_on_keyboard_interrupt(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(tmp_path / "run-1") as tmp:
            (tmp / "labels.parquet").write_bytes(b"half")
            raise KeyboardInterrupt
    assert _names(tmp_path) == []


def test_atomic_dir_will_not_replace_an_existing_run_unless_asked(tmp_path):
    final = tmp_path / "run-1"
    final.mkdir()
    (final / "manifest.json").write_text("old")
    with pytest.raises(SegmintError, match="already exists"):
        with atomic_dir(final):
            pytest.fail("the block must not run")
    assert (final / "manifest.json").read_text() == "old"

    with pytest.raises(ValueError):
        with atomic_dir(final, overwrite=True) as tmp:
            (tmp / "manifest.json").write_text("new")
            raise ValueError("bad spec")
    assert (final / "manifest.json").read_text() == "old"  # a failed run keeps the old one

    with atomic_dir(final, overwrite=True) as tmp:
        (tmp / "manifest.json").write_text("new")
    assert _names(final) == ["manifest.json"]
    assert (final / "manifest.json").read_text() == "new"
    assert _names(tmp_path) == ["run-1"]  # neither the temporary nor the old folder is left
