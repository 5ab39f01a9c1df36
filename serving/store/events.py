"""The event store: orders, exception labels and series actuals reported to the service, in SQL tables.

The OMS reports new orders and exceptions (``POST /v1/events``) and observed demand (``POST /v1/actuals``);
they are stored durably here, in the same database as the audit trail (``serving.store.db.Database``; SQLite or
PostgreSQL), so every replica of the service reads the same events. Tables:

==================== ======================================================================================
table                rows
==================== ======================================================================================
``order_events``     one per order: ``order_id`` (unique), customer, ``created_at`` (UTC, naive), optional
                     country/channel/region, ``content_hash`` of the whole order, ``received_at``
``order_event_lines`` the order's lines: ``order_id``, ``line_no``, ``sku``, ``quantity``, ``unit_price``
``label_events``     one per order: ``order_id`` (unique), ``label`` (0/1), ``labeled_at``, ``received_at``
``actuals``          one per (``series_id``, ``ds``): ``y``, ``open``, ``revisions`` (corrections so far)
==================== ======================================================================================

Bounds (``serving.store.checks``, after ``features.bounds``): a row out of bounds is refused with ``ValueError``
before it is stored, and rows already stored out of bounds are skipped (counted and logged) when read back.

Idempotency. Orders and labels are keyed by ``order_id``: the same event sent again is a ``duplicate`` (not
stored twice); a different order or label under a stored ``order_id`` is a ``conflict`` and is not applied
(the first one stays: correct it at the source, or retrain). Inserts use ``INSERT .. ON CONFLICT DO NOTHING
.. RETURNING``, so two replicas receiving the same event at once store it once, and only the winner writes
its lines. Actuals are keyed by (``series_id``, ``ds``): a repeated value is a ``duplicate``, a different value
replaces the stored one and is counted as ``updated`` (observed values get corrected).

``high_water_mark()`` is the pair of row counts of ``order_events`` and ``label_events``: the tables are
append-only, so any committed event changes it (a ``max(id)`` would miss a transaction that commits late
with a smaller id). Replicas poll it to know when to rebuild their in-memory order history
(``serving.history``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import (
    Column,
    DateTime,
    Double,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    func,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite

from serving.store.checks import SkipListener, check_actuals, check_labels, check_orders, drop_unusable
from serving.store.db import Database

__all__ = [
    "EventStore",
    "OrderEvent",
    "LabelEvent",
    "Actual",
    "EventStatus",
    "ActualStatus",
    "order_content_hash",
]

EventStatus = Literal["accepted", "duplicate", "conflict"]
ActualStatus = Literal["inserted", "updated", "duplicate"]

_ID = 128
_CHUNK = 500  # rows per IN (...) look-up: stays far below every database's parameter limit


@dataclass(frozen=True)
class OrderEvent:
    """One reported order: ``created_at`` is naive UTC; ``lines`` are ``(sku, quantity, unit_price)``."""

    order_id: str
    created_at: datetime
    customer_id: str | None
    lines: tuple[tuple[str, float, float], ...]
    country: str | None = None
    channel: str | None = None
    region: str | None = None

    @property
    def content_hash(self) -> str:
        return order_content_hash(self)


@dataclass(frozen=True)
class LabelEvent:
    """One reported outcome of an order: ``label`` 1 = exception; ``labeled_at`` naive UTC."""

    order_id: str
    label: int
    labeled_at: datetime


@dataclass(frozen=True)
class Actual:
    """One observed value of a series: ``ds`` naive UTC on the series' grid; ``open`` 0 = closed (``y`` 0)."""

    series_id: str
    ds: datetime
    y: float
    open: int = 1


def order_content_hash(order: OrderEvent) -> str:
    """SHA-256 of the order's content (everything but ``order_id``): equal hashes = the same order."""
    payload = [
        order.customer_id,
        order.created_at.isoformat(),
        order.country,
        order.channel,
        order.region,
        [[sku, float(q), float(p)] for sku, q, p in order.lines],
    ]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


