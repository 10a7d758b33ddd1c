"""Scheduled re-runs (segmint.deploy.schedule): two months of Online Retail, re-fitted and
scored, with the migration between them and the history they leave."""
from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from segmint.cli import app
from segmint.deploy.migration import LAPSED, NEW_CUSTOMERS
from segmint.deploy.models import ModelStore
from segmint.deploy.schedule import history, rerun
from segmint.errors import ModelError

BUNDLED = Path(str(resources.files("segmint") / "data" / "online_retail.parquet"))
CUT = "2011-11-09"  # the earlier run sees the lines before this day; the later one every line


def _spec(models: Path, runs: Path, mode: str, **deploy) -> dict:
    return {"name": "retail", "recipe": {"features": "insiders"}, "output": str(runs),
            "sweep": {"scalings": ["log"],
                      "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [4]}}]},
            "select": {"stability_resamples": 2, "stability_top": 1},
            "profile": {"projections": [], "explain": False},
            "deploy": {"model": "insiders", "models": str(models), "mode": mode, **deploy}}


@pytest.fixture(scope="module")
def months(tmp_path_factory):
    """Re-fit on the earlier month, re-fit a month later, then score the later month."""
    lines = pd.read_parquet(BUNDLED)
    earlier_lines = lines[lines["InvoiceDate"] < CUT]
    root = tmp_path_factory.mktemp("schedule")
    models, runs = root / "models", root / "runs"
    first = rerun(_spec(models, runs, "refit"), earlier_lines)
    second = rerun(_spec(models, runs, "refit"), lines)
    scored = rerun(_spec(models, runs, "score"), lines)
    return {"first": first, "second": second, "scored": scored, "models": models, "runs": runs,
            "lines": lines}


def _mean_revenue_by_segment(run) -> pd.Series:
    """Mean gross revenue per segment of a run's recommended solution, from its customer
    table and labels (not from its profile)."""
    customers = run.customers()
    labels = run.solution().labels().set_index("customer")["segment"]
    labels.index = labels.index.astype(str)
    revenue = customers["gross_revenue"]
    revenue.index = revenue.index.astype(str)
    return revenue.groupby(labels.loc[revenue.index].to_numpy()).mean().drop(index=-1,
                                                                              errors="ignore")


def test_the_first_refit_publishes_version_1_without_a_migration(months):
    first = months["first"]
    assert first.model.version == 1 and first.migration is None
    assert (first.folder / "scores.parquet").is_file()
    labels = first.run.solution().labels()
    assert len(first.scores) == len(labels)


def test_a_month_later_the_migration_rows_add_up_to_the_earlier_segment_sizes(months):
    first, second = months["first"], months["second"]
    counts = second.migration.counts
    earlier_sizes = first.scores.groupby("name").size()  # by name, counted again
    rows = counts.drop(index=NEW_CUSTOMERS).sum(axis=1)
    assert rows.to_dict() == {k: int(v) for k, v in earlier_sizes.items()}
    # also the first run's own labels, counted independently
    own = first.run.solution().labels()["segment"].value_counts()
    assert sorted(rows.to_numpy().tolist()) == sorted(own.to_numpy().tolist())
    # columns: the later segments (a new one's label says so), by their published ids
    later_sizes = second.scores.groupby("segment").size()
    columns = counts.drop(columns=LAPSED).sum(axis=0)
    assert columns.to_dict() == {second.migration.later_names[int(k)]: int(v)
                                 for k, v in later_sizes.items()}
    # every line of the earlier month is in the later one: nobody lapsed; the new customers
    # are the ones whose first line is on or after the cut
    lines = months["lines"].dropna(subset=["CustomerID"])
    ids = lines["CustomerID"].astype("int64").astype(str)
    firsts = lines.groupby(ids)["InvoiceDate"].min()
    assert counts[LAPSED].sum() == 0
    # (a customer whose earlier lines the recipe's cleaning dropped is new too)
    new = set(second.migration.new_customers)
    later = set(second.scores["customer"])
    assert set(firsts[firsts >= CUT].index) & later <= new
    assert new == later - set(first.scores["customer"])
    # revenue: the later run's revenue of every later customer, counted again
    revenue = second.migration.revenue
    assert revenue.drop(columns=LAPSED).to_numpy().sum() == pytest.approx(
        second.scores["revenue"].sum(), rel=1e-12)


def test_the_insiders_keep_their_name_and_id_across_the_refit(months):
    first, second = months["first"], months["second"]
    top_first = int(_mean_revenue_by_segment(first.run).idxmax())
    name_first = first.scores.loc[first.scores["segment"] == top_first, "name"].iloc[0]
    # the second run's top-revenue segment, in its own ids, then as published
    top_second_own = int(_mean_revenue_by_segment(second.run).idxmax())
    published = second.model.info["relabel"]
    top_second = int(published.get(str(top_second_own), top_second_own))
    assert top_second == top_first
    assert second.scores.loc[second.scores["segment"] == top_second, "name"].unique().tolist() == \
        [name_first]
    # and the model scores them so: the published v2 gives the same segment as the run
    again = second.model.score(second.run.customers().reset_index())
    assert (again.set_index("customer")["segment"]
            == second.scores.set_index("customer").loc[again["customer"], "segment"].to_numpy()).all()
    pairs = second.migration.match.pairs
    insiders = pairs[pairs["earlier_name"] == name_first]
    assert len(insiders) == 1 and insiders["score"].iloc[0] > 0.5  # Jaccard of the members


def test_scoring_with_the_published_model_keeps_everyone_where_the_refit_put_them(months):
    second, scored = months["second"], months["scored"]
    assert scored.model.version == 2 and scored.run is None
    counts = scored.migration.counts
    off_diagonal = counts.to_numpy().sum() - np.trace(counts.drop(index=NEW_CUSTOMERS,
                                                                  columns=LAPSED).to_numpy())
    assert off_diagonal == 0
    assert len(scored.scores) == len(second.scores)
    # the model's latest known segment of each customer is this re-run's
    latest = ModelStore(months["models"]).get("insiders").assignments()
    pd.testing.assert_frame_equal(latest.reset_index(drop=True),
                                  scored.scores[["customer", "segment", "name"]].reset_index(drop=True))
    found = history(months["models"], "insiders")
    assert found["mode"].tolist() == ["refit", "refit", "score"]
    assert found["version"].tolist() == [1, 2, 2]


def test_scoring_before_anything_is_published_says_what_to_do(tmp_path):
    with pytest.raises(ModelError, match="no published model 'insiders' to score with"):
        rerun(_spec(tmp_path / "models", tmp_path / "runs", "score"), BUNDLED)


def test_a_scheduled_run_exports_its_scores_from_the_command_line(months, tmp_path, monkeypatch):
    database = tmp_path / "crm.db"
    monkeypatch.setenv("CRM_DB", str(database))
    lines = months["lines"]
    source = tmp_path / "lines.parquet"
    lines.to_parquet(source)
    spec = _spec(months["models"], months["runs"], "score",
                 export={"url": "sqlite:///${CRM_DB}", "table": "segments", "mode": "replace"})
    spec["source"] = {"path": str(source)}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 0, result.output
    assert "insiders v2" in result.output and "exported" in result.output
    assert "previous segment (rows)" in result.output  # the transition matrix is printed
    with sqlite3.connect(database) as con:
        table = pd.read_sql("SELECT customer, segment, name, model_version FROM segments", con)
    expected = months["scored"].scores
    assert len(table) == len(expected)
    merged = table.merge(expected, on="customer", suffixes=("", "_expected"))
    assert (merged["segment"] == merged["segment_expected"]).all()
    assert set(table["model_version"]) == {"insiders v2"}
    result = CliRunner().invoke(app, ["models", "history", "insiders", "--models",
                                      str(months["models"])])
    assert result.exit_code == 0 and result.output.count("score") >= 2


def test_the_refits_report_shows_who_moved_as_the_migration_counts(months):
    import json
    import re

    second = months["second"]
    counts = second.migration.counts
    page = second.run.report_path.read_text(encoding="utf-8")
    assert (second.run.path / "migration" / "counts.parquet").is_file()
    match = re.search(r'Plotly\.newPlot\(\s*"migration-matrix",\s*(\[.*?\]),\s*\{', page, re.S)
    trace = json.loads(match.group(1))[0]
    assert trace["y"] == [str(r) for r in counts.index]
    assert trace["x"] == [str(c) for c in counts.columns]
    # every cell says its count and its share of the row, counted again here
    for i, row in enumerate(counts.to_numpy()):
        for j, value in enumerate(row):
            share = value / row.sum() if row.sum() else 0.0
            assert trace["text"][i][j] == f"{int(value):,} ({share:.0%})"
    first_line = second.migration.summary().splitlines()[0]
    assert first_line in page
    # the first re-fit had nothing to compare with: no migration in its report
    first = months["first"]
    assert 'id="migration-matrix"' not in first.run.report_path.read_text(encoding="utf-8")
