"""The run spec: one YAML file, read into typed models, validated in one place."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from segmint.errors import SpecError, public

__all__ = [
    "RunSpec", "SourceSpec", "RecipeSpec", "CleaningSpec", "OutlierSpec", "PrepareSpec", "SweepSpec",
    "AlgorithmSpec", "RepresentationSpec", "SelectSpec", "ProfileSpec", "load_spec", "ROLES", "COLUMN_TYPES",
    "RecommendSpec", "InteractionsSpec", "SplitSpec", "SideFeaturesSpec", "DeploySpec", "ExportSpec",
    "EngineSpec",
]

#: The roles a transactions source maps its columns to. ``amount`` is a line total (what the
#: line cost); when a source has no amount, the line total is quantity x price.
ROLES = ("customer", "invoice", "date", "quantity", "price", "amount", "product", "country")

#: What a column of a customer table can be (``recipe.kind: attributes``).
COLUMN_TYPES = ("id", "numeric", "categorical", "binary", "ordinal", "date", "text", "ignore")

#: Header names seen in the wild for each role, tried when the spec maps none.
DEFAULT_COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "customer": ("CustomerID", "Customer ID", "customer_id", "customer"),
    "invoice": ("InvoiceNo", "Invoice", "invoice_no", "invoice"),
    "date": ("InvoiceDate", "invoice_date", "date"),
    "quantity": ("Quantity", "quantity"),
    "price": ("UnitPrice", "Price", "unit_price", "price"),
    "amount": ("amount", "line_total", "LineTotal", "line_amount", "sales_amount", "Sales"),
    "product": ("StockCode", "stock_code", "product"),
    "country": ("Country", "country"),
}

SCALINGS = ("standard", "minmax", "robust", "log", "none")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceSpec(_Model):
    """Where the raw table comes from. Exactly one of path / url / duckdb."""

    path: str | None = None
    format: Literal["auto", "csv", "tsv", "whitespace", "parquet", "excel", "ndjson"] = "auto"
    encoding: str | None = None  # None: sniffed (utf-8, else windows-1252)
    delimiter: str | None = None  # None: sniffed; "whitespace" for runs of spaces/tabs
    header: bool = True  # False: the first line is data; name the columns in `names`
    names: list[str] | None = None  # column names, in file order, for a file without a header
    sheet: str | int | None = None
    dayfirst: bool = False  # read 01/02/2011 as 1 February (dates are month-first by default)
    url: str | None = None  # SQLAlchemy URL
    duckdb: str | None = None  # DuckDB database file (":memory:" allowed with query)
    table: str | None = None
    query: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    # A quantity, price or amount missing, infinite or beyond 1e15; a date before 1900 or after
    # tomorrow: "drop" the line (counted in the record and logged), "error" on the first one.
    invalid: Literal["drop", "error"] = "drop"
    # The decimal mark of numbers written as text. None: "." unless a ";"-separated file writes
    # every quantity, price and amount as 2,55 or 1.234,5 (at least one comma): then ",", with "."
    # grouping thousands. "," says so for any file.
    decimal: Literal[".", ","] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SourceSpec:
        kinds = [k for k in ("path", "url", "duckdb") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("source needs exactly one of 'path', 'url' or 'duckdb'")
        if self.url and not self.query and not self.table:
            raise ValueError("a 'url' source needs a 'query' or a 'table'")
        if self.duckdb and not self.query and not self.table:
            raise ValueError("a 'duckdb' source needs a 'query' or a 'table'")
        bad = sorted(set(self.columns) - set(ROLES))
        if bad:
            raise ValueError(f"unknown column roles {bad}; roles are {list(ROLES)}")
        if not self.header and not self.names:
            raise ValueError("a source with 'header: false' needs 'names' (one per column)")
        if self.names is not None and len(set(self.names)) != len(self.names):
            raise ValueError(f"'names' repeats a name: {self.names}")
        return self


class CleaningSpec(_Model):
    """The Insiders notebook's cleaning steps; each can be switched off."""

    impute_customer: bool = False
    drop_non_product_codes: bool = False
    min_unit_price: float | None = None
    drop_customers: list[str] = Field(default_factory=list)
    drop_countries: list[str] = Field(default_factory=list)

    @field_validator("drop_customers", mode="before")
    @classmethod
    def _as_str(cls, v: Any) -> Any:
        return [str(int(x)) if isinstance(x, float) and x.is_integer() else str(x) for x in (v or [])]