class EventStore:
    """Orders, labels and actuals reported to the service (see the module docstring)."""

    def __init__(
        self, database: Database, *, schema: str | None = None, on_skip: SkipListener | None = None
    ) -> None:
        self.database = database
        self.schema = schema
        self.on_skip = on_skip
        self.metadata = MetaData(schema=schema)
        self.orders, self.lines, self.labels, self.actuals = _tables(self.metadata)
        database.create_tables(self.metadata, schema)

    # ------------------------------------------------------------------ orders and labels
    def add_orders(
        self,
        orders: Sequence[OrderEvent],
        *,
        request_id: str | None = None,
        on_accepted: Callable[[Any, list[OrderEvent]], None] | None = None,
    ) -> list[EventStatus]:
        """Store new orders (one transaction); per order ``accepted``, ``duplicate`` or ``conflict``.

        ``on_accepted(conn, orders)`` runs inside that transaction with the orders stored now (e.g. the order
        volume counts, ``serving.store.volume_counts``): they commit, or roll back, together."""
        if not orders:
            return []
        check_orders(orders)
        hashes = [o.content_hash for o in orders]
        now = datetime.now(UTC)
        with self.database.connection() as conn:
            stored = self._stored_hashes(conn, [o.order_id for o in orders])
            statuses, fresh = _classify(orders, hashes, stored)
            inserted: set[str] = set()
            if fresh:
                rows = [
                    {
                        "order_id": orders[i].order_id,
                        "customer_id": orders[i].customer_id,
                        "created_at": orders[i].created_at,
                        "country": orders[i].country,
                        "channel": orders[i].channel,
                        "region": orders[i].region,
                        "n_lines": len(orders[i].lines),
                        "content_hash": hashes[i],
                        "received_at": now,
                        "request_id": request_id,
                    }
                    for i in fresh
                ]
                stmt = self._insert_ignore(self.orders, ["order_id"]).returning(self.orders.c.order_id)
                inserted = {r[0] for r in conn.execute(stmt, rows)}
                lines = [
                    {"order_id": orders[i].order_id, "line_no": n, "sku": sku, "quantity": q, "unit_price": p}
                    for i in fresh
                    if orders[i].order_id in inserted
                    for n, (sku, q, p) in enumerate(orders[i].lines)
                ]
                if lines:
                    conn.execute(self.lines.insert(), lines)
            lost = [i for i in fresh if orders[i].order_id not in inserted]
            if lost:  # another replica stored the same order_id between our look-up and our insert
                raced = self._stored_hashes(conn, [orders[i].order_id for i in lost])
                for i in lost:
                    statuses[i] = "duplicate" if raced.get(orders[i].order_id) == hashes[i] else "conflict"
            if on_accepted is not None:
                on_accepted(conn, [orders[i] for i in fresh if orders[i].order_id in inserted])
        return statuses

    def add_labels(self, labels: Sequence[LabelEvent]) -> list[EventStatus]:
        """Store new labels (one transaction); per label ``accepted``, ``duplicate`` or ``conflict``."""
        if not labels:
            return []
        check_labels(labels)
        keys = [_label_key(lab) for lab in labels]
        now = datetime.now(UTC)
        with self.database.connection() as conn:
            stored = self._stored_labels(conn, [lab.order_id for lab in labels])
            statuses, fresh = _classify(labels, keys, stored)
            inserted: set[str] = set()
            if fresh:
                rows = [
                    {
                        "order_id": labels[i].order_id,
                        "label": int(labels[i].label),
                        "labeled_at": labels[i].labeled_at,
                        "received_at": now,
                    }
                    for i in fresh
                ]
                stmt = self._insert_ignore(self.labels, ["order_id"]).returning(self.labels.c.order_id)
                inserted = {r[0] for r in conn.execute(stmt, rows)}
            lost = [i for i in fresh if labels[i].order_id not in inserted]
            if lost:
                raced = self._stored_labels(conn, [labels[i].order_id for i in lost])
                for i in lost:
                    statuses[i] = "duplicate" if raced.get(labels[i].order_id) == keys[i] else "conflict"
        return statuses

    def known_order_ids(self, ids: Iterable[str]) -> list[str]:
        """The ``ids`` that are stored orders."""
        out: list[str] = []
        o = self.orders
        with self.database.connection(begin=False) as conn:
            for chunk in _chunks(list(dict.fromkeys(ids))):
                out.extend(r[0] for r in conn.execute(select(o.c.order_id).where(o.c.order_id.in_(chunk))))
        return out

    def high_water_mark(self) -> tuple[int, int]:
        """``(number of stored orders, number of stored labels)``: changes with every committed event."""
        with self.database.connection(begin=False) as conn:
            n_orders = conn.execute(select(func.count()).select_from(self.orders)).scalar_one()
            n_labels = conn.execute(select(func.count()).select_from(self.labels)).scalar_one()
        return int(n_orders), int(n_labels)

    def order_lines(self) -> pd.DataFrame:
        """Every stored order line in the ``orders`` input shape (ids as pandas strings, naive UTC times)."""
        o, ln = self.orders, self.lines
        stmt = (
            select(
                o.c.order_id,
                o.c.created_at,
                o.c.customer_id,
                ln.c.sku,
                ln.c.quantity,
                ln.c.unit_price,
                o.c.country,
                o.c.channel,
                o.c.region,
            )
            .select_from(o.join(ln, o.c.order_id == ln.c.order_id))
            .order_by(o.c.created_at, o.c.order_id, ln.c.line_no)
        )
        with self.database.connection(begin=False) as conn:
            rows = conn.execute(stmt).all()
        columns = ["order_id", "created_at", "customer_id", "sku", "quantity", "unit_price"]
        columns += ["country", "channel", "region"]
        frame = drop_unusable(pd.DataFrame(rows, columns=columns), "order_events", self.on_skip)
        for col in ("order_id", "customer_id", "sku", "country", "channel", "region"):
            frame[col] = frame[col].astype("string")
        frame["created_at"] = _naive_datetimes(frame["created_at"])
        for col in ("quantity", "unit_price"):
            frame[col] = frame[col].astype("float64")
        return frame

    def label_table(self) -> pd.DataFrame:
        """Every stored label in the ``labels`` input shape (``order_id``, int8 ``label``, ``labeled_at``)."""
        stmt = select(self.labels.c.order_id, self.labels.c.label, self.labels.c.labeled_at)
        with self.database.connection(begin=False) as conn:
            rows = conn.execute(stmt.order_by(self.labels.c.order_id)).all()
        frame = drop_unusable(
            pd.DataFrame(rows, columns=["order_id", "label", "labeled_at"]), "label_events", self.on_skip
        )
        frame["order_id"] = frame["order_id"].astype("string")
        frame["label"] = frame["label"].astype("int8")
        frame["labeled_at"] = _naive_datetimes(frame["labeled_at"])
        return frame

    # ------------------------------------------------------------------ actuals
    def upsert_actuals(self, actuals: Sequence[Actual]) -> list[ActualStatus]:
        """Store observed values (one transaction): per row ``inserted``, ``updated`` or ``duplicate``.

        Within one call a later row for the same (series_id, ds) wins (and the earlier one is ``updated``).
        """
        if not actuals:
            return []
        check_actuals(actuals)
        now = datetime.now(UTC)
        keys = [(a.series_id, a.ds) for a in actuals]
        with self.database.connection() as conn:
            stored = self._stored_actuals(conn, keys)
            statuses: list[ActualStatus] = []
            latest: dict[tuple[str, datetime], int] = {}
            for i, (a, key) in enumerate(zip(actuals, keys, strict=True)):
                value = (float(a.y), int(a.open))
                before = stored.get(key)
                if before is None:
                    statuses.append("inserted")
                elif before == value:
                    statuses.append("duplicate")
                else:
                    statuses.append("updated")
                stored[key] = value
                latest[key] = i
            rows = [
                {
                    "series_id": actuals[i].series_id,
                    "ds": actuals[i].ds,
                    "y": float(actuals[i].y),
                    "open": int(actuals[i].open),
                    "received_at": now,
                    "updated_at": now,
                    "revisions": 0,
                }
                for i in sorted(latest.values())
                if statuses[i] != "duplicate"
            ]
            if rows:
                stmt = self._upsert_actuals_statement()
                conn.execute(stmt, rows)
        return statuses

    def actuals_for(self, series_ids: Iterable[str]) -> pd.DataFrame:
        """The stored actuals of ``series_ids`` as a ``series`` table (``series_id, ds, y, open``)."""
        ids = list(dict.fromkeys(str(s) for s in series_ids))
        a = self.actuals
        rows: list[Any] = []
        with self.database.connection(begin=False) as conn:
            for chunk in _chunks(ids):
                stmt = select(a.c.series_id, a.c.ds, a.c.y, a.c.open).where(a.c.series_id.in_(chunk))
                rows.extend(conn.execute(stmt).all())
        frame = drop_unusable(
            pd.DataFrame(rows, columns=["series_id", "ds", "y", "open"]), "actuals", self.on_skip
        )
        frame["series_id"] = frame["series_id"].astype("string")
        frame["ds"] = _naive_datetimes(frame["ds"])
        frame["y"] = frame["y"].astype("float64")
        frame["open"] = frame["open"].astype("int8")
        return frame.sort_values(["series_id", "ds"], kind="stable").reset_index(drop=True)

    def count_actuals(self) -> int:
        with self.database.connection(begin=False) as conn:
            return int(conn.execute(select(func.count()).select_from(self.actuals)).scalar_one())

    # ------------------------------------------------------------------ internals
    def _insert_ignore(self, table: Table, keys: list[str]) -> Any:
        dialect = postgresql if self.database.dialect == "postgresql" else sqlite
        return dialect.insert(table).on_conflict_do_nothing(index_elements=keys)

    def _upsert_actuals_statement(self) -> Any:
        dialect = postgresql if self.database.dialect == "postgresql" else sqlite
        stmt = dialect.insert(self.actuals)
        return stmt.on_conflict_do_update(
            index_elements=["series_id", "ds"],
            set_={
                "y": stmt.excluded.y,
                "open": stmt.excluded.open,
                "updated_at": stmt.excluded.updated_at,
                "revisions": self.actuals.c.revisions + 1,
            },
        )

    def _stored_hashes(self, conn: Any, ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        o = self.orders
        for chunk in _chunks(list(dict.fromkeys(ids))):
            stmt = select(o.c.order_id, o.c.content_hash).where(o.c.order_id.in_(chunk))
            out.update({r[0]: r[1] for r in conn.execute(stmt)})
        return out

    def _stored_labels(self, conn: Any, ids: list[str]) -> dict[str, tuple[int, str]]:
        out: dict[str, tuple[int, str]] = {}
        t = self.labels
        for chunk in _chunks(list(dict.fromkeys(ids))):
            stmt = select(t.c.order_id, t.c.label, t.c.labeled_at).where(t.c.order_id.in_(chunk))
            out.update({r[0]: (int(r[1]), _naive(r[2]).isoformat()) for r in conn.execute(stmt)})
        return out

    def _stored_actuals(
        self, conn: Any, keys: list[tuple[str, datetime]]
    ) -> dict[tuple[str, datetime], tuple[float, int]]:
        out: dict[tuple[str, datetime], tuple[float, int]] = {}
        a = self.actuals
        for chunk in _chunks(list(dict.fromkeys(keys))):
            stmt = select(a.c.series_id, a.c.ds, a.c.y, a.c.open).where(
                tuple_(a.c.series_id, a.c.ds).in_(chunk)
            )
            out.update({(r[0], _naive(r[1])): (float(r[2]), int(r[3])) for r in conn.execute(stmt)})
        return out


def _tables(metadata: MetaData) -> tuple[Table, Table, Table, Table]:
    aware = DateTime(timezone=True)
    orders = Table(
        "order_events",
        metadata,
        Column("order_id", String(_ID), primary_key=True),
        Column("customer_id", String(_ID), nullable=True, index=True),
        Column("created_at", DateTime(), nullable=False),
        Column("country", String(200), nullable=True),
        Column("channel", String(200), nullable=True),
        Column("region", String(200), nullable=True),
        Column("n_lines", Integer, nullable=False),
        Column("content_hash", String(64), nullable=False),
        Column("received_at", aware, nullable=False),
        Column("request_id", String(128), nullable=True),
    )
    lines = Table(
        "order_event_lines",
        metadata,
        Column("order_id", String(_ID), nullable=False),
        Column("line_no", Integer, nullable=False),
        Column("sku", String(_ID), nullable=False),
        Column("quantity", Double, nullable=False),
        Column("unit_price", Double, nullable=False),
        PrimaryKeyConstraint("order_id", "line_no", name="order_event_lines_pk"),
    )
    labels = Table(
        "label_events",
        metadata,
        Column("order_id", String(_ID), primary_key=True),
        Column("label", SmallInteger, nullable=False),
        Column("labeled_at", DateTime(), nullable=False),
        Column("received_at", aware, nullable=False),
    )
    actuals = Table(
        "actuals",
        metadata,
        Column("series_id", String(_ID), nullable=False),
        Column("ds", DateTime(), nullable=False),
        Column("y", Double, nullable=False),
        Column("open", SmallInteger, nullable=False),
        Column("received_at", aware, nullable=False),
        Column("updated_at", aware, nullable=False),
        Column("revisions", Integer, nullable=False),
        PrimaryKeyConstraint("series_id", "ds", name="actuals_pk"),
    )
    return orders, lines, labels, actuals


def _classify(
    items: Sequence[Any], keys: Sequence[Any], stored: dict[str, Any]
) -> tuple[list[EventStatus], list[int]]:
    """Statuses against what is stored and what came earlier in the same batch; positions to insert."""
    statuses: list[EventStatus] = []
    fresh: list[int] = []
    seen: dict[str, Any] = dict(stored)
    for i, (item, key) in enumerate(zip(items, keys, strict=True)):
        before = seen.get(item.order_id)
        if before is None:
            statuses.append("accepted")
            fresh.append(i)
            seen[item.order_id] = key
        else:
            statuses.append("duplicate" if before == key else "conflict")
    return statuses, fresh


def _label_key(label: LabelEvent) -> tuple[int, str]:
    return int(label.label), label.labeled_at.isoformat()


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def _naive_datetimes(values: pd.Series) -> pd.Series:
    if values.empty:
        return pd.Series(np.array([], dtype="datetime64[ns]"), index=values.index)
    parsed = pd.to_datetime(values, utc=True)
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
