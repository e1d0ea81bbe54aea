"""kalshi.models"""
