"""Where points go: line protocol, InfluxDB transports, stdout."""
