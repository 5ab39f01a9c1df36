"""Fixtures shared by the training tests.

``make_synthetic_orders`` (used by test_anomaly*.py) builds synthetic orders and labels whose exception signal
the tests control: customers have a latent exception propensity (Beta(1, 5)); 8% of orders are "bulk" orders
(20x the usual quantity) whose log-odds of becoming an exception are +2.5. Exceptions are labelled 0.5-10 days
after the order, non-exceptions exactly 30 days after (as with a 30-day cancellation window). Seeded: same
input, same tables.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest

from features.validation import validate

START = pd.Timestamp("2020-01-01")


def synthetic_orders(
    n_orders: int = 3000, n_customers: int = 250, days: int = 300, seed: int = 0, guest_share: float = 0.03
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validated (orders, labels); guests (no customer_id) get no label."""
    rng = np.random.default_rng(seed)
    propensity = rng.beta(1, 5, n_customers)
    customer = rng.integers(0, n_customers, n_orders)
    created = (START + pd.to_timedelta(np.sort(rng.uniform(0, days, n_orders)), unit="D")).floor("min")
    bulk = rng.random(n_orders) < 0.08
    logit = np.log(propensity[customer] / (1 - propensity[customer])) + 2.5 * bulk
    label = (rng.random(n_orders) < 1 / (1 + np.exp(-logit))).astype("int8")
    guest = rng.random(n_orders) < guest_share
    n_lines = rng.integers(1, 5, n_orders)
    order_of_line = np.repeat(np.arange(n_orders), n_lines)
    ids = np.array([f"o{i:05d}" for i in range(n_orders)], dtype=object)
    customers = np.array([f"c{c:04d}" for c in customer], dtype=object)
    customers[guest] = None
    lines = pd.DataFrame(
        {
            "order_id": ids[order_of_line],
            "created_at": created[order_of_line],
            "customer_id": customers[order_of_line],
            "sku": [f"SKU{k:03d}" for k in rng.integers(0, 60, len(order_of_line))],
            "quantity": rng.integers(1, 6, len(order_of_line)) * np.where(bulk[order_of_line], 20.0, 1.0),
            "unit_price": np.round(rng.lognormal(1.0, 0.6, len(order_of_line)), 2),
            "country": rng.choice(["UK", "FR", "DE"], len(order_of_line), p=[0.8, 0.1, 0.1]),
        }
    )
    delay_days = np.where(label == 1, rng.uniform(0.5, 10, n_orders), 30.0)
    labels = pd.DataFrame(
        {"order_id": ids, "label": label, "labeled_at": created + pd.to_timedelta(delay_days, unit="D")}
    ).loc[~guest]
    orders, _ = validate(lines, "orders")
    labels, _ = validate(labels.reset_index(drop=True), "labels")
    return orders, labels


@pytest.fixture(scope="session")
def make_synthetic_orders():
    """``make_synthetic_orders(n_orders=3000, ..., seed=0) -> (orders, labels)``, validated."""
    return synthetic_orders


class RecordingProgress:
    """A ``training.progress.Progress`` that keeps what it was told: ``lines`` as (level, message), and per
    task description the list of ``advance`` steps followed by the announced total."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.tasks: dict[str, list[int]] = {}

    def info(self, message: str) -> None:
        self.lines.append(("info", message))

    def warning(self, message: str) -> None:
        self.lines.append(("warning", message))

    @contextlib.contextmanager
    def task(self, description: str, total: int | None):
        steps: list[int] = []
        self.tasks[description] = steps

        class _Task:
            def advance(self, n: int = 1) -> None:
                steps.append(n)

        yield _Task()
        steps.append(-1 if total is None else total)


@pytest.fixture
def recorded_progress() -> RecordingProgress:
    """A fresh ``RecordingProgress``."""
    return RecordingProgress()


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 worker processes (LightGBM's network is per process) and its client, per module."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c
