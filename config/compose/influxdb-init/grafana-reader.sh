#!/bin/bash
# Grafana's InfluxDB login: `grafana`, read-only on the initial bucket (`minewatch`).
#
# Why: Grafana only reads, and anyone who can use a dashboard can make Grafana send queries with its
# datasource credentials. With InfluxDB's all-access admin token those could write and delete data; with this
# login they can only read. It is an InfluxDB 1.x-API (v1 auth) login because the datasource speaks InfluxQL
# over the v1-compatible API with basic auth (dashboards/provisioning/datasources/minewatch.yaml).
#
# The influxdb:2.x image runs /docker-entrypoint-initdb.d/*.sh (docker-compose.yml mounts this directory
# there, read-only) once, right after its initial setup, with DOCKER_INFLUXDB_INIT_BUCKET_ID and
# DOCKER_INFLUXDB_INIT_ORG exported and the influx CLI configured with the admin token. It never runs again:
# a new GRAFANA_INFLUX_PASSWORD needs `docker-compose down -v` (deletes all data) or
#     docker-compose exec influxdb influx v1 auth set-password --username grafana --password NEW
set -euo pipefail

: "${GRAFANA_INFLUX_PASSWORD:?set GRAFANA_INFLUX_PASSWORD (the read-only InfluxDB login Grafana uses)}"
: "${DOCKER_INFLUXDB_INIT_BUCKET_ID:?not set: this script runs only from the influxdb image's initial setup}"
: "${DOCKER_INFLUXDB_INIT_ORG:?not set: this script runs only from the influxdb image's initial setup}"

# Read permission on the bucket, and no other permission: the login can query it and do nothing else.
influx v1 auth create \
    --username grafana \
    --password "${GRAFANA_INFLUX_PASSWORD}" \
    --read-bucket "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
    --org "${DOCKER_INFLUXDB_INIT_ORG}" \
    --description "Grafana (read-only)"
