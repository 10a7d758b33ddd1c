"""Per-segment profiles a marketing manager can read, in the features' own units, and segment
names and one-sentence descriptions in a marketer's words."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from segmint._threads import threads
from segmint.explain._grouped import Groups, group

__all__ = ["profile", "profiles", "centroids_long", "centroids_long_many", "name_segments",
           "describe_segments", "good_direction", "GOOD_DIRECTION", "NOISE_NAME"]

NOISE_NAME = "outliers (noise)"
#: A segment is named by at most this many features ...
NAME_PARTS = 3
#: ... each at least this many standard deviations from the population (see name_segments).
THRESHOLD = 0.25


@dataclass(frozen=True)
class _Concept:
    """What a numeric column means to a marketer, recognised from the words of its name."""

    #: each spelling's words must all be among the column name's words ("since last" matches
    #: days_since_last_order); plurals match singulars
    spellings: tuple[str, ...]
    high: str
    low: str
    #: the quantity, for descriptions ("spend 3.2x the average", "average age 58 vs 41 overall")
    noun: str
    #: +1 more is better for the business, -1 less is, 0 neither (age, a balance)
    good: int = 0
    #: a ratio to the average reads well (spend, orders); not for age, recency or tenure
    ratio: bool = True
    #: the name's other words say what on: MntWines -> "high spend on wines"
    on_what: bool = False


#: Tried in order, the first match wins: "days_since_first_order" is tenure before "order" can
#: make it orders, "avg_order_value" a basket before it is orders or spend.
_CONCEPTS: tuple[_Concept, ...] = (
    _Concept(("tenure", "seniority", "since first", "first purchase", "first order", "months on book",
              "customer since", "member since", "dt customer"),
             "long-standing", "new", "tenure", ratio=False),
    _Concept(("recency", "since last", "last purchase", "last order", "last visit", "days inactive"),
             "lapsed", "recent", "recency", good=-1, ratio=False),
    _Concept(("return", "refund"), "many returns", "few returns", "returns", good=-1),
    _Concept(("discount", "coupon", "promo", "deal"), "discount-driven", "few discounts", "discounts"),
    _Concept(("ticket", "basket", "aov", "order value", "avg spend", "average spend", "mean spend",
              "avg amount", "spend per", "revenue per", "amount per"),
             "big baskets", "small baskets", "average basket", good=1),
    _Concept(("clv", "ltv", "lifetime value", "customer value"), "high lifetime value",
             "low lifetime value", "lifetime value", good=1),
    _Concept(("revenue", "sales", "turnover"), "high revenue", "low revenue", "revenue", good=1),
    _Concept(("spend", "spent", "spending", "monetary", "amount", "expenditure", "mnt"), "high spend",
             "low spend", "spend", good=1, on_what=True),
    _Concept(("price",), "premium buyers", "bargain buyers", "price paid"),
    _Concept(("frequency", "freq", "purchase", "transaction"), "frequent", "infrequent",
             "purchase frequency", good=1),
    _Concept(("order", "invoice"), "many orders", "few orders", "orders", good=1),
    _Concept(("product", "item", "quantity", "qty", "sku"), "many products", "few products",
             "products", good=1),
    _Concept(("session duration", "time on site"), "long visits", "short visits", "visit length"),
    _Concept(("visit", "session", "pageview"), "many visits", "few visits", "visits"),
    _Concept(("balance",), "high balance", "low balance", "balance"),
    _Concept(("income", "salary", "wage", "earning"), "high income", "low income", "income"),
    _Concept(("age",), "older", "younger", "age", ratio=False),
    _Concept(("year birth", "birth year", "yob"), "younger", "older", "birth year", ratio=False),
    _Concept(("kidhome", "kid", "child", "children"), "more children", "fewer children", "children"),
    _Concept(("teenhome", "teen", "teenager"), "more teenagers", "fewer teenagers", "teenagers"),
    _Concept(("duration",), "long duration", "short duration", "duration", ratio=False),
    _Concept(("campaign", "contact", "call"), "often contacted", "rarely contacted", "contacts"),
)

#: Which way is good for a feature a marketer reads, by the words of its name (matched as
#: :func:`good_direction` matches them): +1 higher is better (spend, frequency), -1 lower is
#: better (days since the last purchase, returns). Features not covered have no good direction
#: (age, a balance): a report shows them high or low, not good or bad.
GOOD_DIRECTION: dict[str, int] = {spelling: concept.good for concept in _CONCEPTS
                                  for spelling in concept.spellings if concept.good}

#: 0/1 columns by the words of their name: (the phrase for 1, the phrase for 0)
_BINARY_WORDS: tuple[tuple[str, str, str], ...] = (
    ("housing", "with a housing loan", "without a housing loan"),
    ("mortgage", "with a mortgage", "without a mortgage"),
    ("default", "in default", "not in default"),
    ("loan", "with a loan", "without a loan"),
    ("churn", "churned", "not churned"),
    ("complain", "complained", "never complained"),
    ("response", "responded", "did not respond"),
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december")
#: columns whose levels name people by themselves, in the plural ("mostly technicians")
_ROLE_WORDS = {"job", "occupation", "profession", "role", "position"}
#: ... and as they are ("married", "female")
_PLAIN_WORDS = {"marital", "gender", "sex", "civil", "generation"}
#: places: "in Portugal"
_PLACE_WORDS = {"country", "city", "town", "state", "province", "location", "place"}
#: words that say nothing of what a spend is on ("total_spend", "avg_purchase_amount")
_SPEND_WORDS = {"mnt", "amount", "spend", "spent", "spending", "monetary", "expenditure", "total",
                "gross", "net", "sum", "value", "customer", "annual", "yearly", "monthly", "per",
                "purchase", "order", "transaction", "of", "on", "in", "the", "a"}
_UNKNOWN_LEVELS = {"unknown", "other", "none", "n/a", "na", "nan", "missing", "?", "-", ""}


def _words(name: object) -> list[str]:
    """A column name's words, lower case: NumberOfOrders -> number of orders, recency_days ->
    recency days."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", text)
    return [word.lower() for word in re.split(r"[^A-Za-z0-9]+", text) if word]


