# The bot in a container: `docker compose up -d` (see docker-compose.yml and README → Hosting).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_URL=sqlite:////app/data/bot.db \
    OAUTH_LISTEN=0.0.0.0:8080

# A fixed uid, so a host folder mounted at /app/data can be given to it: chown 10001 <folder>.
RUN groupadd --system --gid 10001 bot \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /app \
       --shell /usr/sbin/nologin bot

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install --no-cache-dir . \
    && mkdir -p /app/data \
    && chown 10001:10001 /app/data

USER 10001:10001
# The database (SQLite, with its -wal and -shm files) lives here: keep it in a volume.
VOLUME ["/app/data"]
# The /link OAuth pages (only served when OAUTH_PUBLIC_URL is set); put them behind your proxy.
EXPOSE 8080

CMD ["python", "-m", "bot"]
