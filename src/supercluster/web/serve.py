"""Run the app with uvicorn (``supercluster serve``): loopback by default."""

from __future__ import annotations

from ..errors import InputError

DEFAULT_HOST = "127.0.0.1"  #: loopback: reachable from this machine only unless asked otherwise
DEFAULT_PORT = 8000


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the app until interrupted."""
    if not 0 <= port <= 65535:
        raise InputError(f"expected a port from 0 to 65535, got {port}", field="--port")
    import uvicorn

    from .app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info")