def _stem(word: str) -> str:
    # plurals match singulars: orders / order, returns / return; "balance", "status" unharmed
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _concept(feature: object) -> _Concept | None:
    """The concept a numeric column's name spells, or None."""
    try:
        return _concept_of_name(feature)
    except TypeError:  # an unhashable column label
        return _concept_of_name.__wrapped__(feature)


@lru_cache(maxsize=4096)  # asked for every trait of every segment of every solution
def _concept_of_name(feature: object) -> _Concept | None:
    words = _words(feature)
    stems = {_stem(word) for word in words}
    for concept in _CONCEPTS:
        for spelling in concept.spellings:
            if {_stem(word) for word in spelling.split()} <= stems:
                rest = " ".join(word for word in words if _stem(word) not in _SPEND_WORDS)
                if not concept.on_what or not rest:
                    return concept
                return replace(concept, high=f"{concept.high} on {rest}", low=f"{concept.low} on {rest}",
                               noun=f"{concept.noun} on {rest}")
    for day in _WEEKDAYS:  # the transactions recipe's purchase counts by weekday and month
        if day in stems:
            name = day.capitalize() + "s"
            return _Concept((), f"buy on {name}", f"rarely buy on {name}", f"purchases on {name}")
    for month in _MONTHS:
        if month in stems and len(stems) == 1:  # "may" only as the whole name
            name = month.capitalize()
            return _Concept((), f"buy in {name}", f"rarely buy in {name}", f"purchases in {name}")
    return None


def good_direction(feature: str) -> int:
    """+1 when more of ``feature`` is good, -1 when less is, 0 when neither is known.

    The column's name is read as words, whatever the spelling: ``recency``, ``Recency``,
    ``recency_days`` and ``days_since_last_order`` are all recency (less is better).

    Examples
    --------
    >>> good_direction("recency_days"), good_direction("monetary"), good_direction("age")
    (-1, 1, 0)
    >>> good_direction("Recency"), good_direction("NumberOfOrders"), good_direction("returns")
    (-1, 1, -1)
    """
    concept = _concept(feature)
    return concept.good if concept is not None else 0


def _types(table: pd.DataFrame, types: dict[str, str] | None) -> dict[str, str]:
    """Column types, inferred from dtypes where not given (numbers numeric, else categorical)."""
    types = dict(types or {})
    for column in table.columns:
        if column not in types:
            numeric = pd.api.types.is_numeric_dtype(table[column]) \
                and not pd.api.types.is_bool_dtype(table[column])
            types[column] = "numeric" if numeric else "categorical"
    return types


def _indicators(table: pd.DataFrame,
                types: dict[str, str]) -> tuple[pd.DataFrame, list[tuple[str, object]]]:
    """Numeric and binary columns as they are; each categorical level as a 0/1 column, so
    every measure below is a mean. Returns the wide table (columns 0..m-1) and, per column,
    its (feature, level) with level None for a numeric or binary feature."""
    parts, keys = [], []
    for column in table.columns:
        if types[column] == "categorical":
            values = table[column].astype("object")
            # the most common levels only: a postcode's 10,000 levels would make 10,000
            # columns, and a level that rare cannot name a segment anyway
            for level in values.value_counts(sort=True).index[:_MAX_LEVELS]:
                parts.append((values == level).astype("float64").where(values.notna()))
                keys.append((column, level))
        else:
            parts.append(pd.to_numeric(table[column], errors="coerce").astype("float64"))
            keys.append((column, None))
    wide = pd.concat(parts, axis=1, ignore_index=True) if parts else pd.DataFrame(index=table.index)
    return wide, keys


