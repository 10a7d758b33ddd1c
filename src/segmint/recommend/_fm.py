"""The factorization machine's numbers: feature blocks, myFM's Gibbs sampler, and its samples
taken apart per user, per item and per day.

An FM scores a row x as ``w0 + <w, x> + sum_{f<g} <V_f, V_g> x_f x_g``. Every row here is the
concatenation of three blocks: the day of the rating (one-hot, optional), the user's block (its
one-hot, optionally the items it rated (SVD++'s implicit feedback) and its side features) and the
item's block (its one-hot, optionally the users who rated it, its side features). With
``P_u = x_u V`` (a rank-r vector per user) the score splits exactly into

    user_bias[u] + item_bias[i] + <P_u, P_i> + day_bias[d] + <V_d, P_u + P_i>

where a block's bias is its linear part plus the pairwise terms inside the block (so it carries
``w0`` on the user side). That split is what :mod:`segmint.recommend.models` keeps of each Gibbs
sample: arrays per user / item / day, not myFM's objects, so scoring all items of a user is one
matrix product.

myFM's estimators (``MyFMRegressor.fit``) wrap the sampler in a tqdm progress bar written to
stderr; segmint's library never prints, so this module calls the sampler myFM's estimators call
(``myfm._myfm.create_train_fm``, with the same ``ConfigBuilder`` settings). Both names are
imported here and only here, checked by ``tests/recommend/test_models.py`` against myfm 0.4.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

# myFM's own sampler and its settings, as myfm.base.MyFMBase._fit drives them (myfm 0.4.0)
from myfm._myfm import ConfigBuilder, RelationBlock, TaskType, create_train_fm

__all__ = ["Blocks", "Samples", "entity_rows", "train", "day_index"]


@dataclass
class Blocks:
    """The sparse feature rows of every user and item, and each column's prior group."""

    user_rows: sp.csr_matrix
    item_rows: sp.csr_matrix
    user_groups: list[int]
    item_groups: list[int]


@dataclass
class Samples:
    """The kept Gibbs samples, taken apart: S samples of each entity's bias and factor sum."""

    user_bias: np.ndarray     # (S, n_users), w0 included
    user_factors: np.ndarray  # (S, n_users, r)
    item_bias: np.ndarray     # (S, n_items)
    item_factors: np.ndarray  # (S, n_items, r)
    day_bias: np.ndarray      # (S, n_days)
    day_factors: np.ndarray   # (S, n_days, r)


def _implicit_rows(codes_a: np.ndarray, codes_b: np.ndarray, n_a: int, n_b: int) -> sp.csr_matrix:
    # SVD++'s implicit feedback: row a lists the b it met, each 1/sqrt(count) (myFM's examples)
    m = sp.csr_matrix((np.ones(len(codes_a)), (codes_a, codes_b)), shape=(n_a, n_b))
    m.data[:] = 1.0
    counts = np.diff(m.indptr)
    scale = 1.0 / np.sqrt(np.maximum(counts, 1))
    return sp.csr_matrix(sp.diags(scale) @ m)


def entity_rows(n: int, partners: tuple[np.ndarray, np.ndarray, int] | None,
                side: list[np.ndarray], group0: int) -> tuple[sp.csr_matrix, list[int]]:
    """One entity kind's block: one-hot, then implicit partners, then side columns.

    ``partners`` is (own codes, partner codes, n partners) of the training rows; ``side`` holds
    dense (n, k) arrays, one prior group each. Returns the rows and each column's group.
    """
    parts = [sp.identity(n, format="csr")]
    groups = [group0] * n
    group = group0
    if partners is not None:
        own, other, n_other = partners
        parts.append(_implicit_rows(own, other, n, n_other))
        group += 1
        groups += [group] * n_other
    for block in side:
        parts.append(sp.csr_matrix(block))
        group += 1
        groups += [group] * block.shape[1]
    return sp.csr_matrix(sp.hstack(parts, format="csr"), dtype=np.float64), groups


