"""The source interface, the explicit registry and the shared HTTP client."""
