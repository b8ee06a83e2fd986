# tradeagg: one image for every process type (bridge, worker, serve, the CLI).
#   docker build -t tradeagg .
#   docker run --rm -e REDIS_URL=redis://redis:6379/0 -e KAFKA_BOOTSTRAP_SERVERS=kafka:9092 tradeagg worker
FROM python:3.11-slim AS build
WORKDIR /src
# confluent-kafka and hiredis ship manylinux wheels: no compiler needed
COPY setup.py setup.cfg README.md ./
COPY tradeagg ./tradeagg
COPY lua ./lua
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOG_LEVEL=INFO
RUN useradd --create-home --uid 10001 tradeagg
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER tradeagg
WORKDIR /home/tradeagg
# Healthy while Redis answers and no shard's backlog or pending age is past its
# warning level (TRADEAGG_WARN_BACKLOG, TRADEAGG_WARN_PENDING_AGE_MS).
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["tradeagg", "health", "--expect", ""]
ENTRYPOINT ["tradeagg"]
CMD ["--help"]
