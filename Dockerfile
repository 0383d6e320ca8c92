# One image, two commands:
#   API (default):  python -m app                      (PYTHONPATH has api/)
#   operator:       python -m storemigration_operator  (PYTHONPATH has operator/)
# Jobs run api/scripts/*.py from /app. Runs as the non-root user 10001 with a read-only
# root filesystem in the chart; only DATA_DIR (/data) and /tmp are written.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# Every dependency is pinned in api/requirements.txt and ships as a manylinux wheel for
# CPython 3.11, so no compiler is needed; --only-binary refuses a silent source build.
COPY api/requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --only-binary=:all: -r /tmp/requirements.txt

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/api:/app/operator \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000 \
    DATA_DIR=/data
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /data \
    && chown app:app /data
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root api/ /app/api/
COPY --chown=root:root operator/ /app/operator/
COPY --chown=root:root migrations/ /app/migrations/
COPY --chown=root:root crds/ /app/crds/
USER 10001:10001
EXPOSE 8000
VOLUME ["/data"]
CMD ["python", "-m", "app"]