class RecipeSpec(_Model):
    """Raw table -> one row per customer.

    ``kind: transactions`` (one row per line item) computes a registered feature set;
    ``kind: attributes`` (``table`` is an alias) takes a table that is already one row per
    customer, with its column types inferred and overridable in ``columns``.
    """

    kind: Literal["transactions", "attributes"] = "transactions"
    # transactions
    features: str = "insiders"  # a name from segmint.recipes.FEATURE_SETS
    cleaning: CleaningSpec = Field(default_factory=CleaningSpec)
    # cluster on the feature set's revenue column too (it is always kept for the profile)
    cluster_revenue: bool = False
    # attributes
    id_column: str | None = None  # None: found by name (id, customer_id, ID, CUST_ID, ...)
    columns: dict[str, Literal[COLUMN_TYPES]] = Field(default_factory=dict)  # type: ignore[valid-type]
    ordinal: dict[str, list[Any]] = Field(default_factory=dict)  # column -> levels, low to high
    feature_columns: list[str] | None = None  # only these columns (besides the id); None: all
    missing: Literal["impute", "drop", "error"] = "impute"
    code_levels: int = Field(default=10, ge=2)  # integer columns with at most this many values: codes
    revenue: str | None = None  # the column holding each customer's total spend, if any

    @field_validator("kind", mode="before")
    @classmethod
    def _alias(cls, v: Any) -> Any:
        return "attributes" if v == "table" else v

    @model_validator(mode="after")
    def _ordinal_levels(self) -> RecipeSpec:
        for column in self.ordinal:
            if self.columns.setdefault(column, "ordinal") != "ordinal":
                raise ValueError(f"column {column!r} has ordinal levels but type "
                                 f"{self.columns[column]!r}")
        ids = [c for c, t in self.columns.items() if t == "id"]
        if len(ids) > 1 or (ids and self.id_column and ids[0] != self.id_column):
            named = sorted({*ids, *([self.id_column] if self.id_column else [])})
            raise ValueError(f"more than one id column: {named}")
        if ids:
            self.id_column = ids[0]
        return self


class OutlierSpec(_Model):
    """Customers too unlike the rest to cluster (see :mod:`segmint.prepare.outliers`)."""

    # auto: isolation_forest in the log space for transaction recipes (a handful of extreme
    # spenders would otherwise form clusters of one or two), none for customer tables
    method: Literal["auto", "none", "ecod", "isolation_forest"] = "auto"
    contamination: float = Field(default=0.01, gt=0, lt=0.5)  # the share flagged
    mode: Literal["flag", "drop"] = "flag"  # flag: their own segment (-1); drop: out of the run
    # the scaling of the space the detector scores in; None: log for auto, else the sweep's first
    scaling: Literal[SCALINGS] | None = None  # type: ignore[valid-type]

    def resolved(self, recipe_kind: str) -> OutlierSpec:
        """``auto`` made concrete for a recipe kind (and the detector's space filled in).

        Examples
        --------
        >>> OutlierSpec().resolved("transactions").method, OutlierSpec().resolved("attributes").method
        ('isolation_forest', 'none')
        """
        if self.method != "auto":
            return self
        if recipe_kind == "transactions":
            return self.model_copy(update={"method": "isolation_forest",
                                           "scaling": self.scaling or "log"})
        return self.model_copy(update={"method": "none"})


