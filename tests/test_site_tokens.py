"""Other websites sign in their own users (issue 12): the whole stack as processes (`chorus up`,
told the sites as flags), a real WebSocket and HTTP client, the auth database looked into for
"nothing was created".

The school shares an HS256 secret with Chorus; the shop signs RS256 and publishes a JWKS file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import aiohttp
import orjson
import pytest

from chat import Api, Page, Person, unique
from sites import KeyPairSite, SharedSecretSite, unsigned_token

MAX_LIFETIME_SECS = 600
ALLOWED_ORIGIN = "https://school.example"


@pytest.fixture(scope="module")
def school() -> SharedSecretSite:
    return SharedSecretSite("school")


@pytest.fixture(scope="module")
def shop() -> KeyPairSite:
    return KeyPairSite("shop", "RS256")


@pytest.fixture(scope="module")
def site_stack(start_stack, tmp_path_factory, school, shop):
    folder = tmp_path_factory.mktemp("sites")
    flags = ["--site-issuer", "school", "--site-key-file", str(school.write_key(folder)),
             "--site-issuer", "shop", "--site-jwks", str(shop.write_jwks(folder)),
             "--allowed-origins", ALLOWED_ORIGIN]
    with start_stack({"CHORUS_SITE_TOKEN_MAX_LIFETIME_SECS": str(MAX_LIFETIME_SECS)}, flags) as stack:
        yield stack


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def open_with(http, stack, token: str, headers=None) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(stack.ws_url, headers=headers or {})
    await ws.send_str(orjson.dumps({"op": "auth", "token": token}).decode())
    return ws


async def ready_page(http, stack, token: str) -> Page:
    person = Person(Api(http, stack.base_url), stack.ws_url, "site user", "")
    person.token = token
    page = Page(person, await open_with(http, stack, token))
    page.ready = await page.expect("ready")
    return page


def external_accounts(stack, subject: str) -> int:
    with sqlite3.connect(stack.data_dir / "auth.db") as db:
        return db.execute("SELECT count(*) FROM external_accounts WHERE subject = ?", (subject,)).fetchone()[0]


async def test_each_refused_site_token_closes_4001_with_its_reason_and_creates_nothing(site_stack, http, school,
                                                                                      shop):
    subject = unique("refused-")
    cases = {
        "wrong key": (SharedSecretSite("school").token(sub=subject), "bad signature"),
        "wrong issuer": (SharedSecretSite("elsewhere").token(sub=subject), "unknown issuer 'elsewhere'"),
        "expired": (school.token(sub=subject, lifetime=-10), "site token expired"),
        "exp too far away": (school.token(sub=subject, lifetime=MAX_LIFETIME_SECS + 120),
                             f"more than {MAX_LIFETIME_SECS} s away"),
        "missing sub": (school.token(sub=None), "missing claim 'sub'"),
        "alg none": (unsigned_token("school", sub=subject), "alg none is refused"),
        "unknown kid": (shop.token(sub=subject, kid="not-published"), "unknown kid 'not-published'"),
    }
    for case, (token, reason) in cases.items():
        page = Page(Person(None, site_stack.ws_url, case, ""), await open_with(http, site_stack, token))
        code, said = await page.closed()
        assert code == 4001 and reason in said, (case, code, said)
    assert external_accounts(site_stack, subject) == 0
    # The same person with a good token gets in: the refusals were about the tokens.
    assert (await ready_page(http, site_stack, school.token(sub=subject))).ready["user"]["id"]


async def test_a_site_user_is_created_on_first_sight_and_renamed_by_later_tokens(site_stack, http, school):
    subject = unique("pupil-")
    first = await ready_page(http, site_stack, school.token(sub=subject, name="Ann Example"))
    assert first.ready["user"]["display_name"] == "Ann Example"
    assert external_accounts(site_stack, subject) == 1
    second = await ready_page(http, site_stack, school.token(sub=subject, name="Ann Married"))
    assert second.ready["user"]["id"] == first.ready["user"]["id"]
    assert second.ready["user"]["display_name"] == "Ann Married"
    assert external_accounts(site_stack, subject) == 1
    # Both sockets are one person's: what one posts reaches the other.
    group = (await Api(http, site_stack.base_url).ok("POST", "/api/groups", json={"name": unique("class")},
                                                       token=school.token(sub=subject)))["group"]
    await first.expect("joined")
    await second.expect("joined")
    await first.post_and_ack(group, "homework?")
    await second.expect("message", text="homework?")


async def test_the_same_id_on_two_sites_is_two_people(site_stack, http, school, shop):
    subject = unique("7-")
    at_school = await ready_page(http, site_stack, school.token(sub=subject))
    at_shop = await ready_page(http, site_stack, shop.token(sub=subject))
    assert at_school.ready["user"]["id"] != at_shop.ready["user"]["id"]


async def test_the_http_api_takes_site_tokens_as_bearer(site_stack, http, shop):
    api = Api(http, site_stack.base_url)
    token = shop.token(sub=unique("customer-"), name="Cee Customer")
    me = await api.ok("GET", "/api/me", token=token)
    assert me["user"]["display_name"] == "Cee Customer" and me["groups"] == []
    group = (await api.ok("POST", "/api/groups", json={"name": unique("orders")}, token=token))["group"]
    assert [g["id"] for g in (await api.ok("GET", "/api/me", token=token))["groups"]] == [group["id"]]
    status, body = await api.call("GET", "/api/me", token=shop.token(lifetime=-5))
    assert status == 401 and body["error"]["message"] == "site token expired"
    status, body = await api.call("POST", "/api/logout", token=token)
    assert status == 400 and "ends at its exp" in body["error"]["message"]


async def test_a_site_name_that_breaks_the_name_rules_is_refused_with_the_rule(site_stack, http, school):
    subject = unique("mixed-")
    page = Page(Person(None, site_stack.ws_url, "mixed", ""),
                await open_with(http, site_stack, school.token(sub=subject, name="Аnn with a Cyrillic A")))
    code, said = await page.closed()
    assert code == 4001 and "mixes scripts" in said
    assert external_accounts(site_stack, subject) == 0


async def test_refresh_in_band_keeps_the_socket_past_the_first_tokens_expiry(site_stack, http, school):
    subject = unique("refresher-")
    page = await ready_page(http, site_stack, school.token(sub=subject, lifetime=3))
    assert page.ready["expires_at"] <= (time.time() + 3) * 1000
    await page.send({"op": "refresh", "token": school.token(sub=subject, lifetime=120), "ref": "r1"})
    refreshed = await page.expect("refreshed", ref="r1")
    assert refreshed["expires_at"] >= (time.time() + 100) * 1000
    await asyncio.sleep(4)  # past the first token's expiry
    await page.send({"op": "ping"})
    await page.expect("pong")


async def test_a_bad_refresh_token_is_an_error_and_the_session_carries_on(site_stack, http, school):
    subject = unique("badrefresh-")
    page = await ready_page(http, site_stack, school.token(sub=subject))
    await page.send({"op": "refresh", "token": school.token(sub=subject, lifetime=-1), "ref": "r2"})
    error = await page.expect("error", ref="r2")
    assert error["code"] == "unauthenticated" and error["message"] == "site token expired"
    await page.send({"op": "ping"})
    await page.expect("pong")


async def test_a_refresh_token_of_another_account_closes_the_socket(site_stack, http, school):
    page = await ready_page(http, site_stack, school.token(sub=unique("first-")))
    await page.send({"op": "refresh", "token": school.token(sub=unique("second-"))})
    assert await page.closed() == (4001, "refresh token is for another account")


async def test_a_socket_whose_token_expires_without_refresh_is_closed(site_stack, http, school):
    page = await ready_page(http, site_stack, school.token(sub=unique("expiring-"), lifetime=2))
    started = time.monotonic()
    assert await page.closed(timeout=10) == (4001, "token expired")
    assert time.monotonic() - started < 4


async def test_websockets_from_foreign_origins_are_refused(site_stack, http, school):
    token = school.token(sub=unique("origin-"))
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(site_stack.ws_url, headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    own = site_stack.base_url  # the gateway's own page
    for origin in (own, ALLOWED_ORIGIN):
        ws = await open_with(http, site_stack, token, headers={"Origin": origin})
        assert orjson.loads((await ws.receive(timeout=5)).data)["op"] == "ready", origin
        await ws.close()


async def test_pages_of_allowed_origins_may_call_the_api(site_stack, http, school):
    async with http.options(site_stack.base_url + "/api/me", headers={
            "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"}) as preflight:
        assert preflight.status == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
        assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    async with http.get(site_stack.base_url + "/api/me", headers={
            "Origin": "https://evil.example", "Authorization": f"Bearer {school.token()}"}) as foreign:
        assert "Access-Control-Allow-Origin" not in foreign.headers
