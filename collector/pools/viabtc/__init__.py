"""ViaBTC pool open API (X-API-KEY header; HMAC-SHA256 X-SIGNATURE with a secret key)."""