class PrepareSpec(_Model):
    """Customer table -> the matrix that is clustered (besides the scalings the sweep tries)."""

    # one-hot levels held by fewer than this share of customers are folded into "other"
    rare_share: float = Field(default=0.01, ge=0, lt=1)
    # at most this many one-hot columns per categorical column (the most common levels; the
    # rest fold into "other"), so a 10,000-level column cannot make a 10,000-column matrix
    max_levels: int = Field(default=100, ge=2, le=10_000)
    # categorical columns are one-hot encoded for the numeric clusterers; "drop" leaves them out
    categorical: Literal["onehot", "drop"] = "onehot"
    outliers: OutlierSpec = Field(default_factory=OutlierSpec)


class AlgorithmSpec(_Model):
    name: str  # a name from segmint.cluster.ALGORITHMS
    grid: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _registered(cls, v: str) -> str:
        from segmint.cluster.registry import ALGORITHMS

        if v not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {v!r}; known: {sorted(ALGORITHMS)}")
        return v

    @field_validator("grid", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        if v is not None and not isinstance(v, dict):
            raise ValueError("a grid maps parameter names to lists of values")
        return {k: (x if isinstance(x, list) else [x]) for k, x in (v or {}).items()}

    @model_validator(mode="after")
    def _known_parameters(self) -> AlgorithmSpec:
        from segmint.cluster.registry import ALGORITHMS

        known = ALGORITHMS[self.name].param_names()
        unknown = sorted(set(self.grid) - set(known))
        if unknown:
            raise ValueError(f"{self.name} has no parameter {unknown[0]!r}; its parameters are "
                             f"{sorted(known)}")
        empty = [k for k, values in self.grid.items() if not values]
        if empty:
            raise ValueError(f"grid parameter {empty[0]!r} has no values")
        algorithm = ALGORITHMS[self.name]
        for key, values in self.grid.items():  # each value as the estimator's fit would check it
            for value in values:
                algorithm.check_params({key: value})
        return self


class RepresentationSpec(_Model):
    """One space the sweep clusters in (see :mod:`segmint.prepare`).

    - ``scaled``: numeric columns scaled by ``scaling``, categoricals one-hot (the default);
    - ``text``: each customer's row written as text ("Age: 58, Job: management, ...") and
      embedded by a sentence-embedding model (bundled all-MiniLM-L6-v2, or a local
      sentence-transformers folder in ``model``), vectors L2-normalised and cached on disk;
    - ``tree``: a random forest learns ``target`` from the other columns (scaled by
      ``scaling``); its leaves, laid out by UMAP in ``n_components`` dimensions, are the space.
    """

    kind: Literal["scaled", "text", "tree"] = "scaled"
    name: str | None = None  # in solution names; default: the scaling, "text" or "tree"
    scaling: Literal[SCALINGS] = "standard"  # type: ignore[valid-type]
    template: str | None = None  # text: "{age} years, works in {job}"; default "Age: 58, Job: ..."
    model: str | None = None  # text: a local sentence-transformers model folder
    columns: list[str] | None = None  # text: the columns written; default every feature
    batch_size: int = Field(default=64, ge=1, le=4096)
    target: str | None = None  # tree: the column the forest learns; default the revenue column
    n_components: int = Field(default=2, ge=2, le=50)
    n_estimators: int = Field(default=100, ge=1, le=5000)
    metric: Literal["hamming", "euclidean"] = "hamming"  # tree: UMAP's metric on leaf indices

    @model_validator(mode="before")
    @classmethod
    def _from_word(cls, v: Any) -> Any:
        if isinstance(v, str):  # "log" is a scaled representation; "text" and "tree" kinds
            return {"kind": v} if v in ("scaled", "text", "tree") else {"kind": "scaled", "scaling": v}
        return v

    @model_validator(mode="after")
    def _named(self) -> RepresentationSpec:
        if self.name is None:
            self.name = self.scaling if self.kind == "scaled" else self.kind
        if not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"representation name {self.name!r}: letters, digits, - and _ only")
        return self


