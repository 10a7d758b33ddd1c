"""Top-N items for every customer in one batch, and what each segment buys and is recommended.

The seed (an AWS lab) ranks with a k-NN over the factorization machine's factors: item vectors
``[V_i, w_i]`` (latent factors and linear weight), user vectors ``[V_u, 1]``, inner product
``<V_u, V_i> + w_i``: the FM's score for (u, i) less the terms that are the same for every item
of a user (w0, w_u), so the order per user is the model's. :func:`top_n` takes those matrices
(or any model's user x item scores via :func:`top_n_of_scores`) and returns, for every user, the
``n`` best items it has not seen, exactly (BLAS matrix product per block of users, then
``argpartition``), in bounded memory. With a catalogue above :data:`FAISS_FROM` items it asks
faiss's exact inner-product index (``IndexFlatIP``) for ``n`` + the most a user has seen,
which gives the same answer without the full score matrix of a block.

Ties are broken by item code, so the result repeats exactly.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segmint.errors import InputError

__all__ = ["top_n", "top_n_of_scores", "recommendations_frame", "segment_top_items",
           "FAISS_FROM"]

FAISS_FROM = 200_000  # items; below it a block of exact scores is cheaper than an index
_BLOCK_CELLS = 20_000_000  # user x item scores held at once (160 MB of float64)


def _seen_rows(seen: sp.spmatrix | None, n_users: int, n_items: int) -> sp.csr_matrix | None:
    if seen is None:
        return None
    seen = sp.csr_matrix(seen)
    if seen.shape != (n_users, n_items):
        raise InputError(f"the seen-items matrix is {seen.shape[0]} x {seen.shape[1]}; the "
                         f"factors are {n_users} users x {n_items} items")
    return seen


def _best(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n highest of each row, highest first, ties by column; -inf (excluded) never
    outranks a real score and is returned only when a row has fewer than n real ones."""
    n = min(n, scores.shape[1])
    if n == 0:
        return np.empty((len(scores), 0), dtype=np.int64), np.empty((len(scores), 0))
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n] if n < scores.shape[1] else \
        np.tile(np.arange(scores.shape[1]), (len(scores), 1))
    # argpartition leaves ties at the n-th place to chance: take every column tied with it
    kth = np.take_along_axis(scores, part, axis=1).min(axis=1)
    out_idx = np.empty((len(scores), n), dtype=np.int64)
    out_val = np.empty((len(scores), n))
    for r in range(len(scores)):
        row = scores[r]
        candidates = np.flatnonzero(row >= kth[r]) if np.isfinite(kth[r]) else \
            np.concatenate([np.flatnonzero(np.isfinite(row)), np.flatnonzero(~np.isfinite(row))])
        order = np.lexsort((candidates, -row[candidates]))[:n]
        out_idx[r] = candidates[order]
        out_val[r] = row[candidates[order]]
    return out_idx, out_val


