# syntax=docker/dockerfile:1
# abscope's service image: `abscope serve` on 0.0.0.0:8000, as an unprivileged user.
#
#   docker build -t abscope .
#   docker run --rm -p 8000:8000 \
#     -e ABSCOPE_ADMIN_API_KEY -e ABSCOPE_INGEST_API_KEY -e ABSCOPE_READ_API_KEY abscope
#
# Settings are ABSCOPE_* environment variables given at run time (README, "Deploy"); the API
# keys are never baked into the image. Without a key, `abscope serve` refuses to listen on
# 0.0.0.0 and the container exits 2: an operator who really wants every route open passes
# the command with --allow-no-keys. With no ABSCOPE_REDIS_URL the store is SQLite in
# /var/lib/abscope, which the image's user owns (mount a volume there to keep it).
#
# tests/deploy/test_image_rehearsal.py reads this file's ENV, USER, WORKDIR, HEALTHCHECK and
# CMD and runs them outside Docker against the same lock; keep them in the exec (JSON) form.

# Both stages use one base, so the venv's interpreter path exists in the runtime stage.
FROM python:3.11.13-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src

# The dependencies first, from the hashed locks only (scripts/lock.sh): this layer is reused
# until a lock changes. --only-binary: nothing is compiled, so no compiler in the image.
COPY requirements/ requirements/
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes --no-deps --only-binary :all: \
       -r requirements/build.lock \
    && python -m venv /opt/abscope \
    && /opt/abscope/bin/pip install --require-hashes --no-deps --only-binary :all: \
       -r requirements/server.lock

# Then abscope's own wheel, built by the locked hatchling, installed without dependencies:
# the lock above is the whole environment.
COPY pyproject.toml README.md LICENSE ./
COPY src/ src/
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /dist . \
    && /opt/abscope/bin/pip install --no-deps /dist/abscope-*.whl \
    && /opt/abscope/bin/pip check


FROM python:3.11.13-slim-bookworm AS runtime

# A fixed uid and gid, so that volumes and Kubernetes' runAsUser can name them.
RUN groupadd --system --gid 10001 abscope \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/abscope \
       --no-create-home --shell /usr/sbin/nologin abscope \
    && install --directory --owner=10001 --group=10001 --mode=0750 /var/lib/abscope

COPY --from=builder /opt/abscope /opt/abscope

ENV PATH="/opt/abscope/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ABSCOPE_DB_PATH=/var/lib/abscope/abscope.db

WORKDIR /var/lib/abscope
VOLUME ["/var/lib/abscope"]
USER 10001:10001
EXPOSE 8000

# The slim image has no curl: the venv's Python asks /health, which needs no key.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

CMD ["abscope", "serve", "--host", "0.0.0.0", "--port", "8000"]
