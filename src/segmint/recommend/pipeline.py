"""One recommend spec -> one folder: interactions -> splits -> every model beside the baselines
-> metrics -> the chosen model on all interactions -> top-N for every customer (-> per segment).

``segmint recommend SPEC.yaml`` and :func:`recommend` call this; the folder holds

- ``recommendations.parquet`` (and ``.csv``): customer, rank, item, score, title;
- ``metrics.csv``: one row per model and split, and a ``mean`` row per model: rating measures
  (beside the naive global-mean guess), the classifier's (beside predicting all ones) and the
  ranking measures at k (popularity always beside);
- ``segment_top_items.parquet`` when the spec names a segmentation run;
- ``spec.yaml``, ``manifest.json`` (counts, notes, timings) and ``report.html``.
"""
from __future__ import annotations

import datetime as _dt
import inspect
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from segmint.errors import InputError, SpecError, public
from segmint.spec import RecommendSpec, RunSpec, load_spec

log = logging.getLogger(__name__)

__all__ = ["recommend", "RecommendRun", "MODELS", "BASELINES", "read_interactions"]

Progress = Callable[[str, int, int, str], None]

#: spec name -> (class name in segmint.recommend.models, what it is)
MODELS: dict[str, tuple[str, str]] = {
    "global_mean": ("GlobalMean", "the training mean rating (the naive guess)"),
    "bias": ("BiasBaseline", "user + item biases"),
    "popularity": ("Popularity", "items by how many customers rated or bought them"),
    "fm_regression": ("FMRegressor", "Bayesian factorization machine, rating regression"),
    "fm_classifier": ("FMClassifier", "Bayesian factorization machine, 'top rating' classifier"),
    "ease": ("EASE", "EASE item-item model (ranking)"),
    "als": ("ALS", "implicit-feedback ALS (ranking)"),
    "bpr": ("BPR", "Bayesian personalised ranking, a pairwise ranking loss"),
    "blend": ("Blend", "a weighted sum of rankers' per-customer standardised scores"),
}
#: always evaluated beside the spec's models: explicit ratings get the naive guess, everything
#: gets popularity
BASELINES = {"explicit": ["global_mean", "popularity"], "implicit": ["popularity"]}
_REGRESSORS = {"global_mean", "bias", "fm_regression"}
_CLASSIFIERS = {"fm_classifier"}


def _build(name: str, all_params: dict[str, dict[str, Any]], seed: int) -> Any:
    """An unfitted model by its spec name, with its parameters from ``all_params`` (a blend
    finds its parts' there too) and the run's seed where the model takes one."""
    from segmint.recommend import models

    if name not in MODELS:
        raise SpecError(f"recommend.models: unknown model {name!r}; known: {sorted(MODELS)}")
    cls = getattr(models, MODELS[name][0])
    kwargs = dict(all_params.get(name, {}))
    if name == "blend":  # params: {models: [ease, als], weights: [1.0, 0.7]}, each model's own
        parts = kwargs.get("models") or []   # parameters under recommend.params.<model>
        if not parts or any(p == "blend" for p in parts):
            raise SpecError("recommend.params.blend.models lists the models to blend, e.g. "
                            "[ease, als]")
        return cls(models=[_build(p, all_params, seed) for p in parts],
                   weights=[float(w) for w in kwargs.get("weights") or [1.0] * len(parts)])
    for seed_name in ("random_seed", "random_state", "seed"):
        if seed_name in inspect.signature(cls).parameters and seed_name not in kwargs:
            kwargs[seed_name] = seed
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise SpecError(f"recommend.params.{name}: {exc}") from None