def top_n_of_scores(scores: np.ndarray, n: int = 100, *, seen: sp.spmatrix | None = None,
                    rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best unseen items of each row of a users x items score matrix.

    ``rows`` are the user codes of the rows of ``scores`` (default 0..len-1), to find their
    seen items. Returns (items, scores), each rows x n, best first; a user with fewer than n
    unseen items gets -inf scores at the end (items it has seen, never recommended as such:
    check ``np.isfinite``).

    Examples
    --------
    >>> scores = np.array([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1]])
    >>> seen = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 0]]))
    >>> items, values = top_n_of_scores(scores, 2, seen=seen)
    >>> items.tolist(), values.tolist()
    ([[2, 0], [0, 1]], [[0.5, 0.1], [0.3, 0.2]])
    """
    scores = np.array(scores, dtype=np.float64)  # a copy: seen items are set to -inf
    if scores.ndim != 2:
        raise InputError("scores must be a users x items matrix")
    rows = np.arange(len(scores)) if rows is None else np.asarray(rows)
    if seen is not None:
        seen = sp.csr_matrix(seen)
        if seen.shape[1] != scores.shape[1]:
            raise InputError(f"the seen-items matrix has {seen.shape[1]} items; the scores "
                             f"{scores.shape[1]}")
        block = seen[rows]
        r, c = block.nonzero()
        scores[r, c] = -np.inf
    return _best(scores, n)


def top_n(user_vectors: np.ndarray, item_vectors: np.ndarray, n: int = 100, *,
          seen: sp.spmatrix | None = None, users: np.ndarray | None = None,
          use_faiss: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every user's ``n`` best unseen items by inner product of the factors, in one batch.

    Parameters
    ----------
    user_vectors : (n_users, d) -- for an FM, ``[V_u, 1]``
    item_vectors : (n_items, d) -- for an FM, ``[V_i, w_i]``
    n : items per user (the seed: 100)
    seen : users x items, nonzero where the user already rated or bought the item (excluded)
    users : the user codes to recommend for (default every user)
    use_faiss : None chooses by catalogue size (:data:`FAISS_FROM`); True/False forces it

    Returns
    -------
    (items, scores) : each len(users) x n, best first, ties by item code

    Examples
    --------
    >>> U = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])      # [V_u, 1]
    >>> I = np.array([[2.0, 0.0, 0.1], [0.0, 3.0, 0.0], [1.0, 1.0, 0.5]])  # [V_i, w_i]
    >>> top_n(U, I, 2)[0].tolist()
    [[0, 2], [1, 2]]
    """
    U = np.ascontiguousarray(user_vectors, dtype=np.float64)
    V = np.ascontiguousarray(item_vectors, dtype=np.float64)
    if U.ndim != 2 or V.ndim != 2 or U.shape[1] != V.shape[1]:
        raise InputError(f"user vectors {U.shape} and item vectors {V.shape} must be matrices "
                         f"of the same width")
    if not (np.isfinite(U).all() and np.isfinite(V).all()):
        raise InputError("the factors hold NaN or infinite values: the model did not train")
    users = np.arange(len(U)) if users is None else np.asarray(users, dtype=np.int64)
    seen = _seen_rows(seen, len(U), len(V))
    if use_faiss is None:
        use_faiss = len(V) >= FAISS_FROM
    if use_faiss:
        return _top_n_faiss(U[users], V, n, seen, users)
    block = max(1, _BLOCK_CELLS // max(len(V), 1))
    items_out = np.empty((len(users), min(n, len(V))), dtype=np.int64)
    scores_out = np.empty(items_out.shape)
    for start in range(0, len(users), block):
        part = users[start:start + block]
        items_out[start:start + len(part)], scores_out[start:start + len(part)] = \
            top_n_of_scores(U[part] @ V.T, n, seen=seen, rows=part)
    return items_out, scores_out


def _top_n_faiss(U: np.ndarray, V: np.ndarray, n: int, seen: sp.csr_matrix | None,
                 users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """faiss's exact inner-product search (IndexFlatIP, float32), asked for n + the most items
    any user has seen, then the seen ones dropped; rescored in float64 for the order."""
    import faiss

    extra = int(np.diff(seen.indptr)[users].max()) if seen is not None and len(users) else 0
    k = min(n + extra, len(V))
    index = faiss.IndexFlatIP(V.shape[1])
    index.add(V.astype(np.float32))
    _, found = index.search(U.astype(np.float32), k)
    items_out = np.empty((len(users), min(n, len(V))), dtype=np.int64)
    scores_out = np.empty(items_out.shape)
    for r, user in enumerate(users):
        cand = found[r][found[r] >= 0]
        if seen is not None:
            cand = np.setdiff1d(cand, seen.indices[seen.indptr[user]:seen.indptr[user + 1]],
                                assume_unique=False)
        exact = V[cand] @ U[r]
        order = np.lexsort((cand, -exact))[: items_out.shape[1]]
        got = len(order)
        items_out[r, :got], scores_out[r, :got] = cand[order], exact[order]
        if got < items_out.shape[1]:  # fewer unseen items than n
            items_out[r, got:], scores_out[r, got:] = -1, -np.inf
    return items_out, scores_out


def recommendations_frame(items: np.ndarray, scores: np.ndarray, inter: Any,
                          users: np.ndarray | None = None) -> pd.DataFrame:
    """The top-N as a table: customer, rank (1 = best), item, score, title (when known).
    Places a user could not fill (fewer unseen items than N) are left out."""
    users = np.arange(items.shape[0]) if users is None else np.asarray(users)
    n = items.shape[1]
    user_col = np.repeat(users, n)
    flat_items, flat_scores = items.ravel(), scores.ravel()
    keep = np.isfinite(flat_scores) & (flat_items >= 0)
    frame = pd.DataFrame({
        "customer": inter.users.to_numpy()[user_col[keep]],
        "rank": np.tile(np.arange(1, n + 1), len(users))[keep],
        "item": inter.items.to_numpy()[flat_items[keep]],
        "score": flat_scores[keep],
    })
    if getattr(inter, "titles", None) is not None:
        frame["title"] = frame["item"].map(inter.titles)
    return frame


def segment_top_items(recommendations: pd.DataFrame, train: Any, segments: pd.Series,
                      n: int = 10) -> pd.DataFrame:
    """What each segment buys most (training interactions) and what the model recommends most
    to it (top-N lists), side by side: segment, source ('bought' | 'recommended'), rank, item,
    customers (how many of the segment's customers), share (of the segment's customers),
    title.

    ``segments`` maps customer id -> segment (name or id); customers without a segment are
    left out.
    """
    seg = segments.astype("string")
    seg.index = seg.index.astype("string")
    bought = pd.DataFrame({"customer": train.users.to_numpy()[train.frame["user"].to_numpy()],
                           "item": train.items.to_numpy()[train.frame["item"].to_numpy()]})
    parts = []
    for source, table in (("bought", bought), ("recommended", recommendations[["customer", "item"]])):
        table = table.assign(segment=table["customer"].astype("string").map(seg)).dropna(
            subset=["segment"])
        size = seg.value_counts()
        counts = (table.drop_duplicates(["segment", "customer", "item"])
                  .groupby(["segment", "item"]).size().rename("customers").reset_index())
        counts["share"] = counts["customers"] / counts["segment"].map(size).astype(float)
        counts = counts.sort_values(["segment", "customers", "item"], ascending=[True, False, True])
        counts["rank"] = counts.groupby("segment").cumcount() + 1
        parts.append(counts[counts["rank"] <= n].assign(source=source))
    out = pd.concat(parts, ignore_index=True)[["segment", "source", "rank", "item", "customers",
                                                "share"]]
    if getattr(train, "titles", None) is not None:
        out["title"] = out["item"].map(train.titles)
    return out.sort_values(["segment", "source", "rank"], ignore_index=True)