#: categorical levels per column that can name or describe a segment (the most common ones)
_MAX_LEVELS = 50


@dataclass(frozen=True)
class _Trait:
    """One way a segment stands apart: a numeric feature high or low, a 0/1 feature's side, or
    a categorical level over-represented."""

    feature: str
    kind: str  # "numeric" | "binary" | "categorical"
    #: standard deviations from the population; the sign says high or low
    z: float
    #: the segment's mean (numeric) or the share of its customers at ``level``
    value: float
    #: the same measure over all customers
    overall: float
    #: the categorical level, or 1 / 0 for the side of a 0/1 column the segment leans to
    level: object = None
    #: the column's yes/no pair (one, zero) when its levels are one
    yes_no: tuple[str, str] | None = None


def _yes_no(levels: list[object]) -> tuple[str, str] | None:
    """(one, zero) when a categorical's levels are a yes/no-like pair (never 1/0 codes)."""
    from segmint.recipes.attributes import _BINARY_PAIRS

    lowered = {str(level).lower(): str(level) for level in levels}
    for one, zero in _BINARY_PAIRS:
        if not one.isdigit() and set(lowered) == {one, zero}:
            return lowered[one], lowered[zero]
    return None


@dataclass(frozen=True)
class _Basis:
    """What every labeling's traits of one table are measured against: the table as 0/1
    indicators and numbers (see :func:`_indicators`), clipped, with population means and
    standard deviations."""

    keys: list[tuple[str, object]]
    wide: np.ndarray
    clipped: np.ndarray
    mean: np.ndarray
    std: np.ndarray  # NaN where a column is constant
    raw_mean: np.ndarray
    yes_no: dict[str, tuple[str, str] | None]


def _basis(table: pd.DataFrame, types: dict[str, str]) -> _Basis:
    wide, keys = _indicators(table, types)
    numeric = [j for j, (feature, level) in enumerate(keys)
               if level is None and types.get(feature) != "binary"]
    clipped = wide.copy()
    if numeric:
        low, high = wide[numeric].quantile(0.01), wide[numeric].quantile(0.99)
        clipped[numeric] = wide[numeric].clip(low, high, axis=1)
    yes_no = {feature: _yes_no(list(pd.unique(table[feature].dropna())))
              for feature in table.columns if types[feature] == "categorical"}
    return _Basis(keys, wide.to_numpy(dtype="float64").reshape(len(table), len(keys)),
                  clipped.to_numpy(dtype="float64").reshape(len(table), len(keys)),
                  clipped.mean().to_numpy(dtype="float64"),
                  clipped.std(ddof=0).replace(0, np.nan).to_numpy(dtype="float64"),
                  wide.mean().to_numpy(dtype="float64"), yes_no)


def _traits(table: pd.DataFrame, labels: np.ndarray, types: dict[str, str]) -> dict[int, list[_Trait]]:
    """Per segment (noise included), every way it stands apart, strongest first.

    A numeric feature's strength is how many population standard deviations the segment's mean
    is from the population's, both taken on values clipped to the 1st-99th percentiles so that
    a few extreme customers do not make every other segment look typical; a feature whose
    clipped and raw means disagree on the direction is left out. A 0/1 column or a categorical
    level is measured the same way on its 0/1 indicator; a level counts only when
    over-represented, and only a column's strongest level counts.
    """
    return _traits_many(_basis(table, types), group([labels]), types)[0]


