"""One module per route area; each exposes ``router(settings) -> APIRouter``, wired in :mod:`service.app`."""
from service.routes import admin, documents, health, library, passages, query, sections

AREAS = (query, sections, passages, documents, library, health, admin)
