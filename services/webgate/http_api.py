"""The JSON HTTP API (docs/protocol.md): thin handlers over the backends.

Bodies are parsed into validated values here (``_fields``); rules about
usernames, passwords and group names belong to the services, which answer
INVALID_ARGUMENT with a message we pass on. Every error leaves through
``error_middleware`` as {"error": {"code", "message"}} with its status.
"""

from __future__ import annotations

import ipaddress
import logging
import time

import orjson
from aiohttp import web

from chorus.common.text import describe_control, forbidden_control
from chorus.wire.limits import (DEFAULT_HISTORY_PAGE, MAX_HISTORY_PAGE, MAX_ID_CHARS, MAX_IDEMPOTENCY_KEY_CHARS,
                                MAX_SEQ)

from .device_cookie import came_over_https, device_token, set_device_cookie
from .errors import (ApiError, BadJson, Forbidden, InvalidArgument, NotFound, RateLimited, TooLarge,
                     Unauthenticated, Unavailable)
from .deps import DEPS
from .frames import group_states, message_json

__all__ = ["routes", "error_middleware", "json_response", "DEPS", "client_address", "is_trusted_proxy"]

log = logging.getLogger(__name__)

MAX_FIELD_CHARS = 1024  # no single field of ours is longer; services check the real limits
MAX_CURSOR_CHARS = 1024  # membership's cursors are far shorter; it checks them
_SECRET_FIELDS = frozenset({"password"})

routes = web.RouteTableDef()