def _traits_many(basis: _Basis, groups: Groups, types: dict[str, str]
                 ) -> list[dict[int, list[_Trait]]]:
    """:func:`_traits` of every labeling in ``groups``, from one pass over the table."""
    by_segment, _ = groups.means(basis.clipped)
    raw_by_segment, _ = groups.means(basis.wide)
    with np.errstate(invalid="ignore", divide="ignore"):
        z_all = (by_segment - basis.mean) / basis.std
    kinds = ["categorical" if level is not None else
             "binary" if types.get(feature) == "binary" else "numeric"
             for feature, level in basis.keys]
    out = []
    for ids, rows in zip(groups.ids, groups.rows, strict=True):
        per: dict[int, list[_Trait]] = {}
        for r, seg in zip(range(rows.start, rows.stop), ids, strict=True):
            traits: dict[str, _Trait] = {}  # one per feature: a categorical's strongest level
            for j in np.flatnonzero(~np.isnan(z_all[r])):
                value = float(z_all[r, j])
                feature, level = basis.keys[j]
                kind = kinds[j]
                if kind == "numeric":
                    seg_mean, pop_mean = float(raw_by_segment[r, j]), float(basis.raw_mean[j])
                    if np.sign(seg_mean - pop_mean) != np.sign(value):
                        continue
                    trait = _Trait(feature, kind, value, seg_mean, pop_mean)
                elif kind == "binary":
                    share, overall = float(by_segment[r, j]), float(basis.mean[j])
                    side = 1 if value > 0 else 0
                    trait = _Trait(feature, kind, value, share if side else 1 - share,
                                   overall if side else 1 - overall, level=side)
                else:
                    if value <= 0:
                        continue
                    trait = _Trait(feature, kind, value, float(by_segment[r, j]),
                                   float(basis.mean[j]), level=level,
                                   yes_no=basis.yes_no.get(feature))
                if feature not in traits or abs(trait.z) > abs(traits[feature].z):
                    traits[feature] = trait
            per[int(seg)] = sorted(traits.values(), key=lambda t: -abs(t.z))
        out.append(per)
    return out


def _binary_phrases(feature: object) -> tuple[str, str]:
    """What having a 0/1 feature and not having it are called: housing -> with / without a
    housing loan; is_active -> active / not active; anything else with / without <its words>."""
    words = _words(feature)
    stems = {_stem(word) for word in words}
    for spelling, yes, no in _BINARY_WORDS:
        if spelling in stems:
            return yes, no
    if words and words[0] == "is" and len(words) > 1:
        rest = " ".join(words[1:])
        return rest, f"not {rest}"
    if words and words[0] in ("has", "have", "with") and len(words) > 1:
        words = words[1:]
    text = " ".join(words)
    return f"with {text}", f"without {text}"


def _plural(word: str) -> str:
    # job levels read as people: "technicians"; adjectives ("retired", "blue-collar") stay
    if not re.fullmatch(r"[a-z]+", word) or word.endswith(("s", "ed", "ment", "ing", "collar")):
        return word
    return word + ("es" if word.endswith(("sh", "ch", "x")) else "s")


def _level_phrase(feature: object, level: object, yes_no: tuple[str, str] | None) -> str:
    """A categorical level in words: "blue-collar" for a job, "married", "tertiary education",
    "in Portugal", "region 3", "with a housing loan" for housing = yes."""
    text = str(level).strip()
    if yes_no is not None:
        yes, no = _binary_phrases(feature)
        return yes if text == yes_no[0] else no
    words = _words(feature)
    stems = {_stem(word) for word in words}
    label = " ".join(words)
    if text.lower() in _UNKNOWN_LEVELS:
        return f"{label} unknown"
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return f"{label} {text}"
    text = text.rstrip(".").replace("_", " ").strip()
    if stems & _ROLE_WORDS:
        return _plural(text)
    if stems & _PLAIN_WORDS:
        return text
    if stems & _PLACE_WORDS:
        return f"in {text}"
    return f"{text} {label}"


def _share_phrase(trait: _Trait) -> str:
    """A 0/1 side or a level with how much of the segment it covers: all but a few (plain),
    most ("mostly ..."), or fewer than half but more than overall ("often ...")."""
    if trait.kind == "binary":
        yes, no = _binary_phrases(trait.feature)
        phrase = yes if trait.level == 1 else no
    else:
        phrase = _level_phrase(trait.feature, trait.level, trait.yes_no)
    if trait.value >= 0.9:
        return phrase
    return f"{'mostly' if trait.value > 0.5 else 'often'} {phrase}"


def _name_part(trait: _Trait) -> str:
    if trait.kind != "numeric":
        return _share_phrase(trait)
    concept = _concept(trait.feature)
    if concept is None:
        words = " ".join(_words(trait.feature))
        return f"high {words}" if trait.z > 0 else f"low {words}"
    return concept.high if trait.z > 0 else concept.low


def _chosen(traits: list[_Trait], top: int, threshold: float) -> list[tuple[_Trait, str]]:
    """The traits that name a segment, with their words: the ``top`` strongest past
    ``threshold``, skipping one that says what an earlier one already said."""
    chosen: list[tuple[_Trait, str]] = []
    for trait in traits:
        if len(chosen) == top or abs(trait.z) < threshold:
            break
        words = _name_part(trait)
        if all(words != said for _, said in chosen):
            chosen.append((trait, words))
    return chosen


