"""kalshi.sim"""
