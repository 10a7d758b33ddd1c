"""segmint.recommend.interactions: the Amazon reviews TSV, MovieLens u.data, any table, purchases
as implicit feedback, the lab's filters, and the rules for bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segmint.errors import InputError
from segmint.recommend.interactions import (
    Interactions,
    filter_long_tail,
    from_transactions,
    read_ratings,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "amazon_reviews_sample.tsv"
PACKAGED_RETAIL = Path(__file__).resolve().parents[2] / "src" / "segmint" / "data" / "online_retail.parquet"


def _pairs(inter: Interactions) -> dict[tuple[str, str], float]:
    f = inter.frame
    return {(inter.users[u], inter.items[i]): r for u, i, r in zip(f["user"], f["item"], f["rating"],
                                                                    strict=True)}


# --------------------------------------------------------------------------- Amazon reviews TSV

def test_amazon_fixture_counts_and_rules():
    inter = read_ratings(FIXTURE)
    # 40 data lines: 1 exact duplicate, 3 pairs rated twice with different ratings -> 36 pairs
    assert len(inter.frame) == 36
    assert (inter.n_users, inter.n_items) == (6, 8)
    assert list(inter.frame.columns) == ["user", "item", "rating", "timestamp"]
    assert inter.frame.dtypes.astype(str).tolist() == ["int64", "int64", "float64", "datetime64[ns]"]
    assert not inter.frame.duplicated(["user", "item"]).any()
    assert inter.kind == "explicit" and inter.scale == (1.0, 5.0)
    notes = "\n".join(inter.notes)
    assert "1 exact duplicate row dropped" in notes
    assert "3 (user, item) pairs rated more than once with different ratings: kept the latest" in notes
    assert "1 user has a single rating" in notes
    pairs = _pairs(inter)
    assert pairs[("50002", "B00AAA0001")] == 1.0  # re-rated later (2015-12-31): the later wins
    assert pairs[("50003", "B00AAA0002")] == 5.0  # re-rated with an earlier date: the first stays
    assert pairs[("50004", "B00AAA0005")] == 1.0  # same day: the last in file order wins
    assert pairs[("50006", "B00AAA0003")] == 4.0  # the single-rating customer is kept


def test_amazon_titles_keep_double_quotes_read_with_quoting_off():
    inter = read_ratings(FIXTURE)
    assert inter.titles is not None
    assert inter.titles["B00AAA0001"] == 'Sherlock Holmes: The "Lost" Episode'
    assert inter.titles["B00AAA0002"] == 'Director\'s 12" Cut'  # an unbalanced quote
    assert len(inter.titles) == 8


def test_codes_follow_sorted_ids_whatever_the_row_order(tmp_path):
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    shuffled = tmp_path / "reviews.tsv"
    rng = np.random.default_rng(3)
    body = [lines[i] for i in rng.permutation(np.arange(1, len(lines)))]
    shuffled.write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    a, b = read_ratings(FIXTURE), read_ratings(shuffled, duplicates="mean")
    assert list(a.users) == list(b.users) == [str(50000 + c) for c in range(1, 7)]
    assert list(a.items) == list(b.items) == [f"B00AAA000{p}" for p in range(1, 9)]


def test_duplicates_mean_and_error():
    mean = _pairs(read_ratings(FIXTURE, duplicates="mean"))
    assert mean[("50002", "B00AAA0001")] == pytest.approx((2 + 1) / 2)
    assert mean[("50003", "B00AAA0002")] == pytest.approx((5 + 2) / 2)
    with pytest.raises(InputError) as err:
        read_ratings(FIXTURE, duplicates="error")
    # the first conflicting re-rating in file order is line 39 (header = line 1)
    assert (err.value.file, err.value.column, err.value.row) == (str(FIXTURE), "star_rating", 39)
    assert "50002" in err.value.message and "B00AAA0001" in err.value.message
    with pytest.raises(InputError, match="duplicates must be one of"):
        read_ratings(FIXTURE, duplicates="first")


def test_rating_outside_scale_names_file_column_and_line(tmp_path):
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    fields = lines[7].split("\t")
    fields[7] = "6"
    lines[7] = "\t".join(fields)
    bad = tmp_path / "bad.tsv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_ratings(bad)
    assert (err.value.file, err.value.column, err.value.row) == (str(bad), "star_rating", 8)
    assert "outside the declared scale 1..5" in str(err.value)
    assert len(read_ratings(bad, scale=(1, 10)).frame) == 36  # a wider declared scale takes it


def test_missing_user_item_or_rating_names_the_line(tmp_path):
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    for column, index in (("customer_id", 1), ("product_id", 3), ("star_rating", 7)):
        edited = list(lines)
        fields = edited[12].split("\t")
        fields[index] = ""
        edited[12] = "\t".join(fields)
        bad = tmp_path / f"no_{column}.tsv"
        bad.write_text("\n".join(edited) + "\n", encoding="utf-8")
        with pytest.raises(InputError) as err:
            read_ratings(bad)
        assert (err.value.column, err.value.row) == (column, 13)
        assert "missing" in err.value.message


def test_a_line_with_too_many_fields_is_an_error_with_its_line(tmp_path):
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    lines[20] = lines[20] + "\textra"
    bad = tmp_path / "extra.tsv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    lines[30] = "\t".join(lines[30].split("\t")[:10])  # a short line too
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_ratings(bad)
    assert err.value.row == 21 and err.value.file == str(bad)
    assert "2 lines are so; bad_lines='skip' skips them" in err.value.message
    skipped = read_ratings(bad, bad_lines="skip")
    assert "2 lines without 15 fields skipped (first: line 21)" in skipped.notes
    assert len(skipped.frame) == 34  # neither line's pair was rated twice
    # line numbers after a skipped line still point into the file
    lines[35] = lines[35].replace("\t2015-", "\t2015-13-")
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_ratings(bad, bad_lines="skip")
    assert (err.value.column, err.value.row) == ("review_date", 36)


def test_amazon_header_in_a_dataframe():
    frame = pd.read_csv(FIXTURE, sep="\t", quoting=3, dtype=str)
    inter = read_ratings(frame)
    assert len(inter.frame) == 36 and inter.titles is not None


# --------------------------------------------------------------------------- any table

def test_table_with_column_mapping_and_unix_timestamps():
    table = pd.DataFrame({"who": [3, 1, 1, 2], "what": [10, 10, 9, 9], "stars": [2.5, 4, 5, 1],
                          "ts": [0, 86400, 2 * 86400, 3 * 86400], "name": ["ten", "ten", "nine", None]})
    inter = read_ratings(table, columns={"user": "who", "item": "what", "rating": "stars",
                                         "timestamp": "ts", "title": "name"})
    assert list(inter.users) == ["1", "2", "3"] and list(inter.items) == ["9", "10"]  # numeric order
    assert inter.frame["timestamp"].tolist() == list(pd.to_datetime(["1970-01-01", "1970-01-02",
                                                                      "1970-01-03", "1970-01-04"]))
    assert inter.titles.to_dict() == {"9": "nine", "10": "ten"}
    m = inter.matrix().toarray()
    assert m.tolist() == [[5.0, 4.0], [1.0, 0.0], [0.0, 2.5]]
    assert inter.matrix("binary").sum() == 4


def test_table_file_csv_and_missing_column(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\nu1,i1,3\nu2,i1,\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_ratings(path)
    assert (err.value.file, err.value.column, err.value.row) == (str(path), "rating", 3)
    with pytest.raises(InputError, match="the item column 'sku' is absent"):
        read_ratings(path, columns={"item": "sku"})


def test_dataframe_rows_are_numbered_from_one():
    with pytest.raises(InputError) as err:
        read_ratings(pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [3, 0]}))
    assert (err.value.file, err.value.column, err.value.row) == ("DataFrame", "rating", 2)
    with pytest.raises(InputError, match="not a number"):
        read_ratings(pd.DataFrame({"user": [1], "item": [1], "rating": ["five"]}))


# --------------------------------------------------------------------------- MovieLens

def test_movielens_u_data_and_titles(shared_data):
    path = shared_data / "movielens-100k" / "u.data"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    inter = read_ratings(path)
    assert (len(inter.frame), inter.n_users, inter.n_items) == (100_000, 943, 1_682)
    # numeric ids: code = id - 1; rows in file order (first line: 196 242 3 881250949)
    assert list(inter.users[:3]) == ["1", "2", "3"]
    first = inter.frame.iloc[0]
    assert (first["user"], first["item"], first["rating"]) == (195, 241, 3.0)
    assert first["timestamp"] == pd.Timestamp(881250949, unit="s")
    assert inter.titles["1"] == "Toy Story (1995)"
    assert inter.titles["1682"] == "Scream of Stone (Schrei aus Stein) (1991)"
    assert inter.frame["user"].value_counts().min() == 20  # every user rated >= 20 movies


def test_filter_long_tail_as_the_lab_does_on_movielens(shared_data):
    path = shared_data / "movielens-100k" / "u.data"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    inter = read_ratings(path)
    raw = pd.read_csv(path, sep="\t", header=None, names=["u", "i", "r", "t"])
    users, items = raw["u"].value_counts(), raw["i"].value_counts()
    expected = raw[raw["u"].isin(users[users >= 50].index) & raw["i"].isin(items[items >= 100].index)]
    kept = filter_long_tail(inter, min_user=50, min_item=100)
    assert len(kept.frame) == len(expected)
    assert kept.n_users == expected["u"].nunique() and kept.n_items == expected["i"].nunique()
    assert kept.frame["user"].max() == kept.n_users - 1  # re-indexed codes
    assert set(kept.titles.index) == set(kept.items)
    core = filter_long_tail(inter, min_user=50, min_item=100, iterate=True)
    assert core.frame.groupby("user").size().min() >= 50
    assert core.frame.groupby("item").size().min() >= 100
    assert len(core.frame) <= len(kept.frame)


def test_filter_long_tail_by_hand():
    inter = read_ratings(pd.DataFrame({"user": ["a", "a", "a", "b", "b", "c"],
                                       "item": ["x", "y", "z", "x", "y", "x"], "rating": 3}))
    one = filter_long_tail(inter, min_user=2, min_item=2)
    # counts on the input: a 3, b 2, c 1; x 3, y 2, z 1 -> (a,x) (a,y) (b,x) (b,y)
    assert sorted(_pairs(one)) == [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")]
    strict = filter_long_tail(inter, min_user=3, min_item=2)
    # one pass: only a has 3 ratings; a's x and y kept (x, y have >= 2 on the input)
    assert sorted(_pairs(strict)) == [("a", "x"), ("a", "y")]
    # repeated: x and y now have 1 rating each -> nothing left
    with pytest.raises(InputError, match="no rating is left"):
        filter_long_tail(inter, min_user=3, min_item=2, iterate=True)


# --------------------------------------------------------------------------- purchases

def test_from_transactions_on_online_retail_matches_pandas():
    lines = pd.read_parquet(PACKAGED_RETAIL)
    inter = from_transactions(lines, customer="CustomerID", product="StockCode", quantity="Quantity",
                              date="InvoiceDate", invoice="InvoiceNo", title="Description")
    # the same computation written plainly
    known = lines[lines["CustomerID"].notna()]
    bought = known[(known["Quantity"] > 0) & ~known["InvoiceNo"].astype(str).str.startswith("C")]
    expected = bought.groupby([bought["CustomerID"].astype("int64").astype(str), "StockCode"]).agg(
        orders=("InvoiceNo", "nunique"), last=("InvoiceDate", "max"))
    assert len(inter.frame) == len(expected)
    assert inter.n_users == bought["CustomerID"].nunique()
    assert inter.n_items == bought["StockCode"].nunique()
    f = inter.frame
    got = pd.DataFrame({"customer": inter.users[f["user"]], "product": inter.items[f["item"]],
                        "orders": f["rating"].to_numpy(), "last": f["timestamp"].to_numpy()})
    got = got.set_index(["customer", "product"]).sort_index()
    expected = expected.sort_index()
    assert got["orders"].to_numpy().tolist() == expected["orders"].astype(float).tolist()
    assert (got["last"].to_numpy() == expected["last"].to_numpy().astype("datetime64[ns]")).all()
    assert inter.kind == "implicit" and inter.scale is None
    notes = "\n".join(inter.notes)
    assert f"{lines['CustomerID'].isna().sum():,} lines without a customer dropped" in notes
    assert f"{len(known) - len(bought):,} return or cancellation lines excluded" in notes
    assert inter.matrix("binary").sum() == len(expected)
    assert inter.matrix().sum() == expected["orders"].sum()
    assert inter.titles["85123A"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert list(inter.users) == sorted(inter.users, key=int)


def test_from_transactions_without_invoice_counts_purchase_dates():
    lines = pd.DataFrame({"c": ["u", "u", "u", "v"], "p": ["a", "a", "a", "a"], "q": [1, 1, 0, 2],
                          "d": ["2020-01-01", "2020-01-01", "2020-01-02", "2020-01-03"]})
    inter = from_transactions(lines, customer="c", product="p", quantity="q", date="d")
    assert _pairs(inter) == {("u", "a"): 1.0, ("v", "a"): 1.0}  # the q=0 line is no purchase
    with pytest.raises(InputError) as err:
        from_transactions(lines.assign(q=[1, "x", 1, 1]), customer="c", product="p", quantity="q",
                          date="d")
    assert (err.value.column, err.value.row) == ("q", 2)