def _unique(names: dict[int, str]) -> dict[int, str]:
    seen = Counter(names.values())
    return {seg: f"{name} ({seg})" if seen[name] > 1 else name for seg, name in names.items()}


def _names(traits: dict[int, list[_Trait]], top: int, threshold: float) -> dict[int, str]:
    names = {}
    for seg, segment_traits in traits.items():
        if seg < 0:
            names[seg] = NOISE_NAME
            continue
        words = [part for _, part in _chosen(segment_traits, top, threshold)]
        names[seg] = ", ".join(words) if words else "typical"
    return _unique(names)


def name_segments(table: pd.DataFrame, labels: np.ndarray, *, types: dict[str, str] | None = None,
                  top: int = NAME_PARTS, threshold: float = THRESHOLD) -> dict[int, str]:
    """Name each segment, in a marketer's words, by the features that set it apart most.

    A numeric feature counts when the segment's mean is at least ``threshold`` population
    standard deviations from the population mean (both on values clipped to the 1st-99th
    percentiles); a 0/1 feature or a categorical level counts when its share in the segment
    is that far from its share overall (a level only when over-represented). The ``top``
    largest name the segment:

    - numeric features by what their name means: ``recency_days``, ``Recency`` or
      ``days_since_last_order`` high is "lapsed", low "recent"; spend, revenue, frequency,
      orders, products, returns, balance, age ("older"), income, tenure ("long-standing") and
      others likewise; any other column "high <its words>" / "low <its words>";
    - 0/1 features as having it or not: "with a housing loan", "in default", "with <words>";
    - categorical levels by the level: "blue-collar" for a job, "married", "tertiary
      education", "with a housing loan" for ``housing = yes``;

    a 0/1 side or a level shared by fewer than 90% of the segment reads "mostly ..." (at least
    half) or "often ..." (fewer, but more than overall). Segments with no such feature are
    "typical"; noise (segment < 0) is :data:`NOISE_NAME`. Two segments with the same words get
    their number after them.

    Examples
    --------
    >>> t = pd.DataFrame({"gross_revenue": [10.0, 12.0, 1000.0], "recency_days": [300.0, 280.0, 2.0]})
    >>> name_segments(t, np.array([0, 0, 1]))
    {0: 'low revenue, lapsed', 1: 'high revenue, recent'}
    >>> t = pd.DataFrame({"job": ["retired", "student", "student", "admin."],
    ...                   "housing": ["no", "yes", "yes", "no"]})
    >>> name_segments(t, np.array([0, 1, 1, 0]))
    {0: 'without a housing loan, often retired', 1: 'students, with a housing loan'}
    """
    labels = np.asarray(labels)
    return _names(_traits(table, labels, _types(table, types)), top, threshold)


def _percent(fraction: float) -> str:
    """62%, 5.4%, 0.3%: whole percents from 10% up, one decimal below."""
    return f"{fraction:.0%}" if abs(fraction) >= 0.1 else f"{fraction:.1%}"


def _number(value: float) -> str:
    """1,234 / 58.3 / 9.9 / 0.042: a figure a reader takes in at a glance."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2g}"


def _unit(feature: object) -> str:
    stems = {_stem(word) for word in _words(feature)}
    for unit in ("day", "week", "month", "year"):
        if unit in stems:
            return f" {unit}s"
    return ""


def _clause(trait: _Trait) -> str:
    """One trait with its figures: "spend 3.2x the average", "average age 58 vs 41 overall",
    "mostly blue-collar (62% vs 21% overall)"."""
    if trait.kind != "numeric":
        return f"{_share_phrase(trait)} ({_percent(trait.value)} vs {_percent(trait.overall)} overall)"
    concept = _concept(trait.feature)
    noun = concept.noun if concept is not None else " ".join(_words(trait.feature))
    if trait.value == 0 and trait.overall > 0 and concept is not None and concept.ratio:
        return f"no {noun}"
    ratio = trait.value / trait.overall if trait.overall > 0 and trait.value >= 0 else np.nan
    if concept is not None and concept.ratio and not np.isnan(ratio) \
            and not 0.95 <= ratio < 1.05:
        times = f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.1f}" if ratio >= 0.1 else f"{ratio:.2f}"
        return f"{noun} {times}x the average"
    unit = _unit(trait.feature)
    return f"average {noun} {_number(trait.value)}{unit} vs {_number(trait.overall)} overall"


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _descriptions(traits: dict[int, list[_Trait]], table: pd.DataFrame, labels: np.ndarray,
                  revenue: str | None) -> dict[int, str]:
    sizes = pd.Series(labels).value_counts()
    shares: dict[int, float] | None = None
    if revenue is not None:
        if revenue not in table.columns:
            raise ValueError(f"revenue column {revenue!r} is not in the table")
        spend = pd.to_numeric(table[revenue]).astype("float64").to_numpy()
        total = np.nansum(spend)
        shares = (pd.Series(spend).groupby(labels).sum() / total).to_dict() if total else None
    return _described(traits, {int(s): int(c) for s, c in sizes.items()}, len(labels), shares)


def _described(traits: dict[int, list[_Trait]], sizes: dict[int, int], n: int,
               shares: dict[int, float] | None) -> dict[int, str]:
    """Each segment's sentence, from its traits, its size and its share of revenue."""
    out = {}
    for seg, segment_traits in traits.items():
        size = sizes[seg]
        who = f"{size:,} customer{'s' if size != 1 else ''} ({size / n:.1%})"
        if seg < 0:
            text = f"{who} set apart as outliers: too unlike the rest to join a segment, so not clustered"
        else:
            clauses = [_clause(trait) for trait, _ in _chosen(segment_traits, NAME_PARTS, THRESHOLD)]
            text = f"{who}: {_and(clauses)}" if clauses else f"{who}, close to the average on every feature"
        if shares is not None:
            text += f"; {_percent(float(shares[seg]))} of revenue"
        out[seg] = text + "."
    return out


