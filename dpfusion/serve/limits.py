"""What one server accepts: the numbers that keep a shared server alive, and the request-size guard."""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

FORM_OVERHEAD = 64 * 1024
"""Room for multipart boundaries and small form fields on top of the largest file."""


@dataclass(frozen=True)
class Limits:
    """Bounds on uploads, decoding work and kept state; defaults suit one person on a laptop."""

    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 2_000_000
    max_steps: int = 50
    queue_size: int = 4
    session_ttl_s: float = 1800.0
    max_sessions: int = 16
    cached_images: int = 4


def size_text(count: float) -> str:
    """Bytes for people: ``20.0 MB``, ``20 kB``."""
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.0f} kB"


def _reject(status: int, message: str) -> tuple[dict, dict]:
    body = json.dumps({"error": message}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body}


class BodyLimit:
    """Refuse a request body before reading it when its declared length is missing or over the limit.

    Browsers and curl always declare the length of a form upload; uvicorn (h11) then
    refuses a body longer than declared, so nothing larger than the limit is ever read.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            problem = self._problem(dict(scope["headers"]).get(b"content-length"))
            if problem is not None:
                for message in _reject(*problem):
                    await send(message)
                return
        await self.app(scope, receive, send)

    def _problem(self, length: bytes | None) -> tuple[int, str] | None:
        if length is None:
            return 411, "request body needs a Content-Length header"
        if not length.isdigit():
            return 400, "Content-Length is not a number"
        if int(length) > self.max_bytes:
            limit = size_text(self.max_bytes - FORM_OVERHEAD)
            return 413, f"upload is {size_text(int(length))}, over the limit of {limit}"
        return None
