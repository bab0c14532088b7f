"""Fake ASIC miners speaking the cgminer-family TCP API (reference §9), driven by a scenario's `[[miners]]`.

`fleet.MinerFleet` serves them, `truth.miner_truth` says what each reports, `dialects` renders the replies.
"""
