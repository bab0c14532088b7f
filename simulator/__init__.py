"""Simulated mining pools (Braiins Pool, EMCD v1) speaking the real wire formats, with scenario ground truth."""
