"""Renderers of the monthly report: CSV (all rows), JSON (all rows, with a schema version), PDF (one per group)."""
