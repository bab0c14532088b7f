"""Permit rules and the regional ban calendar (pure functions)."""
