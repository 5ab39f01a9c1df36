"""serving/history.py: the replica's order history = the anomaly model's snapshot + reported events."""

from datetime import datetime
from types import SimpleNamespace

import pandas as pd
import pytest

from serving.history import LiveOrderHistory
from serving.models import LoadedModel
from serving.store.db import Database
from serving.store.events import EventStore, LabelEvent, OrderEvent

SNAPSHOT_ORDERS = pd.DataFrame(
    {
        "order_id": pd.array(["s1", "s2"], dtype="string"),
        "created_at": pd.to_datetime(["2011-06-01 10:00", "2011-06-02 10:00"]),
        "customer_id": pd.array(["c1", "c1"], dtype="string"),
        "sku": pd.array(["a", "b"], dtype="string"),
        "quantity": [1.0, 2.0],
        "unit_price": [3.0, 4.0],
    }
)
SNAPSHOT_LABELS = pd.DataFrame(
    {
        "order_id": pd.array(["s1"], dtype="string"),
        "label": pd.array([1], dtype="int8"),
        "labeled_at": pd.to_datetime(["2011-06-03"]),
    }
)


def _model(version="1"):
    wrapper = SimpleNamespace(
        model=SimpleNamespace(prior_strength=10.0),
        tables={"orders": SNAPSHOT_ORDERS, "labels": SNAPSHOT_LABELS},
    )
    return LoadedModel(kind="anomaly", name="shop-anomaly", version=version, model=wrapper)


@pytest.fixture
def events(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'events.db'}")
    yield EventStore(db)
    db.dispose()


def _event(order_id, when="2011-06-10 10:00", customer="c1"):
    return OrderEvent(order_id, pd.Timestamp(when).to_pydatetime(), customer, (("a", 1.0, 3.0),))


def _prior(state, customer="c1", when="2011-07-01 00:00"):
    probe = pd.DataFrame(
        {
            "order_id": ["probe"],
            "created_at": [pd.Timestamp(when)],
            "customer_id": [customer],
            "sku": ["a"],
            "quantity": [1.0],
            "unit_price": [1.0],
        }
    )
    features, _ = state.history.features(probe)
    return features[["customer_prior_orders", "customer_prior_exceptions"]].iloc[0].tolist()


def test_history_is_the_snapshot_plus_the_stored_events(events):
    model = _model()
    live = LiveOrderHistory(events, lambda: model)
    assert _prior(live.refresh()) == [2, 1]
    events.add_orders([_event("e1")])
    events.add_labels([LabelEvent("e1", 1, datetime(2011, 6, 12))])
    state = live.refresh()
    assert _prior(state) == [3, 2]
    assert (state.n_snapshot_orders, state.n_event_orders, state.n_event_labels) == (2, 1, 1)


def test_no_rebuild_while_neither_model_nor_events_changed(events):
    model = _model()
    live = LiveOrderHistory(events, lambda: model)
    first = live.refresh()
    assert live.refresh() is first and live.for_model(model) is first
    events.add_orders([_event("e1")])
    assert live.refresh() is not first


def test_an_event_copy_of_a_snapshot_order_is_left_out(events):
    model = _model()
    events.add_orders([_event("s2", when="2011-06-20 10:00")])  # same id as a snapshot order
    state = LiveOrderHistory(events, lambda: model).refresh()
    assert state.history.n_orders == 2 and state.n_event_orders == 0


def test_a_new_model_version_gets_its_own_history(events):
    current = {"model": _model("1")}
    live = LiveOrderHistory(events, lambda: current["model"])
    old = live.refresh()
    current["model"] = _model("2")
    new = live.for_model(current["model"])
    assert new is not old and new.model_key == ("shop-anomaly", "2") and live.state is new


def test_a_request_still_holding_the_old_model_is_served_without_replacing_the_current_history(events):
    current = {"model": _model("2")}
    live = LiveOrderHistory(events, lambda: current["model"])
    installed = live.refresh()
    old = live.for_model(_model("1"))
    assert old.model_key == ("shop-anomaly", "1") and live.state is installed


def test_no_model_means_no_history(events):
    with pytest.raises(LookupError, match="no anomaly model is loaded"):
        LiveOrderHistory(events, lambda: None).refresh()
