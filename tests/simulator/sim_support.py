"""Constants shared by the simulator tests (a plain module: test files cannot import conftest reliably)."""

from __future__ import annotations

from pathlib import Path

SCENARIOS = Path(__file__).resolve().parents[2] / "simulator" / "scenarios"
# 2026-11-25 12:34:56 UTC: 46 completed days after the demo's history_start, mid-way through a day.
FIXED_T = 1_795_610_096

# Every optional feature in one small file: Th/s unit, a disabled worker, a recent outage (inactive, not
# dead), a long outage (dead), the `[]` form of detailsDead, a minimum payout, a pending payout.
FEATURES_TOML = """
seed = 42
history_start = 2026-11-01
sats_per_phs_day = 45000

[[accounts]]
group_id = "g1"
pool = "braiins"
username = "thsuser"
secret = "tok-ths"
hash_rate_unit = "Th/s"
payout_addresses = ["bc1qgwxdmj920kncmw8508t78axs2z5qra387xje0m", "bc1qavy4wx445z06wul8fu98wz88ekcfqt6l7f3xl5"]
payout_every_days = 3
payout_delay_hours = 100

[[accounts.workers]]
name = "a1"
nominal_ths = 250.0
variation = 0.1

[[accounts.workers]]
name = "a2"
nominal_ths = 180.0
disabled = true

[[accounts.workers]]
name = "a3"
nominal_ths = 100.0
online = false

[[accounts]]
group_id = "g1"
pool = "braiins"
username = "ghsuser"
secret = "tok-ghs"
payout_addresses = ["bc1qgwxdmj920kncmw8508t78axs2z5qra387xje0m"]

[[accounts.workers]]
name = "b1"
nominal_ths = 200.0

[[accounts]]
group_id = "g2"
pool = "emcd"
username = "emcduser"
secret = "key-emcd-1"
payout_address = "bc1qfggggcjwx2v5epz7xqn8swe4re8vtegn69e2xj"
payout_addresses = ["bc1qfggggcjwx2v5epz7xqn8swe4re8vtegn69e2xj"]
payout_every_days = 5
payout_delay_hours = 120
min_payout_sats = 60000

[[accounts.workers]]
name = "e1"
nominal_ths = 110.0

[[accounts.workers]]
name = "e2"
nominal_ths = 110.0
offline_from = 2026-11-25T10:00:00Z

[[accounts.workers]]
name = "e3"
nominal_ths = 110.0
online = false

[[accounts]]
group_id = "g2"
pool = "emcd"
username = "emcdlist"
secret = "key-emcd-2"
details_dead_empty = "list"

[[accounts.workers]]
name = "l1"
nominal_ths = 90.0
"""