class SweepSpec(_Model):
    scalings: list[Literal[SCALINGS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["standard"], min_length=1)
    # the spaces clustered in; default: one scaled space per scaling. Solutions of different
    # spaces are compared in one common space: the first scaled one (else standard scaling).
    representations: list[RepresentationSpec] | None = Field(default=None, min_length=1)
    algorithms: list[AlgorithmSpec] = Field(default_factory=lambda: [
        AlgorithmSpec(name="kmeans", grid={"n_clusters": list(range(2, 11))})], min_length=1)
    # silhouette on a seeded sample of this many customers above it (it is quadratic)
    silhouette_sample: int = Field(default=20_000, ge=100)
    # Fitted on at most this many rows where an algorithm is quadratic (agglomerative).
    max_rows_quadratic: int = Field(default=20_000, ge=2)
    # every setting also run on every customer, outliers included (solutions named *_all), to
    # compare with and without the outliers set apart (prepare.outliers, mode flag)
    compare_outliers: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> SweepSpec:
        if self.representations is not None:
            # scalings mirror the scaled representations (a run's spec.yaml holds both)
            derived = [r.scaling for r in self.representations if r.kind == "scaled"] or ["standard"]
            if "scalings" in self.model_fields_set and self.scalings != derived:
                raise ValueError("give either 'scalings' or 'representations' (a scaling is "
                                 "a representation: representations: [standard, log])")
            names = [str(r.name) for r in self.representations]
            self.scalings = derived
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"two representations are named {twice[0]!r}; give one a 'name'")
        return self

    def spaces(self) -> list[RepresentationSpec]:
        """The representations clustered in, in order (from ``scalings`` when not given)."""
        if self.representations is not None:
            return list(self.representations)
        return [RepresentationSpec(kind="scaled", scaling=s) for s in self.scalings]

    @property
    def common(self) -> RepresentationSpec:
        """The space every solution is also measured in: the first scaled representation,
        else standard scaling."""
        return next((r for r in self.spaces() if r.kind == "scaled"),
                    RepresentationSpec(kind="scaled", scaling="standard"))


class SelectSpec(_Model):
    min_cluster_share: float = Field(default=0.01, ge=0, lt=1)
    max_noise_share: float = Field(default=0.25, ge=0, le=1)
    stability_top: int = Field(default=3, ge=1)
    stability_resamples: int = Field(default=10, ge=1, le=1000)
    stability_fraction: float = Field(default=0.8, gt=0, lt=1)
    # only solutions with this many segments (noise aside) can be recommended
    min_k: int | None = Field(default=None, ge=2)
    max_k: int | None = Field(default=None, ge=2)

    @model_validator(mode="after")
    def _k_range(self) -> SelectSpec:
        if self.min_k is not None and self.max_k is not None and self.min_k > self.max_k:
            raise ValueError(f"min_k ({self.min_k}) is above max_k ({self.max_k})")
        return self


ProjectionName = Literal["pca", "pca3", "tsne", "umap", "mca"]


class ProfileSpec(_Model):
    # a customer-table column to use as revenue in the profile; None: what the recipe declares
    revenue: str | None = None
    # plots of the recommended solution's customers in the report, coloured by segment: pca
    # (2-D), pca3 (3-D), tsne and umap (of a seeded sample of projection_rows customers) of the
    # common space, mca of the categorical columns
    projections: list[ProjectionName] = Field(
        default_factory=lambda: list[ProjectionName](["pca", "mca"]))
    projection_rows: int = Field(default=5000, ge=100, le=100_000)
    # a LightGBM model that predicts the recommended segments from the original columns, with
    # its holdout accuracy and SHAP importance (what sets each segment apart)
    explain: bool = True


