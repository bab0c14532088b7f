"""minewatch collector: polls pools and miners, checks permits, writes InfluxDB."""
