"""THE id rule: how every identifier (``series_id``, ``order_id``, ``customer_id``, ``sku``, ``region``) is read.

Ids are pandas strings, surrounding blanks stripped, blanks missing, and an id column exported as numbers made
integer text again. A number column with blanks is exported as floats: ``14911`` reads ``14911.0`` (a float
column, or text when read with ``dtype=str``), which would never match a request's ``"14911"``. Whole-column
rules only:

* a float column whose values are all whole numbers becomes ``"14911"``;
* a text column whose every value is a whole number, some written with ``".0"``, loses the ``".0"``;
* a column with one ``"3.5"`` or ``"A12.0x"`` is left as it is.

``features.validation.validate`` applies it to every id column of every table; ``features.labels`` to event
files; ``serving`` to scoring requests and ``POST /v1/events``. The values changed are counted as
``ids_whole_float_repaired``. Two ids as sent that the rule makes one (``"14911.0"`` and ``"14911"`` in one
column) are one id written two ways, so they are merged and counted as ``ids_merged_by_repair`` (the number of
distinct ids as sent that now share their id with another); a merge that contradicts itself (two ``y`` for one
``(series_id, ds)``, one order with two customers) is then refused by the table rules of ``validate``.

A request that names ids a model already knows (``POST /v1/forecast``, a review's ``series_ids``) is read with
``ids_as_known``: an id the model does not know that is a whole number written with ``".0"`` is the integer
text when the model knows that.

The rule runs on the distinct values of a column (``pd.factorize``) and is mapped back by code, so a column of
a million values with a few thousand distinct ids costs a hash pass, not a million regex calls.
"""

from __future__ import annotations

import re
from collections.abc import Container, Sequence
from typing import Protocol

import numpy as np
import pandas as pd

__all__ = [
    "normalize_ids",
    "ids_as_text",
    "ids_as_known",
    "whole_number_text",
    "WHOLE_FLOAT_IDS",
    "MERGED_IDS",
]

WHOLE_FLOAT_IDS = "ids_whole_float_repaired"
"""Report counter: id values exported as whole floats (``14911.0``) made integer text (``14911``)."""
MERGED_IDS = "ids_merged_by_repair"
"""Report counter: distinct ids as sent that the repair made one id with another (``14911.0`` and ``14911``)."""

_SMALL_IDS = 256  # below this many values, normalising ids in Python beats pandas' per-call overhead
_WHOLE_RE = re.compile(r"-?\d+")
_WHOLE_WITH_ZEROS_RE = re.compile(r"-?\d+\.0+")
_ZEROS = r"\.0+$"
_ZEROS_RE = re.compile(_ZEROS)


class Counts(Protocol):
    """Where repairs are counted (``features.validation.ValidationReport``)."""

    def count(self, what: str, n: int) -> None: ...


def normalize_ids(s: pd.Series, report: Counts | None = None) -> pd.Series:
    """``s`` under the id rule (see the module docstring) as a pandas ``string`` Series; the values changed are
    counted in ``report`` as ``ids_whole_float_repaired``, the ids merged as ``ids_merged_by_repair``."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    per_value = np.bincount(codes[codes >= 0], minlength=len(uniques))  # rows holding each distinct value
    values = pd.Series(uniques)
    repaired = merged = 0
    numeric = pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)
    if pd.api.types.is_float_dtype(s) and (values == np.floor(values)).all():
        values = values.astype("Int64")
        repaired = int(per_value.sum())
    text = values.astype("string").str.strip()
    text = text.mask(text == "")
    if not numeric:
        fixed = _whole_number_column(text)
        if fixed is not None:
            changed = (fixed != text).fillna(False).to_numpy()
            repaired = int(per_value[changed].sum())
            near = fixed.isin(fixed[changed]).to_numpy()  # the repaired ids and any id they may have met
            merged = _n_merged(text[near], fixed[near])
            text = fixed
    if report is not None:
        report.count(WHOLE_FLOAT_IDS, repaired)
        report.count(MERGED_IDS, merged)
    out = text.array.take(codes, allow_fill=True)  # code -1 (missing) takes <NA>
    return pd.Series(out, index=s.index, dtype="string", name=s.name)


def ids_as_text(s: pd.Series | np.ndarray, report: Counts | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``normalize_ids`` as arrays: str objects (``<NA>`` when missing) and their missing mask.

    A pandas ``string`` column is taken as already normalised (validated tables are). Below a few hundred
    object values (a serving request) the same rule runs per value in Python, which beats pandas' per-call
    overhead; ``tests/features/test_ids.py`` checks both give the same ids and counts."""
    if not isinstance(s, pd.Series):
        s = np.asarray(s)
        if not (len(s) <= _SMALL_IDS and s.dtype == object):
            s = pd.Series(s)
    if isinstance(s.dtype, pd.StringDtype):
        return s.to_numpy(dtype=object, na_value=pd.NA), s.isna().to_numpy()
    if len(s) <= _SMALL_IDS and s.dtype == object:
        texts = [_id_text(v) for v in s]
        values = _whole_number_texts(texts)
        if values is not texts and report is not None:
            changed = sum(a is not pd.NA and a != b for a, b in zip(texts, values, strict=True))
            report.count(WHOLE_FLOAT_IDS, changed)
            report.count(MERGED_IDS, _n_merged(texts, values))
        out = np.array(values, dtype=object)
        return out, np.array([v is pd.NA for v in out], dtype=bool)
    text = normalize_ids(s, report)
    return text.to_numpy(dtype=object, na_value=pd.NA), text.isna().to_numpy()


