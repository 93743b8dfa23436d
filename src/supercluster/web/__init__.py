"""The web app: a FastAPI JSON API over the library and one page (``supercluster serve``); presentation only."""

from .app import create_app
from .limits import MAX_BODY_BYTES, MAX_GPUS, MAX_RUNS, MAX_TOP
from .serve import serve

__all__ = ["MAX_BODY_BYTES", "MAX_GPUS", "MAX_RUNS", "MAX_TOP", "create_app", "serve"]
