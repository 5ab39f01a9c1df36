"""Pydantic schemas of the model routes: what the service accepts and answers (the OpenAPI at /docs).

``serving.schemas.orders``: scoring and events; ``serving.schemas.forecast``: forecasts and actuals; the
shared field types are in ``serving.schemas.common``.
"""
