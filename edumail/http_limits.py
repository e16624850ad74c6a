"""The size limit on request bodies of `edumail serve`: 413 over 64 KiB, declared or streamed.

The public form (/f/NAME) gets a calm French page; every other route a plain line.
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 64 * 1024


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    await too_large(scope.get("path", ""))(scope, receive, send)
                    return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        await self.app(scope, limited, send)


def too_large(path: str = "") -> Response:
    if path.startswith("/f/"):  # a person filled the public form: a calm page in French
        from edumail import web_forms

        return web_forms.too_large()
    return PlainTextResponse(f"request body too large (limit {MAX_BODY // 1024} KiB)\n", status_code=413)
