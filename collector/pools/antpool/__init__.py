"""AntPool account API (HMAC-SHA256 signed form posts)."""
