"""The HTTP API (FastAPI). So far: health, readiness and the read side."""
