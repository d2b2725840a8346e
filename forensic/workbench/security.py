"""The workbench's guard: who may talk to it and what a request may do.

* **Token**: a random token per start (`new_token`). The URL printed in the terminal carries
  it once (``/?token=...``); the server answers with an HttpOnly, SameSite=Strict cookie and
  redirects to the same page without it. Every later request must carry the cookie. (Cookies
  do not tell ports apart, so each port has its own cookie name: two workbenches side by side
  do not log each other out.)
* **Host**: requests must name the address the server listens on (``127.0.0.1:PORT`` or
  ``localhost:PORT``): a page on another site that rebinds its DNS name to 127.0.0.1 is
  refused (DNS rebinding).
* **CSRF**: every state-changing request (POST) must carry the token in the
  ``X-Forensic-Token`` header (the page reads it from a ``<meta>`` tag only a request with the
  cookie can get) and an ``Origin`` that is the server's own.
* **Read-only**: a reviewer's server refuses every route that writes to the case.
* Responses carry a strict Content-Security-Policy (no inline script, nothing from elsewhere),
  ``nosniff``, no referrer, no framing and no caching.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Collection
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "forensic_workbench"
HEADER = "x-forensic-token"
SAFE_METHODS = frozenset({"GET", "HEAD"})
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'self'; frame-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"cache-control", b"no-store"),
]


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def same(a: str | None, b: str) -> bool:
    """Constant-time comparison (the token must not leak through timing)."""
    return a is not None and hmac.compare_digest(a.encode(), b.encode())


class Guard:
    """ASGI middleware enforcing the rules of the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str,
        hosts: Collection[str],
        read_only: bool,
        write_paths: Collection[str],
        cookie: str = COOKIE,
    ) -> None:
        self.app = app
        self.cookie = cookie
        self.token = token
        self.hosts = set(hosts)
        self.read_only = read_only
        self.write_paths = tuple(write_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"].upper()
        path: str = scope["path"]
        host = headers.get("host", "")
        if host not in self.hosts:
            await _refuse(send, 403, f"host {host!r} is not this workbench's address")
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        offered = query.get("token", [None])[0]
        if offered is not None and method in SAFE_METHODS:
            if not same(offered, self.token):
                await _refuse(send, 403, "wrong token: open the address the terminal printed")
                return
            # Trade the token in the address for a cookie, and drop it from the address.
            rest = {k: v for k, v in query.items() if k != "token"}
            target = path + ("?" + urlencode(rest, doseq=True) if rest else "")
            cookie = SimpleCookie()
            cookie[self.cookie] = self.token
            cookie[self.cookie]["httponly"] = True
            cookie[self.cookie]["samesite"] = "Strict"
            cookie[self.cookie]["path"] = "/"
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [
                        (b"location", target.encode()),
                        (b"set-cookie", cookie[self.cookie].OutputString().encode()),
                        *SECURITY_HEADERS,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header is simply no cookie
            cookies = SimpleCookie()
        jar = cookies.get(self.cookie)
        if not same(None if jar is None else jar.value, self.token):
            await _refuse(send, 403, "no valid session: open the address the terminal printed")
            return
        if method not in SAFE_METHODS:
            if not same(headers.get(HEADER), self.token):
                await _refuse(send, 403, "missing or wrong CSRF token header")
                return
            origin = headers.get("origin")
            if origin is None or origin != f"http://{host}":
                await _refuse(send, 403, f"cross-origin request refused (Origin {origin!r})")
                return
            if self.read_only and path.startswith(self.write_paths):
                await _refuse(send, 403, "this workbench is read-only: it does not write")
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", []), *SECURITY_HEADERS],
                }
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
