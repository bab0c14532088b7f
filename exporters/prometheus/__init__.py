"""The Prometheus exporter: a custom collector over minewatch's last snapshots, its server, catalogue and rules.

`start_exporter(collector, engine)` serves it; `python -m exporters.prometheus` regenerates METRICS.md and the
alerting rules under config/prometheus/.
"""

from exporters.prometheus.server import ExporterServer, render_scrape, start_exporter

__all__ = ["ExporterServer", "render_scrape", "start_exporter"]
