"""Braiins Pool (formerly Slush Pool) account API."""