def day_index(days: np.ndarray, known_days: np.ndarray) -> np.ndarray:
    """The index of the latest known day on or before each day (the first one before them all);
    a missing day (-1) is the last known day, the model's 'now'."""
    idx = np.searchsorted(known_days, days, side="right") - 1
    idx = np.clip(idx, 0, len(known_days) - 1)
    idx[days < 0] = len(known_days) - 1
    return idx


def _block_terms(rows: sp.csr_matrix, w: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # a block's linear part plus its pairwise terms among its own features, and its factor sum
    P = np.asarray(rows @ V)
    sq = rows.multiply(rows)
    inner = 0.5 * (np.einsum("nr,nr->n", P, P) - np.asarray(sq @ (V * V).sum(axis=1)).ravel())
    return np.asarray(rows @ w).ravel() + inner, P


def train(blocks: Blocks, users: np.ndarray, items: np.ndarray, day_codes: np.ndarray | None,
          n_days: int, y: np.ndarray, *, task: str, rank: int, n_iter: int, n_kept: int,
          init_stdev: float, seed: int) -> Samples:
    """Run myFM's Gibbs sampler on the rows (users[k], items[k], day_codes[k]) -> y[k] and take
    the kept samples apart per entity (see the module's docstring)."""
    n = len(y)
    if day_codes is None:
        X = sp.csr_matrix((n, 0), dtype=np.float64)
        day_groups: list[int] = []
    else:
        X = sp.csr_matrix((np.ones(n), (np.arange(n), day_codes)), shape=(n, n_days))
        day_groups = [max(blocks.item_groups) + 1] * n_days
    # unique rows per block: the RelationBlock holds each user's row once
    relations = [RelationBlock(users.astype(np.int64), blocks.user_rows),
                 RelationBlock(items.astype(np.int64), blocks.item_rows)]
    config = ConfigBuilder()
    config.set_alpha_0(1.0)
    config.set_beta_0(1.0)
    config.set_gamma_0(1.0)
    config.set_mu_0(0.0)
    config.set_reg_0(1.0)
    config.set_fit_w0(True)
    config.set_fit_linear(True)
    config.set_group_index(day_groups + blocks.user_groups + blocks.item_groups)
    config.set_n_iter(n_iter)
    config.set_n_kept_samples(n_kept)
    config.set_task_type(TaskType.CLASSIFICATION if task == "classification" else TaskType.REGRESSION)
    target = (y * 2.0 - 1.0) if task == "classification" else y
    predictor, _ = create_train_fm(rank, init_stdev, X, relations, np.asarray(target, np.float64),
                                   seed, config.build(), lambda *args: False)
    n_d = 0 if day_codes is None else n_days
    n_u = blocks.user_rows.shape[1]
    out: dict[str, list[np.ndarray]] = {k: [] for k in Samples.__dataclass_fields__}
    for fm in predictor.samples:
        w, V = np.asarray(fm.w), np.asarray(fm.V)
        ub, up = _block_terms(blocks.user_rows, w[n_d:n_d + n_u], V[n_d:n_d + n_u])
        ib, ip = _block_terms(blocks.item_rows, w[n_d + n_u:], V[n_d + n_u:])
        out["user_bias"].append(ub + fm.w0)
        out["user_factors"].append(up)
        out["item_bias"].append(ib)
        out["item_factors"].append(ip)
        out["day_bias"].append(w[:n_d])
        out["day_factors"].append(V[:n_d])
    return Samples(**{k: np.stack(v) for k, v in out.items()})


def pair_scores(s: Samples, users: np.ndarray, items: np.ndarray,
                days: np.ndarray | None) -> np.ndarray:
    """Each sample's score of each (user, item, day) row: (S, n_rows)."""
    U = s.user_factors[:, users]
    Iv = s.item_factors[:, items]
    out = s.user_bias[:, users] + s.item_bias[:, items] + np.einsum("snr,snr->sn", U, Iv)
    if days is not None:
        out += s.day_bias[:, days] + np.einsum("snr,snr->sn", s.day_factors[:, days], U + Iv)
    return out
