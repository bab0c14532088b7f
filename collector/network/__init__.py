"""Network sources: blockchain-wide figures (difficulty, network hashrate, block reward), one folder per API."""
