"""The cgminer-family miner API (TCP 4028): Antminer, Braiins OS, Whatsminer and Avalon dialects."""