def whole_number_text(value: str) -> str | None:
    """``"7"`` for ``"7.0"`` (a whole number written with ``".0"``), else None."""
    value = value.strip()
    return _ZEROS_RE.sub("", value) if _WHOLE_WITH_ZEROS_RE.fullmatch(value) else None


def ids_as_known(ids: Sequence[str], known: Container[str]) -> tuple[list[str], dict[str, str]]:
    """Requested ``ids`` as a model knows them: an id not in ``known`` that is a whole number written with
    ``".0"`` (``"7.0"``) is read as the integer text (``"7"``) when ``known`` has it; every other id stays as it
    is (an unknown id stays unknown). Returns the ids in order and ``{as sent: as read}`` for those read."""
    out: list[str] = []
    read_as: dict[str, str] = {}
    for i in ids:
        whole = whole_number_text(i) if i not in known else None
        if whole is not None and whole in known:
            read_as[i] = whole
            i = whole
        out.append(i)
    return out, read_as


# ---------------------------------------------------------------------------------------------------------


def _whole_number_column(text: pd.Series) -> pd.Series | None:
    """The distinct texts of a column without the ``".0"`` of whole numbers when every one is a whole number
    and some are written with ``".0"``; None when the column is left as it is."""
    dotted = text.str.contains(".", regex=False).fillna(False).to_numpy()
    if not dotted.any() or not text[dotted].str.fullmatch(_WHOLE_WITH_ZEROS_RE.pattern).all():
        return None
    if not text[~dotted].dropna().str.fullmatch(_WHOLE_RE.pattern).all():
        return None
    fixed = text.copy()
    fixed[dotted] = text[dotted].str.replace(_ZEROS, "", regex=True)
    return fixed


def _whole_number_texts(texts: list[object]) -> list[object]:
    """``_whole_number_column`` on a few values (``<NA>`` when missing), one by one; ``texts`` itself when the
    column is left as it is."""
    present = [t for t in texts if t is not pd.NA]
    dotted = [t for t in present if "." in t]
    if not dotted or not all(_WHOLE_WITH_ZEROS_RE.fullmatch(t) for t in dotted):
        return texts
    if not all(_WHOLE_RE.fullmatch(t) for t in present if "." not in t):
        return texts
    return [t if t is pd.NA or "." not in t else _ZEROS_RE.sub("", t) for t in texts]


def _n_merged(before: pd.Series | list[object], after: pd.Series | list[object]) -> int:
    """How many distinct ids as sent (``before``, stripped) share their repaired id (``after``) with another."""
    pairs = pd.DataFrame(
        {"before": np.asarray(before, dtype=object), "after": np.asarray(after, dtype=object)}
    )
    pairs = pairs.loc[pairs["before"].notna()].drop_duplicates()
    return int(pairs["after"].duplicated(keep=False).sum())


def _id_text(v: object) -> object:
    """One value of an object column as stripped text (``<NA>`` when missing or blank)."""
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return pd.NA
    text = str(v).strip()
    return text if text else pd.NA
