"""kalshi.record"""
