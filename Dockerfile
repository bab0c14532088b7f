# The minewatch collector. Build: docker build -t minewatch .   Run: see docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY collector ./collector
COPY exporters ./exporters
COPY dashboards ./dashboards
COPY simulator ./simulator
RUN pip install --no-cache-dir . && useradd --system --no-create-home minewatch
COPY config ./config
USER minewatch
ENV MINEWATCH_CONFIG=/app/config/minewatch.toml
ENTRYPOINT ["minewatch"]
CMD ["run"]
