"""Write the two synthetic example files in this folder (seeded: the same bytes every run).

- ``credit_card_customers.csv``: 300 made-up credit-card holders in the columns of Kaggle's
  "Credit Card Dataset for Clustering" (CC GENERAL), with a few missing CREDIT_LIMIT and
  MINIMUM_PAYMENTS values as that file has.
- ``cdnow_sample.txt`` and ``cdnow_sample_header.txt``: 200 made-up customers' CD purchases,
  1997-01-01 .. 1998-06-30, in the layout of the CDNOW_master.txt file (customer id, date
  yyyymmdd, number of CDs, dollar value of the line), without and with a header line.

No row comes from the real data sets. Run from anywhere: ``python examples/data/make_synthetic.py``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SEED = 20240601


def credit_card_customers(rng: np.random.Generator, n: int = 300) -> pd.DataFrame:
    # Spends are lognormal; about a quarter of holders buy nothing and half never take cash.
    buys = rng.random(n) > 0.23
    oneoff = np.where(buys & (rng.random(n) < 0.6), rng.lognormal(6.3, 1.3, n), 0.0)
    installments = np.where(buys & (rng.random(n) < 0.65), rng.lognormal(6.0, 1.1, n), 0.0)
    purchases = oneoff + installments
    cash_advance = np.where(rng.random(n) < 0.5, rng.lognormal(6.8, 1.2, n), 0.0)
    credit_limit = np.round(np.exp(rng.normal(8.3, 0.6, n)) / 50) * 50
    balance = np.minimum(rng.lognormal(6.8, 1.3, n), 1.2 * credit_limit)
    frequency = np.where(purchases > 0, rng.beta(1.2, 1.0, n), 0.0)
    frequency = np.round(np.ceil(frequency * 12) / 12, 6)  # share of the 12 months with a purchase
    payments = rng.lognormal(0.0, 0.5, n) * (purchases + cash_advance + 0.3 * balance) + 50
    minimum_payments = np.minimum(rng.lognormal(5.9, 1.0, n), balance + 10)
    prc_full_payment = np.where(rng.random(n) < 0.65, 0.0, np.round(np.ceil(rng.random(n) * 12) / 12, 6))
    tenure = np.where(rng.random(n) < 0.85, 12, rng.integers(6, 12, n))
    frame = pd.DataFrame({
        "CUST_ID": [f"C{10001 + i}" for i in range(n)],
        "BALANCE": np.round(balance, 2),
        "PURCHASES": np.round(oneoff, 2) + np.round(installments, 2),
        "ONEOFF_PURCHASES": np.round(oneoff, 2),
        "INSTALLMENTS_PURCHASES": np.round(installments, 2),
        "CASH_ADVANCE": np.round(cash_advance, 2),
        "PURCHASES_FREQUENCY": frequency,
        "CREDIT_LIMIT": credit_limit,
        "PAYMENTS": np.round(payments, 2),
        "MINIMUM_PAYMENTS": np.round(minimum_payments, 2),
        "PRC_FULL_PAYMENT": prc_full_payment,
        "TENURE": tenure.astype("int64"),
    })
    frame["PURCHASES"] = frame["PURCHASES"].round(2)
    # 2% of credit limits and 3% of minimum payments missing, as in CC GENERAL
    frame.loc[rng.choice(n, size=round(0.02 * n), replace=False), "CREDIT_LIMIT"] = np.nan
    frame.loc[rng.choice(n, size=round(0.03 * n), replace=False), "MINIMUM_PAYMENTS"] = np.nan
    return frame


def cdnow_lines(rng: np.random.Generator, customers: int = 200) -> pd.DataFrame:
    # As in CDNOW's cohort every customer first buys in the first quarter of 1997; repeat
    # purchases follow until 1998-06-30, a few lines on the same day now and then.
    start, first_end, end = (np.datetime64(d) for d in ("1997-01-01", "1997-03-31", "1998-06-30"))
    rows = []
    for customer in range(1, customers + 1):
        first = start + rng.integers(0, (first_end - start).astype(int) + 1)
        repeats = rng.negative_binomial(1, 0.14)
        later = first + rng.integers(0, (end - first).astype(int) + 1, size=repeats)
        for day in np.sort(np.concatenate([[first], later])):
            for _ in range(1 + (rng.random() < 0.08)):
                quantity = 1 + rng.poisson(0.9)
                amount = round(float(quantity * rng.lognormal(np.log(13.5), 0.25)), 2)
                rows.append((f"{customer:05d}", str(day).replace("-", ""), int(quantity), amount))
    return pd.DataFrame(rows, columns=["customer_id", "date", "quantity", "amount"])


def _cdnow_text(lines: pd.DataFrame) -> str:
    # CDNOW_master.txt's fixed-width look: "00001 19970101  1  11.77"
    return "".join(f"{c} {d} {q:>2} {a:>6.2f}\n" for c, d, q, a in lines.itertuples(index=False))


def main() -> None:
    rng = np.random.default_rng(SEED)
    credit_card_customers(rng).to_csv(HERE / "credit_card_customers.csv", index=False,
                                      lineterminator="\n")
    lines = cdnow_lines(rng)
    text = _cdnow_text(lines)
    (HERE / "cdnow_sample.txt").write_text(text, encoding="utf-8", newline="\n")
    (HERE / "cdnow_sample_header.txt").write_text("customer_id date quantity amount\n" + text,
                                                  encoding="utf-8", newline="\n")


if __name__ == "__main__":
    main()