@public
def read_interactions(spec: RunSpec, data: Any = None) -> Any:
    """The spec's interactions: its source read in the declared format, duplicates resolved,
    the long-tail filter applied."""
    from segmint.recommend.interactions import filter_long_tail, from_transactions, read_ratings

    rec = _recommend_spec(spec)
    conf = rec.interactions
    source: Any = data
    if source is None:
        if spec.source is None or spec.source.path is None:
            raise SpecError("recommend needs source.path (ratings or transactions)")
        source = spec.source.path
    if conf.format == "transactions":
        if isinstance(source, pd.DataFrame):
            lines = source
        else:
            from segmint.io import read_source
            from segmint.spec import SourceSpec

            src = spec.source or SourceSpec(path=str(source))
            lines = read_source(src)
        roles = _transaction_columns(lines, conf.columns, spec)
        missing = [r for r in ("customer", "product", "quantity", "date") if roles.get(r) is None]
        if missing:
            raise InputError(f"the transactions have no {missing[0]} column (map it in "
                             f"recommend.interactions.columns or source.columns)",
                             file=None if isinstance(source, pd.DataFrame) else str(source))
        dropped = 0
        if spec.recipe.cleaning.drop_non_product_codes:  # the transactions recipe's rule
            from segmint.recipes.transactions import NON_PRODUCT_CODE

            service = lines[roles["product"]].astype("string").str.fullmatch(NON_PRODUCT_CODE)
            service = service.fillna(False).to_numpy(dtype=bool)
            dropped = int(service.sum())
            lines = lines[~service]
        inter = from_transactions(lines, customer=roles["customer"], product=roles["product"],
                                  quantity=roles["quantity"], date=roles["date"],
                                  invoice=roles.get("invoice"), title=roles.get("title"))
        if dropped:
            inter = inter.with_note(f"{dropped:,} service lines (stock codes of letters only: "
                                    f"postage, discounts, manual entries) left out")
    else:
        inter = read_ratings(source, format=conf.format, columns=conf.columns or None,
                             scale=conf.scale, duplicates=conf.duplicates)
    if conf.min_user > 1 or conf.min_item > 1:
        inter = filter_long_tail(inter, min_user=conf.min_user, min_item=conf.min_item)
    return inter


_TITLE_NAMES = ("Description", "description", "product_title", "title", "product_name")


def _transaction_columns(lines: pd.DataFrame, mapped: dict[str, str], spec: RunSpec) -> dict[str, Any]:
    """Role -> column of a transactions table: the recommend spec's mapping, the source's
    (``source.columns``), then the header names segmint knows for each role (CustomerID,
    StockCode, Quantity, InvoiceDate, InvoiceNo, ...), matched ignoring case and spaces."""
    from segmint.spec import DEFAULT_COLUMN_NAMES

    def norm(name: str) -> str:
        return name.lower().replace(" ", "").replace("_", "")

    present = {norm(str(c)): str(c) for c in lines.columns}
    source_map = spec.source.columns if spec.source is not None else {}
    out: dict[str, Any] = {}
    for role in ("customer", "product", "quantity", "date", "invoice", "title"):
        given = mapped.get(role) or source_map.get(role)
        if given is not None:
            if given not in lines.columns:
                raise InputError(f"the transactions have no column {given!r} (mapped as {role})",
                                 column=given)
            out[role] = given
            continue
        names = _TITLE_NAMES if role == "title" else DEFAULT_COLUMN_NAMES.get(role, ())
        out[role] = next((present[norm(n)] for n in names if norm(n) in present), None)
    return out


def _side_table(conf: Any, what: str, base: Path | None) -> pd.DataFrame | None:
    """A side-feature table indexed by the customer or item id as text."""
    if conf is None:
        return None
    from segmint.io import read_source

    source = conf.source
    if source.path is not None and not Path(source.path).is_absolute() and base is not None:
        source = source.model_copy(update={"path": str(base / source.path)})
    table = read_source(source)
    where = source.path or "the side-feature source"
    if conf.id not in table.columns:
        raise InputError(f"recommend.{what}: no id column {conf.id!r}", file=str(where),
                         column=conf.id)
    columns = conf.columns or [c for c in table.columns if c != conf.id]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"recommend.{what}: no column {missing[0]!r}", file=str(where),
                         column=missing[0])
    ids = table[conf.id].astype("string").str.strip()
    if ids.isna().any() or ids.duplicated().any():
        bad = int(np.flatnonzero(ids.isna().to_numpy() | ids.duplicated().to_numpy())[0])
        raise InputError(f"recommend.{what}: ids must be present and unique", file=str(where),
                         column=conf.id, row=bad + 1)
    return table[columns].set_axis(pd.Index(ids.to_numpy(), name=conf.id), axis=0)


