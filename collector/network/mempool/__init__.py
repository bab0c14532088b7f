"""mempool.space (and self-hosted mempool) mining statistics for the Bitcoin network."""
