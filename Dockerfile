# The minewatch image: `minewatch run` (the collector) by default; `minewatch simulate` for the demo profile.
# Build: docker build -t minewatch:local .      Run: see docker-compose.yml (config is mounted, not baked in).
#
# Two stages: the first installs the package and its dependencies into a virtual environment, the second
# copies only that environment onto a fresh slim Python, so no sources, build tools or pip caches ship.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/minewatch
WORKDIR /src
# What `pip install .` needs: the project metadata (its readme included) and the four packages; their
# package data (*.toml, *.md, py.typed) carries the simulator's scenarios and the sources' READMEs.
COPY pyproject.toml README.md ./
COPY collector ./collector
COPY exporters ./exporters
COPY dashboards ./dashboards
COPY simulator ./simulator
RUN /opt/minewatch/bin/pip install . \
    && /opt/minewatch/bin/python -c "import collector.cli, simulator.server, exporters, dashboards"

FROM python:3.11-slim
ENV PATH=/opt/minewatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A fixed, unprivileged uid; /var/lib/minewatch (the alert state, a volume in docker-compose.yml) is its own,
# so a fresh named volume starts out writable by it.
RUN groupadd --system --gid 10001 minewatch \
    && useradd --system --uid 10001 --gid minewatch --home-dir /var/lib/minewatch --shell /usr/sbin/nologin minewatch \
    && install -d -o minewatch -g minewatch -m 0750 /var/lib/minewatch
COPY --from=build /opt/minewatch /opt/minewatch
# config/ is mounted at /app/config (read-only); relative paths in it resolve as in the repository.
WORKDIR /app
USER minewatch:minewatch
# The Prometheus exporter of `minewatch run` (listen_address = "0.0.0.0" in config/compose/*.toml).
EXPOSE 9108
# Healthy while the exporter answers; docker-compose.yml gives the simulator its own check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/metrics', timeout=4)"]
ENTRYPOINT ["minewatch"]
CMD ["run", "-c", "/app/config/compose/minewatch.toml"]
