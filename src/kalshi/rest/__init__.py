"""kalshi.rest"""