def _recommend_spec(spec: RunSpec) -> RecommendSpec:
    if spec.recommend is None:
        raise SpecError("the spec has no recommend: section (interactions, split, models)")
    return spec.recommend


def _splits(spec: RunSpec, inter: Any) -> list[tuple[str, Any, Any]]:
    from segmint.recommend import splits

    conf = _recommend_spec(spec).split
    if conf.kind == "last_per_user":
        return [("last_per_user", *splits.last_per_user(inter))]
    if conf.kind == "time":
        return [(f"time_{conf.ratio:g}", *splits.time_cutoff(inter, conf.ratio))]
    if conf.kind == "stratified":
        return [(f"stratified_seed{s}", *splits.stratified_random(inter, conf.ratio, s))
                for s in conf.seeds]
    if conf.kind == "kfold":
        return [(f"fold{i + 1}", *fold) for i, fold in enumerate(
            splits.kfold(inter, conf.folds, conf.seeds[0]))]
    if spec.source is None or spec.source.path is None:
        raise SpecError("split.kind: movielens reads u.data from source.path")
    folds = splits.movielens_folds(spec.source.path)[: conf.folds]
    return [(f"u{i + 1}", *fold) for i, fold in enumerate(folds)]


def _top_in_blocks(model: Any, users: np.ndarray, n: int, seen: Any,
                   block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best unseen items (and their scores) of each user code, from ``score_all``
    over blocks of users (a users x items score matrix at a time stays small)."""
    from segmint.recommend.topn import top_n_of_scores

    parts = [top_n_of_scores(model.score_all(users[a:a + block]), n, seen=seen,
                             rows=users[a:a + block])
             for a in range(0, len(users), block)]
    return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])


def _evaluate(name: str, model: Any, train: Any, test: Any, rec: RecommendSpec,
              n_items: int, seen: Any) -> dict[str, Any]:
    from segmint.recommend import metrics
    from segmint.recommend.topn import recommendations_frame

    row: dict[str, Any] = {}
    users = test.frame["user"].to_numpy()
    items = test.frame["item"].to_numpy()
    truth = test.frame["rating"].to_numpy(float)
    explicit = train.kind == "explicit"
    if explicit and name in _REGRESSORS:
        predicted = _predict(model, users, items, test)
        row.update({f"{k}": v for k, v in metrics.rating_metrics(truth, predicted).items()
                    if k in ("mse", "rmse", "mae")})
    if explicit and name in _CLASSIFIERS:
        threshold = rec.positive_from if rec.positive_from is not None else \
            (train.scale[1] if train.scale else 5.0)
        y = metrics.positive_labels(truth, threshold)
        p = _predict(model, users, items, test)
        found = metrics.classification_metrics(y, (p >= 0.5).astype(int))
        row.update({k: found[k] for k in ("accuracy", "precision", "recall", "f1")})
        ones = metrics.all_ones_baseline(y)
        row["all_ones_accuracy"] = ones["accuracy"]
    # ranking: every model that scores items, seen items removed (not the global mean: it
    # scores every item alike)
    test_users = np.unique(users)
    if hasattr(model, "score_all") and len(test_users) and name != "global_mean":
        top, scores = _top_in_blocks(model, test_users, rec.k, seen)
        frame = recommendations_frame(top, scores, train, users=test_users)
        found = metrics.ranking_metrics(frame, test, k=rec.k, n_items=n_items)
        row.update({k: found[k] for k in ("precision_at_k", "recall_at_k", "ndcg_at_k",
                                          "map_at_k", "hit_rate_at_k", "catalog_coverage")})
    if explicit and name in _REGRESSORS:  # the seed's comparison: MSE beside the naive guess
        naive = metrics.global_mean_guess(train, test)
        row["naive_mse"] = naive["mse"]
    return row


def _predict(model: Any, users: np.ndarray, items: np.ndarray, test: Any) -> np.ndarray:
    if getattr(model, "dates", False):
        return np.asarray(model.predict(users, items, test.frame["timestamp"].to_numpy()))
    return np.asarray(model.predict(users, items))


class RecommendRun:
    """A recommend run folder: its recommendations, metrics and manifest."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest = self.path / "manifest.json"
        if not manifest.is_file():
            raise InputError("not a recommend run folder (no manifest.json)", file=str(self.path))
        self.manifest: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))

    def __repr__(self) -> str:
        return f"RecommendRun({str(self.path)!r})"

    def recommendations(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "recommendations.parquet")

    def metrics(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "metrics.csv")

    def segment_top_items(self) -> pd.DataFrame | None:
        path = self.path / "segment_top_items.parquet"
        return pd.read_parquet(path) if path.is_file() else None