def json_response(body: dict | None, status: int = 200, headers=None) -> web.Response:
    if body is None:
        return web.Response(status=status, headers=headers)
    return web.Response(body=orjson.dumps(body), status=status,
                        content_type="application/json", headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except RateLimited as exc:
        return json_response(exc.body(), exc.status, headers=exc.retry_after_header())
    except ApiError as exc:
        return json_response(exc.body(), exc.status)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[DEPS].settings.max_body_bytes
        return json_response(TooLarge(f"request body is over {limit} bytes").body(), 413)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        message = exc.reason if exc.status != 404 else f"no route {request.method} {request.path}"
        return json_response({"error": {"code": code, "message": message}}, exc.status,
                             headers={k: v for k, v in exc.headers.items() if k == "Allow"})
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return json_response({"error": {"code": "internal", "message": "internal error"}}, 500)


async def _body(request: web.Request) -> dict:
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadJson("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadJson("request body must be a JSON object")
    return body


def _fields(body: dict, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> list[str]:
    values = []
    for name in required + optional:
        value = body.get(name, "" if name in optional else None)
        if value is None:
            raise InvalidArgument(f"{name!r} is required")
        if not isinstance(value, str):
            raise InvalidArgument(f"{name!r} must be a string")
        if len(value) > MAX_FIELD_CHARS:
            raise InvalidArgument(f"{name!r} is longer than {MAX_FIELD_CHARS} characters")
        # A password is only ever hashed, never stored or shown: any character may be in it.
        if name not in _SECRET_FIELDS and (char := forbidden_control(value)) is not None:
            raise InvalidArgument(describe_control(repr(name), char))
        values.append(value)
    return values


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send the header 'Authorization: Bearer TOKEN' (log in first)")
    return token.strip()


async def _account(request: web.Request) -> dict:
    """The person the bearer token names: one of Chorus's own tokens or a site's (identity.py)."""
    return (await request.app[DEPS].identities.identify(bearer_token(request))).user


def _group_id(request: web.Request) -> str:
    group_id = request.match_info["group_id"]
    if len(group_id) > MAX_ID_CHARS:
        raise NotFound("no such group")
    return group_id


@routes.post("/api/register")
async def register(request: web.Request) -> web.Response:
    """Registrations are limited per client address (each costs an argon2 hash); refused ones
    that cost nothing (invalid input, auth down) are given back."""
    deps = request.app[DEPS]
    username, password, display_name = _fields(await _body(request), ("username", "password"),
                                               ("display_name",))
    address = _take_for_address(request, deps.register_limiter, "registrations")
    try:
        user = await deps.auth.register(username, password, display_name)
    except (InvalidArgument, Unavailable):
        deps.register_limiter.give_back(address, time.monotonic())
        raise
    return json_response({"user": user}, 201)


@routes.post("/api/login")
async def login(request: web.Request) -> web.Response:
    """Failed logins are limited per client address here (only the gateway sees it) and, in the
    auth service (shared by every gateway), per known device (the device cookie, passed on) or
    per account for unknown devices; each answers 429 with Retry-After. A success sets the
    device cookie (device_cookie.py)."""
    deps = request.app[DEPS]
    username, password = _fields(await _body(request), ("username", "password"))
    address = _take_for_address(request, deps.login_limiter, "failed logins")
    try:
        token, user, expires_at, device = await deps.auth.login(username, password, device_token(request))
    except Unauthenticated:
        raise  # a wrong password: the attempt counts
    except ApiError:
        deps.login_limiter.give_back(address, time.monotonic())  # not a guess (refused, or auth down)
        raise
    deps.login_limiter.give_back(address, time.monotonic())  # only failures count
    response = json_response({"token": token, "user": user, "expires_at": expires_at})
    via_proxy = is_trusted_proxy(request.remote or "", deps.settings.trusted_proxies)
    secure = came_over_https(request.scheme, request.headers.get("X-Forwarded-Proto"), from_trusted_proxy=via_proxy)
    set_device_cookie(response, *device, secure=secure)
    return response


def _take_for_address(request: web.Request, limiter, what: str) -> str:
    """The client's address, once a token of its bucket in ``limiter`` is taken; RateLimited
    (naming ``what`` is limited) when the bucket is empty."""
    address = client_address(request.remote, request.headers.get("X-Forwarded-For"),
                             request.app[DEPS].settings.trusted_proxies)
    wait = limiter.take(address, time.monotonic())
    if wait:
        raise RateLimited(f"too many {what} from your address; try again later", retry_after_secs=wait)
    return address


def client_address(peer: str | None, forwarded_for: str | None, trusted_proxies) -> str:
    """Who is asking: the peer, unless it is a trusted proxy; then, walking X-Forwarded-For from
    the right (each proxy appends the address it heard from), the first address that is not a
    trusted proxy. Left of that, anything may be forged by the client, so it is never read."""
    address = peer or "unknown"
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    while hops and is_trusted_proxy(address, trusted_proxies):
        address = hops.pop()
    return address


def is_trusted_proxy(address: str, trusted_proxies) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted_proxies)


@routes.post("/api/logout")
async def logout(request: web.Request) -> web.Response:
    """Revokes the token; every gateway closes its sockets within a poll (revocations.py)."""
    deps = request.app[DEPS]
    token = bearer_token(request)
    if deps.identities.is_site_token(token):
        raise InvalidArgument("a site token is not logged out here: it ends at its exp. Sign the person out "
                              "on the site and stop issuing them tokens")
    await deps.auth.logout(token)
    return json_response(None, 204)


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    user = await _account(request)
    groups = await deps.membership.user_groups(user["id"])
    states = await deps.broker.group_states(user["id"], groups)
    return json_response({"user": user, "groups": group_states(groups, states)})


@routes.get("/api/groups/{group_id}/messages")
async def history(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    user = await _account(request)
    group_id = _group_id(request)
    query = request.query
    if "before" in query and "after" in query:
        raise InvalidArgument("give 'before' or 'after', not both")
    before = _query_int(query, "before", default=0, low=1)
    after = _query_int(query, "after", default=None, low=0)
    limit = _query_int(query, "limit", default=DEFAULT_HISTORY_PAGE, low=1, high=MAX_HISTORY_PAGE)
    await _require_member(deps, group_id, user["id"])
    messages, more = await deps.broker.history(group_id, before_seq=before, after_seq=after, limit=limit)
    return json_response({"messages": [message_json(m) for m in messages], "more": more})


@routes.get("/api/groups/{group_id}/members")
async def members(request: web.Request) -> web.Response:
    """A page of the members (``?cursor=`` from the previous page's ``next_cursor``)."""
    deps = request.app[DEPS]
    user = await _account(request)
    group_id = _group_id(request)
    cursor = _query_text(request.query, "cursor", MAX_CURSOR_CHARS)
    await _require_member(deps, group_id, user["id"])
    ids, next_cursor = await deps.membership.members(group_id, cursor)
    profiles = await deps.auth.accounts(ids)
    online = await deps.broker.online(group_id)
    return json_response({"members": [{**profiles[i], "online": i in online} for i in ids if i in profiles],
                          "next_cursor": next_cursor})


async def _require_member(deps, group_id: str, account_id: str) -> None:
    """NotFound for an unknown group, Forbidden for a non-member."""
    if not await deps.membership.is_member(group_id, account_id):
        raise Forbidden("you are not a member of this group")


def _query_text(query, name: str, max_chars: int) -> str:
    """A text query parameter ("" when absent): at most ``max_chars``, no control characters."""
    text = query.get(name, "")
    if len(text) > max_chars:
        raise InvalidArgument(f"{name!r} is longer than {max_chars} characters")
    if (char := forbidden_control(text)) is not None:
        raise InvalidArgument(describe_control(repr(name), char))
    try:
        text.encode()
    except UnicodeEncodeError:
        raise InvalidArgument(f"{name!r} is not valid UTF-8") from None
    return text


def _query_int(query, name: str, *, default: int | None, low: int, high: int = MAX_SEQ) -> int | None:
    if name not in query:
        return default
    text = query[name]
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise InvalidArgument(f"{name!r} must be a whole number from {low} to {high}")
    return int(text)


@routes.get("/api/groups")
async def directory(request: web.Request) -> web.Response:
    """A page of the directory by name: ``?q=`` keeps the names containing it (case and
    look-alikes ignored), ``?cursor=`` continues from the previous page's ``next_cursor``."""
    user = await _account(request)
    query = _query_text(request.query, "q", MAX_FIELD_CHARS)
    cursor = _query_text(request.query, "cursor", MAX_CURSOR_CHARS)
    groups, next_cursor = await request.app[DEPS].membership.directory(user["id"], query, cursor)
    return json_response({"groups": groups, "next_cursor": next_cursor})


@routes.post("/api/groups")
async def create_group(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    user = await _account(request)
    (name,) = _fields(await _body(request), ("name",))
    group = await deps.membership.create_group(user["id"], name)
    return json_response({"group": group}, 201)


@routes.post("/api/groups/{group_id}/join")
async def join_group(request: web.Request) -> web.Response:
    return await _change_membership(request, joined=True)


@routes.post("/api/groups/{group_id}/leave")
async def leave_group(request: web.Request) -> web.Response:
    return await _change_membership(request, joined=False)


async def _change_membership(request: web.Request, *, joined: bool) -> web.Response:
    """Join or leave. The membership service tells the broker once the change is
    committed, so live pages get joined/left from any backend's change alike."""
    deps = request.app[DEPS]
    user = await _account(request)
    change = deps.membership.join if joined else deps.membership.leave
    group, _changed = await change(_group_id(request), user["id"])
    return json_response({"group": group})


@routes.get("/api/config")
async def config(request: web.Request) -> web.Response:
    """The limits the page must respect, from this gateway's settings and chorus.wire.limits,
    so the page keeps no copies of them. No token needed: nothing here is private."""
    return json_response({
        "max_text_chars": request.app[DEPS].settings.max_text_chars,
        "history_page": DEFAULT_HISTORY_PAGE,
        "max_history_page": MAX_HISTORY_PAGE,
        "max_idempotency_key_chars": MAX_IDEMPOTENCY_KEY_CHARS,
    })