class InteractionsSpec(_Model):
    """Who rated or bought what (segmint.recommend.interactions)."""

    # amazon: the Amazon reviews TSV (customer_id, product_id, product_title, star_rating,
    # review_date; tab-separated, no quoting); movielens: u.data (+ u.item titles beside it);
    # table: any table through `columns`; transactions: line items as implicit feedback
    format: Literal["auto", "amazon", "movielens", "table", "transactions"] = "auto"
    # role -> column: user, item, rating, timestamp, title (table); customer, product,
    # quantity, date, invoice, title (transactions)
    columns: dict[str, str] = Field(default_factory=dict)
    scale: tuple[float, float] | None = (1.0, 5.0)  # ratings outside it are an error
    duplicates: Literal["latest", "mean", "error"] = "latest"  # a pair rated twice, differently
    # the seed's long-tail filter: customers with at least min_user ratings, products with at
    # least min_item (one pass, on the deduplicated data)
    min_user: int = Field(default=1, ge=1)
    min_item: int = Field(default=1, ge=1)


class SplitSpec(_Model):
    """How ratings are held out for evaluation (segmint.recommend.splits)."""

    # last_per_user: each customer's latest rating (the seed); time: everything after the
    # moment that leaves `ratio` of the interactions earlier; stratified: a per-customer random
    # share (the Microsoft Recommenders protocol); kfold; movielens: u1..u5
    kind: Literal["last_per_user", "time", "stratified", "kfold", "movielens"] = "stratified"
    ratio: float = Field(default=0.75, gt=0, lt=1)  # stratified / time: the training share
    folds: int = Field(default=5, ge=2, le=20)  # kfold / movielens: how many folds are run
    seeds: list[int] = Field(default_factory=lambda: [42], min_length=1)  # stratified / kfold


class SideFeaturesSpec(_Model):
    """A table of side features for the factorization machines: one row per customer (or
    item), its id in column ``id``; text columns become one-hot, numbers stay numbers."""

    source: SourceSpec
    id: str
    columns: list[str] | None = None  # None: every column but the id


class RecommendSpec(_Model):
    """Recommendations: models trained on the split, evaluated beside baselines, top-N for
    every customer from the model named by ``recommend_with`` (trained on all interactions)."""

    interactions: InteractionsSpec = Field(default_factory=InteractionsSpec)
    split: SplitSpec = Field(default_factory=SplitSpec)
    # names from segmint.recommend.models.MODELS; baselines are always added beside them
    models: list[str] = Field(default_factory=lambda: ["ease", "fm_regression"], min_length=1)
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)  # model -> its parameters
    recommend_with: str | None = None  # the model whose top-N is written; default the first
    top_n: int = Field(default=100, ge=1, le=10_000)
    k: int = Field(default=10, ge=1, le=1000)  # ranking metrics' cut-off
    positive_from: float | None = 5.0  # the classifier's positive class: ratings >= this (seed: 5 stars)
    # a segmint run folder: its recommended solution's segments give the per-segment top items
    segments: str | None = None
    # the customer's segment (from `segments`) as a side feature of the factorization machines
    segment_feature: bool = False
    # side features of the factorization machines: a customer table (age band, region, ...)
    # and an item table (category, price band, ...)
    user_features: SideFeaturesSpec | None = None
    item_features: SideFeaturesSpec | None = None


class ExportSpec(_Model):
    """Where a scheduled re-run's scores go (segmint.deploy.export)."""

    # a SQLAlchemy URL (postgresql://, sqlite:///, duckdb:///) or a .parquet / .csv path;
    # ${NAME} references are filled from the environment when segmint connects; None: the
    # environment variable SEGMINT_EXPORT_URL
    url: str | None = None
    table: str = "customer_segments"
    mode: Literal["replace", "upsert"] = "replace"


class DeploySpec(_Model):
    """A spec that maintains a published model (segmint.deploy.schedule): ``segmint run``
    scores the new data with it, or re-fits and publishes the next version with the segments
    matched to the published ones, keeps a history and reports how customers moved."""

    model: str = Field(min_length=1, max_length=128)  # the published model's name
    models: str | None = None  # its folder; None: SEGMINT_MODELS, else ./models
    mode: Literal["score", "refit"] = "score"
    # refit: new segments are matched to the published ones by their members (the same
    # customers); one sharing no more than this Jaccard with any is a new segment
    min_jaccard: float = Field(default=0.1, ge=0.0, lt=1.0)
    export: ExportSpec | None = None


