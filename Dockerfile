# syntax=docker/dockerfile:1
# The mltrainer dashboard image; the Dask scheduler and workers of deploy/ run the same image
# with another command. Build from the repository root: docker build -t mltrainer .
# No key is baked in: POLYGON_API_KEY / FRED_API_KEY come at run time from the environment
# or from files under /run/secrets (deploy/entrypoint.sh). Checked by tests/deploy/.
# The base is pinned by tag; pin it by digest as well (python:3.11-slim@sha256:...) where
# builds must be reproducible byte for byte.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    MLTRAINER_DATA_DIR=/data \
    MLTRAINER_CACHE_DIR=/cache \
    MLTRAINER_AUDIT_DIR=/audit \
    MLTRAINER_RESULTS_DIR=/results \
    MLTRAINER_READY_FILE=/tmp/mltrainer-ready

WORKDIR /app

# A fixed non-root uid/gid (10001), so volume ownership and runAsUser agree everywhere.
# The writable mount points belong to it before VOLUME, so fresh named volumes do too.
RUN groupadd --system --gid 10001 mltrainer \
    && useradd --system --no-log-init --uid 10001 --gid mltrainer \
        --home-dir /home/mltrainer --create-home --shell /usr/sbin/nologin mltrainer \
    && mkdir -p /data /cache /audit /results \
    && chown mltrainer:mltrainer /cache /audit /results

# Runtime dependencies only (not requirements-dev.txt), plus Dask's scheduler and workers.
COPY requirements.txt ./
COPY deploy/requirements-cluster.txt ./deploy/
RUN pip install --no-cache-dir -r requirements.txt -r deploy/requirements-cluster.txt

# Only what the app needs; the code stays owned by root, read-only for the app user.
COPY app.py README.md ./
COPY .streamlit/config.toml ./.streamlit/
COPY mltrainer/ ./mltrainer/
COPY ui/ ./ui/
COPY pages/ ./pages/
COPY --chmod=0755 deploy/entrypoint.sh /usr/local/bin/mltrainer-entrypoint

USER 10001:10001

EXPOSE 8501
# /data is the market-data folder, mounted read-only; /cache the shared disk cache;
# /audit the audit trail of model runs and backtests; /results the stored leaderboard
# runs (the Leaderboard page shows the latest; a killed run resumes from its tasks).
VOLUME ["/data", "/cache", "/audit", "/results"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4); sys.exit(0 if r.status == 200 else 1)"]

ENTRYPOINT ["/usr/local/bin/mltrainer-entrypoint"]
# ui.serve: `streamlit run app.py` with these options, then a headless warm-up of the default
# pages (the work every session shares); $MLTRAINER_READY_FILE is written once it has ended
CMD ["python", "-m", "ui.serve", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true", "--browser.gatherUsageStats=false"]
