"""What the service keeps in SQL (SQLite in WAL mode by default, PostgreSQL by URL): ``db`` (engines,
schemas, the writer lock), ``audit`` (every answered decision, committed before the response) and ``events``
(orders and labels reported through ``POST /v1/events``, shared by replicas), ``predictions`` (the narrow
monitoring copy of every answered forecast step and score, written in the audit transaction)."""
