"""Reading credentials from an HTTP request, in the contract's order."""

from __future__ import annotations

from aiohttp import web

from autosdlc_ws.core.auth import Credentials

COOKIE_NAME = "autosdlc_token"


def request_credentials(request: web.Request, *, allow_query: bool = True,
                        allow_cookie: bool = True) -> Credentials:
    """`Authorization: Bearer`, `X-API-Key`, `?token=`/`?api_key=`, cookie `autosdlc_token`.

    The HTTP API passes `allow_query=False, allow_cookie=False`: a browser attaches
    a cookie to a cross-site form POST (no CORS preflight for text/plain), so a
    cookie there would let any web page publish as, or administer for, its user."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return Credentials(token=auth[7:].strip())
    key = request.headers.get("X-API-Key")
    if key:
        return Credentials(api_key=key.strip())
    if allow_query:
        token = request.query.get("token")
        if token:
            return Credentials(token=token)
        api_key = request.query.get("api_key")
        if api_key:
            return Credentials(api_key=api_key)
    cookie = request.cookies.get(COOKIE_NAME) if allow_cookie else None
    if cookie:
        return Credentials(token=cookie)
    return Credentials()


def json_error(status: int, code: str, message: str, path: str | None = None,
               headers: dict[str, str] | None = None) -> web.Response:
    error: dict[str, object] = {"code": code, "message": message}
    if path is not None:
        error["path"] = path
    return web.json_response({"error": error}, status=status, headers=headers)
