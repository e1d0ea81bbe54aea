"""openmarkets: the OpenMarkets liquidity stream client."""
