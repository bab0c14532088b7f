"""Pool sources, one folder per pool API."""
