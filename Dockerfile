# The gam image: one image for the projector, the relay (and, later, the API).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY projections ./projections
COPY services ./services
COPY infra ./infra
COPY schemas ./schemas
# The personal-data key store's volume (compose: gamkeys) takes this directory's owner.
RUN pip install . && useradd --create-home --uid 10001 gam && install -d -o gam -m 700 /var/lib/gam-keys
USER gam
ENTRYPOINT ["gam"]
CMD ["--help"]
