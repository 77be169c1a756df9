# recruitmail: one image for every process (api, worker, inbound, migrate); docker-compose.yml
# picks the command. Build: docker build -t recruitmail .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the package needs (not .venv, var/, tests); api/static holds the GraphiQL assets.
COPY pyproject.toml README.md ./
COPY core ./core
COPY api ./api
COPY schema ./schema
COPY worker ./worker
COPY inbound ./inbound
COPY recruitmail ./recruitmail
COPY templates ./templates
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data --no-create-home recruitmail \
    && mkdir -p /data/blobs \
    && chown -R recruitmail /data

# State lives in /data: uploaded documents (blobs) and, when RECRUITMAIL_SECRET_KEY is not
# set, the generated secret key. Share it between api, worker and inbound.
ENV RECRUITMAIL_VAR_DIR=/data \
    RECRUITMAIL_BLOB_DIR=/data/blobs
VOLUME ["/data"]
WORKDIR /data
USER recruitmail

# api 8000, inbound SMTP 2525
EXPOSE 8000 2525
CMD ["recruitmail", "api", "--host", "0.0.0.0"]
