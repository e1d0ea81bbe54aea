"""kalshi.ws"""
