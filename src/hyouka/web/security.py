"""Who may bind where, the access token, and the headers every response carries."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
COOKIE = "hyouka_token"
HEADER = "x-hyouka-token"
# rater pages carry the rater's own token (checked against the study by the page); the assets they
# load are the package's, no store data
OPEN_PREFIXES = ("/rate/", "/api/rate/", "/static/", "/fonts")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token."""
    if not is_loopback(host) and not token:
        raise ValueError(f"--host {host} makes the dashboard reachable from other machines: give --token "
                         "(or set HYOUKA_TOKEN) so that only holders of it can read the store")


class SecurityMiddleware(BaseHTTPMiddleware):
    """Headers on every response; with a token, 401 for any request that does not carry it.

    The token is accepted from the ``X-Hyouka-Token`` header, an ``Authorization: Bearer`` header, the
    cookie, or ``?token=`` (which sets the cookie and redirects to the same address without it).
    Rater pages (``/rate/…``) and the package's assets need no dashboard token: a rater holds only a
    rater token, which the rater page checks against its study.
    """

    def __init__(self, app: ASGIApp, token: str | None = None) -> None:
        super().__init__(app)
        self.token = token

    def _given(self, request: Request) -> tuple[str | None, bool]:
        auth = request.headers.get("authorization", "")
        for value in (request.headers.get(HEADER), auth[7:] if auth.lower().startswith("bearer ") else None,
                      request.cookies.get(COOKIE)):
            if value:
                return value, False
        query = request.query_params.get("token")
        return query, bool(query)

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if self.token and not request.url.path.startswith(OPEN_PREFIXES):
            given, from_query = self._given(request)
            if not given or not hmac.compare_digest(given.encode(), self.token.encode()):
                response: Response = PlainTextResponse("401: this dashboard needs its token "
                                                       "(?token=, X-Hyouka-Token header or cookie)", status_code=401)
            elif from_query:
                params = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                query = urlencode(params)
                response = RedirectResponse(request.url.path + (f"?{query}" if query else ""), status_code=303)
                response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            else:
                response = await call_next(request)
        else:
            response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        return response
