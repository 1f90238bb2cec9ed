"""Transaction lines: what each line spent, which order it belongs to, and which lines are returns.

A table is a transaction log when it has an order/invoice/basket column, a quantity
column or an amount column. Then every line is a purchase unless it says otherwise, and:

- spend: an amount column (amount, revenue, sales_value, dollar_value, ...) is the line
  total and wins; else quantity × unit price; else the unit price alone (one unit per
  line); else a ``value`` column read as the line total. Rating and review rows keep
  their value as a rating.
- returns: an event type such as return/refund/cancel, a negative quantity or amount,
  or an invoice of the cancellation kind ("C536379" in a log whose invoices are numbers)
  make the line a ``return`` whose quantity and spend are negative, so they net out of
  spend and are never counted as purchases.
- currency: the symbol the data states, from the money column's name (``dollar_value``
  is "$") or from symbols in its cells ("£3.50"); None when it says nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tools.data.cells import as_money, as_numbers
from tools.data.columns import Columns, normalise_name
from tools.data.readers import RawTable

TRANSACTION_ROLES = ("order_id", "quantity", "amount")
TRANSACTION_TYPES = ("purchase", "return")
RATING_TYPES = ("rating", "review")
# A column name that states its currency.
_NAMED_CURRENCIES = (
    (re.compile(r"dollar|usd"), "$"),
    (re.compile(r"gbp|pound|sterling"), "£"),
    (re.compile(r"eur(o)?s?(?![a-z])|euro"), "€"),
    (re.compile(r"yen|jpy"), "¥"),
    (re.compile(r"rupee|inr(?![a-z])"), "₹"),
)
_CANCELLED = re.compile(r"[Cc]\d+")
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class TransactionLines:
    """The transaction columns of an events table, aligned with its rows."""

    event_type: pd.Series  # str; "purchase" / "return" on transaction lines
    value: np.ndarray  # spend on transaction lines (negative on returns), ratings elsewhere
    quantity: np.ndarray  # units, negative on returns; NaN when the data has none
    order_id: pd.Series  # str or NA
    currency: str | None
    spend: str | None  # how spend was read, for the run summary
    n_returns: int


def is_transaction_log(columns: Columns) -> bool:
    return any(role in columns for role in TRANSACTION_ROLES)


def currency_from_name(name: str) -> str | None:
    key = normalise_name(name)
    return next((symbol for pattern, symbol in _NAMED_CURRENCIES if pattern.search(key)), None)


def transaction_lines(
    table: RawTable, columns: Columns, event_type: pd.Series, value: np.ndarray, order_id: pd.Series
) -> TransactionLines:
    """Spend, quantity, returns and currency for the rows of ``table`` (a transaction log).

    ``event_type`` is already canonical (empty cells "purchase"), ``value`` the value
    column (NaN without one), ``order_id`` the order ids (NA without the column).
    """
    frame, used = table.frame, columns.used
    n = len(frame)
    quantity = np.full(n, np.nan)
    if "quantity" in used:
        quantity = as_numbers(frame[used["quantity"]], table, used["quantity"], "quantity")
    price, currency, spend_rule = None, None, None
    if "price" in used:
        price, currency = as_money(frame[used["price"]], table, used["price"], "price")
        currency = currency or currency_from_name(used["price"])
    if "amount" in used:
        spend, symbol = as_money(frame[used["amount"]], table, used["amount"], "amount")
        currency = symbol or currency_from_name(used["amount"]) or currency
        spend_rule = f"amount column {used['amount']}"
    elif price is not None and "quantity" in used:
        spend = quantity * price
        spend_rule = f"{used['quantity']} × {used['price']}"
    elif price is not None:
        spend = price.copy()
        spend_rule = f"{used['price']} (one unit per line)"
    elif "value" in used:
        spend = value
        currency = currency or currency_from_name(used["value"])
        spend_rule = f"value column {used['value']}"
    else:
        spend = np.full(n, np.nan)

    types = event_type.to_numpy(dtype=object, copy=True)
    is_line = np.isin(types, TRANSACTION_TYPES)
    returned = types == "return"
    with np.errstate(invalid="ignore"):
        returned |= is_line & ((quantity < 0) | (spend < 0))
    returned |= is_line & _cancelled_orders(order_id)
    types[returned] = "return"
    quantity = np.where(returned, -np.abs(quantity), quantity)
    line_spend = np.where(returned, -np.abs(spend), spend)
    out_value = np.where(is_line | returned, line_spend, value)
    if not np.isfinite(spend).any():
        spend_rule = None
    return TransactionLines(
        event_type=pd.Series(types, index=frame.index, dtype="str"),
        value=np.asarray(out_value, dtype=np.float64),
        quantity=np.asarray(quantity, dtype=np.float64),
        order_id=order_id,
        currency=currency if spend_rule else None,
        spend=spend_rule,
        n_returns=int(returned.sum()),
    )


def _cancelled_orders(order_id: pd.Series) -> np.ndarray:
    """Lines on cancellation invoices: "C" + digits, in a log where most invoices are plain numbers."""
    present = order_id.notna().to_numpy()
    if not present.any():
        return np.zeros(len(order_id), dtype=bool)
    distinct = pd.Series(pd.unique(order_id[present].astype(str)))
    numeric = distinct.str.fullmatch(_NUMBER.pattern).mean()
    cancelled_ids = distinct[distinct.str.fullmatch(_CANCELLED.pattern)]
    if cancelled_ids.empty or numeric < 0.5:
        return np.zeros(len(order_id), dtype=bool)
    return order_id.isin(set(cancelled_ids)).to_numpy(dtype=bool)
