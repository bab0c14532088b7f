"""EMCD pool v1 account API (API key in the URL path)."""
