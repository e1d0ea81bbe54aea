"""Typed request and response bodies of the REST API (generated from openapi.yaml).

Money and counts stay exact: ``*_dollars`` and ``*_fp`` fields are the wire strings (use
``model.decimal("yes_bid_dollars")`` for a Decimal); JSON numbers decode to Decimal.
"""

from kalshi.rest._generated_models import *  # noqa: F403
from kalshi.rest._generated_models import __all__ as __all__
from kalshi.rest._model import Model as Model