class EngineSpec(_Model):
    """What computes the run: ``local`` (DuckDB for the recipes, scikit-learn for the sweep) or
    ``spark`` (Spark SQL and MLlib; pyspark is an optional extra). ``engine: spark`` in a spec
    is short for ``engine: {kind: spark}``."""

    kind: Literal["local", "spark"] = "local"
    # local: DuckDB's memory limit ("4GB", "75%") and the folder it spills to when a recipe's
    # aggregation outgrows it; None: DuckDB's defaults (80% of RAM; a .tmp folder beside the
    # database, in memory here)
    memory_limit: str | None = None
    temp_directory: str | None = None
    # spark: the master URL (local[*] on this machine; spark://host:7077, yarn, ... on a cluster)
    # and any other Spark settings (spark.executor.memory, ...)
    master: str = "local[*]"
    conf: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"\s*\d+(\.\d+)?\s*(%|[KMGT]i?B|B)\s*", v, flags=re.I):
            raise ValueError(f"memory_limit {v!r} is not a size such as '4GB', '512MiB' or '75%'")
        return v


class RunSpec(_Model):
    name: str = Field(default="run", max_length=100)
    seed: int = Field(default=0, ge=0, lt=2**32)
    source: SourceSpec | None = None  # None: the source is given to segmint.run() directly
    recipe: RecipeSpec = Field(default_factory=RecipeSpec)
    prepare: PrepareSpec = Field(default_factory=PrepareSpec)
    sweep: SweepSpec = Field(default_factory=SweepSpec)
    select: SelectSpec = Field(default_factory=SelectSpec)
    profile: ProfileSpec = Field(default_factory=ProfileSpec)
    recommend: RecommendSpec | None = None  # `segmint recommend SPEC.yaml` reads this
    deploy: DeploySpec | None = None  # scheduled re-runs of a published model
    engine: EngineSpec = Field(default_factory=EngineSpec)
    output: str = "runs"

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not v or not all(c.isalnum() or c in "-_." for c in v) or v.startswith("."):
            raise ValueError(f"name {v!r} must be a plain folder name: letters, digits, - _ . "
                             f"(not starting with .)")
        return v


@public
def load_spec(path_or_dict: str | Path | dict, *, base: Path | None = None) -> RunSpec:
    """Read and validate a run spec from a YAML file or a dict.

    Relative source paths are taken relative to the spec file's folder (or ``base``).
    """
    file = None
    if isinstance(path_or_dict, dict):
        raw = path_or_dict
    elif not isinstance(path_or_dict, (str, Path)):
        raise SpecError(f"a spec is a YAML file's path, a dict or a RunSpec; got "
                        f"{type(path_or_dict).__name__}")
    else:
        file = Path(path_or_dict)
        if not file.is_file():
            raise SpecError("spec file not found", file=str(file))
        try:
            raw = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SpecError(f"not valid YAML: {problem}{where}", file=str(file)) from None
        except UnicodeDecodeError as exc:
            raise SpecError(f"is not UTF-8 text ({exc.reason} at byte {exc.start})",
                            file=str(file)) from None
        except OSError as exc:
            raise SpecError(f"cannot be read ({exc.strerror})", file=str(file)) from None
        base = base or file.parent
    if not isinstance(raw, dict):
        raise SpecError("a spec is a YAML mapping", file=None if file is None else str(file))
    try:
        spec = RunSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        given = first.get("input")
        if first.get("type") != "value_error" and isinstance(given, (str, int, float, bool)):
            message += f"; got {given!r}"
        raise SpecError(f"{loc}: {message}", file=None if file is None else str(file)) from None
    source = spec.source
    if base is not None and source is not None:
        if source.path and not Path(source.path).is_absolute():
            source.path = str((base / source.path).resolve())
        if source.duckdb and source.duckdb != ":memory:" and not Path(source.duckdb).is_absolute():
            source.duckdb = str((base / source.duckdb).resolve())
    return spec