def describe_segments(table: pd.DataFrame, labels: np.ndarray, *, types: dict[str, str] | None = None,
                      revenue: str | None = None) -> dict[int, str]:
    """One sentence per segment: its size and share of customers, then what sets it apart
    (the features that name it, see :func:`name_segments`) with figures: a numeric feature as
    a ratio to the average ("spend 3.2x the average") or, where a ratio reads oddly (age,
    recency, tenure, a column with negative values), as its mean against the overall mean; a
    0/1 feature or a categorical level as its share against the overall share. With
    ``revenue`` (a column of ``table`` holding each customer's spend) the segment's share of
    the total revenue ends the sentence; without one there is no revenue figure. Noise
    (segment < 0) is said to be set apart and not clustered.

    Examples
    --------
    >>> t = pd.DataFrame({"gross_revenue": [10.0, 30.0, 20.0, 940.0],
    ...                   "job": ["admin.", "admin.", "student", "retired"]})
    >>> d = describe_segments(t, np.array([0, 0, 0, 1]), revenue="gross_revenue")
    >>> d[1]
    '1 customer (25.0%): retired (100% vs 25% overall) and revenue 3.8x the average; 94% of revenue.'
    >>> d[0]
    '3 customers (75.0%): revenue 0.08x the average and mostly admins (67% vs 50% overall); 6.0% of revenue.'
    """
    labels = np.asarray(labels)
    return _descriptions(_traits(table, labels, _types(table, types)), table, labels, revenue)


def profile(table: pd.DataFrame, labels: np.ndarray, *, types: dict[str, str] | None = None,
            revenue: str | None = None) -> pd.DataFrame:
    """One row per segment: segment, name and description (see :func:`name_segments` and
    :func:`describe_segments`), size, share and, per column of ``table``:

    - numeric and binary columns: ``mean_``, ``median_`` and ``lift_`` (segment mean /
      population mean; for a 0/1 column the mean is the share of ones);
    - categorical columns: ``top_<column>`` (the segment's most common level),
      ``topshare_<column>`` (its share in the segment) and ``lift_<column>`` (that share / the
      level's share overall). A tie for the most common level goes to the level more
      common overall.

    With ``revenue`` (a column of ``table`` holding each customer's total spend, as the recipe
    declares it), ``revenue_share`` is the segment's part of the total and ``insiders`` marks
    the segment with the highest mean revenue (noise excluded). Without one there are no such
    columns: no revenue figure is made up from another column.

    Examples
    --------
    >>> t = pd.DataFrame({"gross_revenue": [10.0, 30.0, 160.0]})
    >>> p = profile(t, np.array([0, 0, 1]), revenue="gross_revenue")
    >>> p[["segment", "size", "revenue_share", "insiders"]].values.tolist()
    [[0, 2, 0.2, False], [1, 1, 0.8, True]]
    >>> float(p.loc[1, "lift_gross_revenue"])
    2.4
    >>> "revenue_share" in profile(t, np.array([0, 0, 1])).columns
    False
    """
    return profiles(table, [labels], types=types, revenue=revenue)[0]


