"""The Grafana provisioning files agree with the dashboards they serve."""

from __future__ import annotations

from typing import Any

import yaml
from dashboard_json import ROOT
from grafana_macros import DATASOURCE_MIN_INTERVAL_MS

from dashboards.panels import DATASOURCE_UID

PROVISIONING = ROOT / "dashboards" / "provisioning"


def _load(relative: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((PROVISIONING / relative).read_text(encoding="utf-8"))
    return data


def test_the_datasource_is_the_one_every_panel_names_and_speaks_influxql_with_the_read_only_login() -> None:
    [source] = _load("datasources/minewatch.yaml")["datasources"]
    assert (source["uid"], source["type"], source["url"]) == (DATASOURCE_UID, "influxdb", "http://influxdb:8086")
    json_data = source["jsonData"]
    assert (json_data["version"], json_data["dbName"], json_data["httpMode"]) == ("InfluxQL", "minewatch", "POST")
    assert json_data["timeInterval"] == f"{DATASOURCE_MIN_INTERVAL_MS // 1000}s"  # the floor the query test assumes
    # InfluxDB 1.x-API credentials of the read-only `grafana` login, never the admin token in a header.
    assert source["user"] == "grafana"
    assert source["secureJsonData"] == {"password": "${GRAFANA_INFLUX_PASSWORD}"}
    assert not [key for key in json_data if key.startswith("httpHeader")], "no custom (token) header"
    text = (PROVISIONING / "datasources" / "minewatch.yaml").read_text(encoding="utf-8")
    assert "MINEWATCH_INFLUX_TOKEN" not in text


def test_the_dashboard_provider_reads_the_mounted_generated_directory() -> None:
    [provider] = _load("dashboards/minewatch.yaml")["providers"]
    assert (provider["type"], provider["folder"]) == ("file", "minewatch")
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert "foldersFromFilesStructure" not in provider["options"]  # it would conflict with `folder`
