"""Shared and public models of kalshi-kit."""

from kalshi.models.markets import Orderbook, PriceLevel, Side

__all__ = ["Orderbook", "PriceLevel", "Side"]
