"""Wire renderers, one module per simulated pool API."""