def profiles(table: pd.DataFrame, labelings: Sequence[np.ndarray] | Groups, *,
             types: dict[str, str] | None = None, revenue: str | None = None) -> list[pd.DataFrame]:
    """:func:`profile` of each labeling of ``table``, computed together: the table is converted
    and measured once, and the per-segment sums of every labeling come from one sparse
    product (:mod:`segmint.explain._grouped`), so a sweep's many solutions cost little more
    than one. ``labelings`` may be their :func:`~segmint.explain._grouped.group` already
    made (for :func:`centroids_long_many` too).

    Examples
    --------
    >>> t = pd.DataFrame({"gross_revenue": [10.0, 30.0, 160.0]})
    >>> a, b = profiles(t, [np.array([0, 0, 1]), np.array([0, 1, 1])], revenue="gross_revenue")
    >>> a["revenue_share"].tolist(), b["revenue_share"].tolist()
    ([0.2, 0.8], [0.05, 0.95])
    """
    types = _types(table, types)
    if revenue is not None and revenue not in table.columns:
        raise ValueError(f"revenue column {revenue!r} is not in the table")
    groups = _grouped(labelings)
    if not groups.ids:
        return []
    n = len(table)
    traits = _traits_many(_basis(table, types), groups, types)
    sizes = groups.sizes()
    spend_by: np.ndarray | None = None
    if revenue is not None:
        spend = pd.to_numeric(table[revenue]).astype("float64").to_numpy()
        total = float(np.nansum(spend))
        spend_by = groups.sums(np.nan_to_num(spend, nan=0.0))[:, 0]
        spend_mean, _ = groups.means(spend)
    columns: list[dict[str, np.ndarray | list]] = [{} for _ in groups.ids]
    numeric = {feature: pd.to_numeric(table[feature]).astype("float64").to_numpy()
               for feature in table.columns if types[feature] != "categorical"}
    if numeric:
        # every numeric column's sums in one pass over the customers (each column's sums are
        # added in the same order as alone); medians (sorts and compiled passes, which run
        # without the GIL) on the run's threads
        all_means, _ = groups.means(np.column_stack(list(numeric.values())))
        with ThreadPoolExecutor(max_workers=threads()) as pool:
            all_medians = dict(zip(numeric, pool.map(groups.medians, numeric.values()),
                                   strict=True))
        position = {feature: i for i, feature in enumerate(numeric)}
    for feature in table.columns:
        if types[feature] == "categorical":
            _categorical_columns(table[feature], feature, groups, sizes, columns)
            continue
        numbers = numeric[feature]
        means = all_means[:, [position[feature]]]
        medians = all_medians[feature]
        pop = float(np.nanmean(numbers)) if (~np.isnan(numbers)).any() else np.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            lifts = means[:, 0] / pop if pop != 0 else np.full(len(means), np.nan)
        for j, rows in enumerate(groups.rows):
            columns[j][f"mean_{feature}"] = means[rows, 0]
            columns[j][f"median_{feature}"] = medians[rows]
            columns[j][f"lift_{feature}"] = lifts[rows]
    out = []
    for j, (ids, rows) in enumerate(zip(groups.ids, groups.rows, strict=True)):
        segs = [int(s) for s in ids]
        size = sizes[rows].astype("int64")
        shares = None
        if spend_by is not None:
            shares = dict(zip(segs, (spend_by[rows] / total).tolist(), strict=True)) \
                if total else None
        names = _names(traits[j], NAME_PARTS, THRESHOLD)
        descriptions = _described(traits[j], dict(zip(segs, size.tolist(), strict=True)), n,
                                  shares)
        frame: dict[str, Any] = {"segment": np.asarray(segs, dtype="int64"),
                                 "name": [names[s] for s in segs],
                                 "description": [descriptions[s] for s in segs],
                                 "size": size, "share": size / n}
        if spend_by is not None:
            frame["revenue_share"] = spend_by[rows] / total if total \
                else np.full(len(segs), np.nan)
            mean_revenue = np.where(ids >= 0, spend_mean[rows, 0], np.nan)
            top = int(np.nanargmax(mean_revenue)) if (~np.isnan(mean_revenue)).any() else None
            frame["insiders"] = [i == top for i in range(len(segs))]
        # one frame from all its columns: inserting them one by one cost 0.5 s of the demo's
        # 72 profiles
        out.append(pd.DataFrame({**frame, **columns[j]}))
    return out


def _grouped(labelings: Sequence[np.ndarray] | Groups) -> Groups:
    return labelings if isinstance(labelings, Groups) else \
        group([np.asarray(labels) for labels in labelings])


