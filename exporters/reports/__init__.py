"""The monthly production report: one row per group × site × coin × month, as CSV, JSON and a PDF per group.

`generate_monthly` is the entry point (CLI and daemon); `ScheduledReports` runs it when a month falls due.
Layout: `plan` (rows from the config) → `queries` (InfluxQL, batched) → `compute` (pure) → `formats/`.
See README.md for every column.
"""
