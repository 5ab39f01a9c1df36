"""Serving: the FastAPI service an OMS calls while orders are created; it loads registered models and never trains.

``app.create_app(settings)`` builds the app (``settings.Settings``: ``ORDERPULSE_*`` variables); its lifespan
loads the champion models (``models.ModelHolder`` over ``model_source.RegistryModelSource``: registry by
alias with a local cache) and the live order history (``history``). Requests pass the boundary (``auth``,
``middleware``, ``schemas/``), thin ``routes/`` call ``services/`` that work on frames and arrays, and every
decision is written to ``store/`` (audit trail and event store, SQLite or PostgreSQL) before the answer.
``errors`` turns every library error into one stable JSON body; ``prometheus`` serves ``/metrics``;
``cli`` runs uvicorn (``orderpulse serve``).
"""