def _segments(rec: RecommendSpec, base: Path | None) -> pd.Series | None:
    """customer id -> segment name, from the recommended solution of a segmentation run."""
    if rec.segments is None:
        return None
    from segmint.runs import open_run

    path = Path(rec.segments)
    if not path.is_absolute() and base is not None:
        path = base / path
    run = open_run(path)
    solution = run.solution()
    labels = solution.labels()
    names = solution.profile().set_index("segment")["name"]
    return pd.Series(labels["segment"].map(names).astype("string").to_numpy(),
                     index=labels["customer"].astype("string").to_numpy())


@public
def recommend(spec: RunSpec | str | Path | dict, data: Any = None, *, output: str | Path | None = None,
              progress: Progress | None = None) -> RecommendRun:
    """Run a recommend spec end to end and write its folder (see the module docstring).

    Examples
    --------
    >>> run = segmint.recommend.pipeline.recommend("examples/movielens_fm.yaml")  # doctest: +SKIP
    >>> run.metrics()                                                          # doctest: +SKIP
    """
    from segmint._secrets import redact_obj
    from segmint.io import atomic_dir, write_csv_atomic, write_parquet_atomic, write_text_atomic
    from segmint.recommend.topn import recommendations_frame, segment_top_items, top_n

    base = Path(spec).resolve().parent if isinstance(spec, (str, Path)) else None
    spec = spec if isinstance(spec, RunSpec) else load_spec(spec)
    if output is not None:
        spec = spec.model_copy(update={"output": str(output)})
    rec = _recommend_spec(spec)
    names = list(dict.fromkeys([*rec.models]))
    for name in names:
        if name not in MODELS:
            raise SpecError(f"recommend.models: unknown model {name!r}; known: {sorted(MODELS)}")
    unknown = set(rec.params) - set(MODELS)
    if unknown:
        raise SpecError(f"recommend.params: unknown model {sorted(unknown)[0]!r}")
    chosen = rec.recommend_with or names[0]
    if chosen not in MODELS:
        raise SpecError(f"recommend.recommend_with: unknown model {chosen!r}")
    timings: dict[str, float] = {}
    params = {name: dict(values) for name, values in rec.params.items()}

    t0 = time.perf_counter()
    inter = read_interactions(spec, data)
    timings["read"] = time.perf_counter() - t0
    segments = _segments(rec, base)
    side = {"user": _side_table(rec.user_features, "user_features", base),
            "item": _side_table(rec.item_features, "item_features", base)}
    if rec.segment_feature:
        if segments is None:
            raise SpecError("recommend.segment_feature needs recommend.segments (a segmentation run)")
        # one-hot segment per customer, as the FMs' user side feature (a customer the
        # segmentation does not know gets its own level)
        feature = pd.DataFrame({"segment": segments.reindex(inter.users.astype(str))
                                .fillna("(no segment)").to_numpy()}, index=inter.users)
        side["user"] = feature if side["user"] is None else side["user"].join(feature, how="outer")
    for kind, table in side.items():
        if table is not None:
            for name in ("fm_regression", "fm_classifier"):
                params[name] = {**params.get(name, {}), f"{kind}_features": table}
    baselines = [b for b in BASELINES[inter.kind] if b not in names]
    evaluated = names + baselines
    if inter.kind == "implicit":
        explicit_only = [n for n in evaluated if n in _REGRESSORS | _CLASSIFIERS]
        if explicit_only:
            raise SpecError(f"{explicit_only[0]} needs ratings; these interactions are purchases "
                            f"(implicit feedback): use ranking models (ease, als, bpr, popularity)")

    # evaluation: every model on every split
    t0 = time.perf_counter()
    rows = []
    split_list = _splits(spec, inter)
    for s, (split_name, train, test) in enumerate(split_list):
        seen_in_train = train.matrix("binary")  # once per split, shared by every model
        for m, name in enumerate(evaluated):
            if progress:
                progress("evaluate", s * len(evaluated) + m, len(split_list) * len(evaluated),
                         f"{name} on {split_name}")
            t1 = time.perf_counter()
            model = _build(name, params, spec.seed).fit(train)
            fitted = time.perf_counter() - t1
            row = {"model": name, "split": split_name, "train_rows": len(train.frame),
                   "test_rows": len(test.frame), "fit_seconds": fitted,
                   **_evaluate(name, model, train, test, rec, inter.n_items,
                                seen_in_train)}
            rows.append(row)
    table = pd.DataFrame(rows)
    means = table.drop(columns=["split"]).groupby("model", sort=False).mean(numeric_only=True)
    means = means.reset_index().assign(split="mean")
    table = pd.concat([table, means[table.columns]], ignore_index=True)
    timings["evaluate"] = time.perf_counter() - t0

    # the chosen model on every interaction -> top-N for every customer
    t0 = time.perf_counter()
    model = _build(chosen, params, spec.seed).fit(inter)
    seen = inter.matrix("binary")
    if hasattr(model, "user_vectors"):  # the seed's k-NN over the factors
        items, scores = top_n(model.user_vectors(), model.item_vectors(), rec.top_n, seen=seen)
    else:
        items, scores = _top_in_blocks(model, np.arange(inter.n_users), rec.top_n, seen)
    recs = recommendations_frame(items, scores, inter)
    timings["top_n"] = time.perf_counter() - t0
    by_segment = segment_top_items(recs, inter, segments) if segments is not None else None

    created = _dt.datetime.now(_dt.UTC)
    final = Path(spec.output) / f"{spec.name}-{created:%Y%m%d-%H%M%S}"
    with atomic_dir(final) as tmp:
        tmp = Path(tmp)
        write_text_atomic(yaml.safe_dump(redact_obj(spec.model_dump(mode="json")), sort_keys=False),
                          tmp / "spec.yaml")
        write_parquet_atomic(recs, tmp / "recommendations.parquet")
        write_csv_atomic(recs, tmp / "recommendations.csv")
        write_csv_atomic(table, tmp / "metrics.csv")
        if by_segment is not None:
            write_parquet_atomic(by_segment, tmp / "segment_top_items.parquet")
        manifest = {
            "kind": "recommend", "name": spec.name, "created": created.isoformat(timespec="seconds"),
            "interactions": {"kind": inter.kind, "rows": len(inter.frame), "customers": inter.n_users,
                             "items": inter.n_items, "notes": list(inter.notes)},
            "split": rec.split.kind, "models": evaluated, "recommend_with": chosen,
            "top_n": rec.top_n, "k": rec.k, "timings_seconds": timings,
            "side_features": {kind: list(table.columns) for kind, table in side.items()
                              if table is not None},
            "segments": None if segments is None else {
                "run": str(rec.segments), "customers_with_a_segment":
                    int(inter.users.astype(str).isin(segments.index).sum()),
                "as_fm_feature": rec.segment_feature},
        }
        write_text_atomic(json.dumps(manifest, indent=2, default=str), tmp / "manifest.json")
        from segmint.report._recommend import render_recommend_report

        write_text_atomic(render_recommend_report(
            title=f"segmint recommendations {spec.name}", manifest=manifest, metrics=table,
            recommendations=recs, segment_top_items=by_segment), tmp / "report.html")
    return RecommendRun(final)

