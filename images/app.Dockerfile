# The one app image: api, dispatcher, workers, migrate and the simulator; the role is the command.
FROM python:3.11.11-slim-bookworm

# WORKER_COUNT: supervisord's numprocs needs it in the environment; the default of
# core/settings.py and .env.example (tests/unit/test_compose.py keeps them equal).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WORKER_COUNT=16 \
    SOUS_SUPERVISOR_DIR=/tmp \
    SOUS_SUPERVISOR_EXTRA=/app/images/extra/*.conf

RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd fonts-dejavu-core libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 sous

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY core ./core
COPY model ./model
COPY worker ./worker
COPY cli ./cli
COPY devtools ./devtools
COPY api ./api
COPY migrations ./migrations
COPY loadtest ./loadtest
COPY images ./images
RUN pip install .

USER sous
CMD ["sous", "--help"]
