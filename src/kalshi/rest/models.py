"""Typed request and response bodies of the REST API (generated from openapi.yaml).

Money and counts stay exact: ``*_dollars`` and ``*_fp`` fields are the wire strings, and each has
a Decimal property named as on the WebSocket models (``market.yes_bid`` for ``yes_bid_dollars``,
``position.position`` for ``position_fp``; ``_decimal`` where the bare name is taken:
``response.fill_count_decimal``, ``balance.balance_decimal``). JSON numbers decode to Decimal.
Enum fields are ``Literal`` types (``OutcomeSide``, ``BookSide``, ``MarketStatus`` ...).
"""

from kalshi.rest._generated_models import *  # noqa: F403
from kalshi.rest._generated_models import __all__ as __all__
from kalshi.rest._model import Model as Model