def _categorical_columns(values: pd.Series, feature: str, groups: Groups, sizes: np.ndarray,
                         columns: list[dict[str, np.ndarray | list]]) -> None:
    """``top_``, ``topshare_`` and ``lift_`` of a categorical column for every labeling: the
    segment's most common level (ties: the level more common overall), its share among the
    segment's non-missing values, and that share over the level's share overall."""
    values = values.astype("object")
    overall = values.value_counts(normalize=True)  # most common first: the tie order
    levels = list(overall.index)
    codes = overall.index.get_indexer(values).astype(np.int64)  # -1: missing
    counts = _level_counts(codes, len(levels), groups)
    present = counts.sum(axis=1)
    top = counts.argmax(axis=1) if len(levels) else np.zeros(len(counts), dtype=np.int64)
    has = present > 0
    share = np.full(len(counts), np.nan)
    lift = np.full(len(counts), np.nan)
    if len(levels):
        share[has] = counts[has, top[has]] / present[has]
        lift[has] = share[has] / overall.to_numpy(dtype="float64")[top[has]]
    for j, rows in enumerate(groups.rows):
        columns[j][f"top_{feature}"] = [str(levels[top[r]]) if has[r] else None
                                        for r in range(rows.start, rows.stop)]
        columns[j][f"topshare_{feature}"] = share[rows]
        columns[j][f"lift_{feature}"] = lift[rows]


def _level_counts(codes: np.ndarray, n_levels: int, groups: Groups) -> np.ndarray:
    """``(segments, levels)`` counts of each level (codes, -1 missing) in every segment."""
    from scipy import sparse

    keep = codes >= 0
    indicator = sparse.csr_matrix((np.ones(int(keep.sum())), (np.flatnonzero(keep), codes[keep])),
                                  shape=(len(codes), max(n_levels, 1)))
    return groups.sums(indicator)[:, :n_levels]


def centroids_long(table: pd.DataFrame, labels: np.ndarray, *,
                   types: dict[str, str] | None = None) -> pd.DataFrame:
    """BigQuery ML's ML.CENTROIDS shape: one row per (segment, feature) with the segment's mean
    in the feature's own units, and for a categorical feature one row per (segment, feature,
    category) with the category's share in the segment (BigQuery's ``categorical_value``).
    Noise (-1) is left out.

    Examples
    --------
    >>> t = pd.DataFrame({"a": [1.0, 3.0, 10.0], "c": ["x", "y", "y"]})
    >>> centroids_long(t, np.array([0, 0, 1])).values.tolist()
    [[0, 'a', None, 2.0], [0, 'c', 'x', 0.5], [0, 'c', 'y', 0.5], [1, 'a', None, 10.0], [1, 'c', 'y', 1.0]]
    """
    return centroids_long_many(table, [labels], types=types)[0]


def centroids_long_many(table: pd.DataFrame, labelings: Sequence[np.ndarray] | Groups, *,
                        types: dict[str, str] | None = None) -> list[pd.DataFrame]:
    """:func:`centroids_long` of each labeling (or of a :class:`Groups` already made), from
    one pass over the table."""
    types = _types(table, types)
    groups = _grouped(labelings)
    if not groups.ids:
        return []
    # per feature: ("numeric", means) or ("categorical", level names in sorted order, shares)
    measured: list[tuple[str, list[str], np.ndarray]] = []
    numeric = [feature for feature in table.columns if types[feature] != "categorical"]
    if numeric:  # every numeric column's sums in one pass
        all_means, _ = groups.means(np.column_stack(
            [pd.to_numeric(table[feature]).astype("float64").to_numpy() for feature in numeric]))
    for feature in table.columns:
        if types[feature] == "categorical":
            values = table[feature].astype("object")
            index = values.value_counts().sort_index().index
            levels = list(index)
            codes = index.get_indexer(values).astype(np.int64)  # -1: missing
            counts = _level_counts(codes, len(levels), groups)
            with np.errstate(invalid="ignore", divide="ignore"):
                shares = counts / counts.sum(axis=1, keepdims=True)
            measured.append((feature, [str(level) for level in levels], np.where(counts > 0, shares,
                                                                                 np.nan)))
        else:
            measured.append((feature, [], all_means[:, numeric.index(feature)]))
    out = []
    for ids, rows in zip(groups.ids, groups.rows, strict=True):
        records: list[tuple[int, str, str | None, float]] = []
        for r, seg in zip(range(rows.start, rows.stop), ids, strict=True):
            if seg < 0:
                continue
            for feature, levels, values in measured:
                if types[feature] == "categorical":
                    records += [(int(seg), feature, level, float(values[r, i]))
                                for i, level in enumerate(levels) if not np.isnan(values[r, i])]
                else:
                    records.append((int(seg), feature, None, float(values[r])))
        frame = pd.DataFrame(records, columns=["segment", "feature", "category", "value"])
        frame["category"] = frame["category"].astype("object").where(frame["category"].notna(),
                                                                     None)
        out.append(frame.astype({"segment": "int64"}))
    return out
