"""Every limit, as a person or a script hitting it would notice, on a stack of its own
whose limits are small (so the shared stack's tests never meet them).

Each login-limit test connects from its own loopback address (127.0.0.N), so
the per-address limit of one test is not spent by another.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest

from chat import Api, Person, assert_delivered_to, assert_nothing_arrives, unique
from chorus.webgate.device_cookie import DEVICE_COOKIE
from chorus.wire.limits import DEFAULT_HISTORY_PAGE, MAX_HISTORY_PAGE, MAX_IDEMPOTENCY_KEY_CHARS

WS_PER_SEC, WS_BURST = 0.5, 5  # slow refill: a loaded machine answering the burst slowly adds no token
LOGIN_FAILURES_PER_IP, LOGIN_FAILURES_PER_ACCOUNT = 6, 3
MEMBERS_PER_GROUP, GROUPS_PER_ACCOUNT = 3, 3
MAX_TEXT_CHARS, MAX_FRAME_BYTES, MAX_BODY_BYTES = 100, 2048, 1024

LIMITS = {
    "CHORUS_WS_MESSAGES_PER_SEC": str(WS_PER_SEC),
    "CHORUS_WS_MESSAGES_BURST": str(WS_BURST),
    "CHORUS_LOGIN_FAILURES_PER_IP": str(LOGIN_FAILURES_PER_IP),
    "CHORUS_LOGIN_FAILURES_PER_ACCOUNT": str(LOGIN_FAILURES_PER_ACCOUNT),
    "CHORUS_LOGIN_FAILURE_WINDOW_SECS": "600",
    "CHORUS_MAX_MEMBERS_PER_GROUP": str(MEMBERS_PER_GROUP),
    "CHORUS_MAX_GROUPS_PER_ACCOUNT": str(GROUPS_PER_ACCOUNT),
    "CHORUS_MAX_TEXT_CHARS": str(MAX_TEXT_CHARS),
    "CHORUS_WS_MAX_FRAME_BYTES": str(MAX_FRAME_BYTES),
    "CHORUS_HTTP_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
    "CHORUS_TRUSTED_PROXIES": "127.0.0.7",  # plays a reverse proxy in the test below
    # These tests register many people from 127.0.0.1; registrations get their own stack below.
    "CHORUS_REGISTRATIONS_PER_IP": "1000000",
}
REGISTRATIONS_PER_IP = 3


@pytest.fixture(scope="module")
def limited(start_stack):
    with start_stack(LIMITS) as stack:
        yield stack


@contextlib.asynccontextmanager
async def api_from(stack, address: str = "127.0.0.1"):
    """The limited stack's API as seen from ``address`` (any 127.0.0.0/8 address is loopback)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        yield Api(http, stack.base_url)


@pytest.fixture
async def people(limited):
    async with api_from(limited) as api:
        async def make(*names):
            return [await Person.register(api, limited.ws_url, name) for name in names]
        yield make


async def login(api: Api, username: str, password: str, *, forwarded_for: str | None = None,
                device_cookie: str | None = None):
    return (await login_response(api, username, password, forwarded_for=forwarded_for,
                                 device_cookie=device_cookie))[:3]


async def login_response(api: Api, username: str, password: str, *, forwarded_for: str | None = None,
                         device_cookie: str | None = None, headers: dict | None = None):
    """(status, body, Retry-After, the device cookie set (a Morsel) or None). Cookies are sent by
    hand: aiohttp's jar keeps none for an IP address, and a test must say which device it is."""
    headers = dict(headers or {})
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    if device_cookie:
        headers["Cookie"] = f"{DEVICE_COOKIE}={device_cookie}"
    async with api.http.post(api.base_url + "/api/login", headers=headers,
                             json={"username": username, "password": password}) as response:
        return (response.status, await response.json(), response.headers.get("Retry-After"),
                response.cookies.get(DEVICE_COOKIE))


# messages per second per WebSocket ------------------------------------------------------

async def test_a_page_sending_too_fast_gets_rate_limited_errors_and_stays_connected(people):
    alice, bob = await people("alice", "bob")
    group = await alice.create_group()
    await bob.join(group)
    page, watcher = await alice.open_page(), await bob.open_page()

    frames = 2 * WS_BURST
    for n in range(frames):  # back to back: far faster than WS_PER_SEC
        await page.send({"op": "send", "group": group["id"], "text": f"burst {n}", "ref": f"b{n}"})
    answers = {}
    for _ in range(frames):
        frame = await _ack_or_error(page)
        answers[frame["ref"]] = frame
    acked = [ref for ref, f in answers.items() if f["op"] == "ack"]
    refused = [f for f in answers.values() if f["op"] == "error"]
    assert len(answers) == frames, "every frame is answered, under its own ref"
    assert WS_BURST <= len(acked) <= WS_BURST + 1, "the burst passes (plus what refilled meanwhile)"
    assert refused and all(f["code"] == "rate_limited" and f["retry_after_ms"] > 0 for f in refused), refused
    for ref in acked:
        await watcher.expect("message", group=group["id"], text=f"burst {ref[1:]}")
    await assert_nothing_arrives(watcher)  # the refused ones were not posted

    await asyncio.sleep(max(f["retry_after_ms"] for f in refused) / 1000)
    await page.post_and_ack(group, "after waiting")
    await assert_delivered_to([watcher], group, "after waiting")


async def _ack_or_error(page) -> dict:
    """The next ack or error frame; the page's own messages are skipped."""
    while True:
        frame = await page.next_frame()
        if frame["op"] in ("ack", "error"):
            return frame


# members per group, groups per account -------------------------------------------------

async def test_a_full_group_refuses_one_more_member_until_someone_leaves(people):
    owner, *others, late = await people(*["member"] * MEMBERS_PER_GROUP, "late")
    group = await owner.create_group()
    for person in others:
        await person.join(group)
    status, body = await late.api.call("POST", f"/api/groups/{group['id']}/join", token=late.token)
    assert status == 409, body
    assert body["error"] == {"code": "failed_precondition",
                             "message": f"group has reached {MEMBERS_PER_GROUP} members"}
    await others[0].leave(group)
    assert (await late.join(group))["id"] == group["id"]


async def test_an_account_in_too_many_groups_can_neither_create_nor_join_another(people):
    busy, other = await people("busy", "other")
    for _ in range(GROUPS_PER_ACCOUNT):
        await busy.create_group()
    elsewhere = await other.create_group()
    expected = {"code": "failed_precondition",
                "message": f"an account may join at most {GROUPS_PER_ACCOUNT} groups"}
    status, body = await busy.api.call("POST", "/api/groups", json={"name": unique("one more")},
                                       token=busy.token)
    assert (status, body["error"]) == (409, expected)
    status, body = await busy.api.call("POST", f"/api/groups/{elsewhere['id']}/join", token=busy.token)
    assert (status, body["error"]) == (409, expected)


# failed logins --------------------------------------------------------------------------

async def test_failed_logins_to_one_account_lock_it_for_a_while_even_with_the_right_password(limited):
    async with api_from(limited, "127.0.0.3") as api:
        victim = await Person.register(api, limited.ws_url, "victim")
        bystander = await Person.register(api, limited.ws_url, "bystander")
        for _ in range(LOGIN_FAILURES_PER_ACCOUNT):
            status, body, _ = await login(api, victim.username, "wrong password!")
            assert (status, body["error"]["code"]) == (401, "unauthenticated")
        status, body, retry_after = await login(api, victim.username.upper(), victim.password)
        assert (status, body["error"]["code"]) == (429, "rate_limited"), body
        assert retry_after is not None and int(retry_after) >= 1
        assert (await login(api, bystander.username, bystander.password))[0] == 200, "other accounts log in"
        status, _ = await api.call("GET", "/api/me", token=victim.token)
        assert status == 200, "a token issued before keeps working"


async def test_failed_logins_from_one_address_are_limited_there_only(limited):
    async with api_from(limited, "127.0.0.4") as api:
        people = [await Person.register(api, limited.ws_url, "guessed") for _ in range(LOGIN_FAILURES_PER_IP)]
        for person in people:  # one failure per account: the per-account limit is never reached
            assert (await login(api, person.username, "wrong password!"))[0] == 401
        status, body, retry_after = await login(api, people[0].username, people[0].password)
        assert (status, body["error"]["code"]) == (429, "rate_limited"), body
        assert int(retry_after) >= 1
    async with api_from(limited, "127.0.0.5") as elsewhere:
        assert (await login(elsewhere, people[0].username, people[0].password))[0] == 200


async def test_behind_a_trusted_proxy_the_forwarded_client_address_is_limited(limited):
    async with api_from(limited, "127.0.0.7") as proxy:
        people = [await Person.register(proxy, limited.ws_url, "proxied") for _ in range(LOGIN_FAILURES_PER_IP)]
        for person in people:
            assert (await login(proxy, person.username, "wrong password!", forwarded_for="198.51.100.1"))[0] == 401
        status, _, _ = await login(proxy, people[0].username, people[0].password, forwarded_for="198.51.100.1")
        assert status == 429
        status, _, _ = await login(proxy, people[0].username, people[0].password, forwarded_for="198.51.100.2")
        assert status == 200, "another client behind the same proxy is not held back"


async def test_an_untrusted_peer_cannot_dodge_the_limit_with_x_forwarded_for(limited):
    async with api_from(limited, "127.0.0.8") as api:
        people = [await Person.register(api, limited.ws_url, "dodger") for _ in range(LOGIN_FAILURES_PER_IP)]
        for n, person in enumerate(people):
            status, _, _ = await login(api, person.username, "wrong password!", forwarded_for=f"192.0.2.{n}")
            assert status == 401
        status, _, _ = await login(api, people[0].username, people[0].password, forwarded_for="192.0.2.200")
        assert status == 429


async def test_successful_logins_do_not_count(limited):
    async with api_from(limited, "127.0.0.6") as api:
        person = await Person.register(api, limited.ws_url, "regular")
        for _ in range(LOGIN_FAILURES_PER_IP + LOGIN_FAILURES_PER_ACCOUNT):
            assert (await login(api, person.username, person.password))[0] == 200


# known devices: the device cookie ------------------------------------------------------

async def owner_with_a_known_device(stack, address: str, name: str) -> tuple[Person, str]:
    """A person who registered and logged in from ``address``, and the device cookie they got."""
    async with api_from(stack, address) as api:
        owner = await Person.register(api, stack.ws_url, name)
        status, _, _, cookie = await login_response(api, owner.username, owner.password)
    assert status == 200 and cookie is not None and cookie.value
    return owner, cookie.value


async def lock_out_unknown_devices(stack, address: str, username: str) -> None:
    """A stranger's wrong passwords from ``address``, until the account refuses unknown devices."""
    async with api_from(stack, address) as stranger:
        for _ in range(LOGIN_FAILURES_PER_ACCOUNT):
            assert (await login(stranger, username, "wrong password!"))[0] == 401
        status, body, _ = await login(stranger, username, "wrong password!")
        assert (status, body["error"]["code"]) == (429, "rate_limited"), "the guesser is still stopped"


async def test_a_strangers_wrong_passwords_do_not_lock_the_owner_out_of_a_known_device(limited):
    owner, device = await owner_with_a_known_device(limited, "127.0.0.10", "owner")
    await lock_out_unknown_devices(limited, "127.0.0.11", owner.username)
    async with api_from(limited, "127.0.0.10") as api:
        status, body, _, renewed = await login_response(api, owner.username, owner.password, device_cookie=device)
        assert status == 200, body
        assert renewed is not None and renewed.value, "the device cookie is renewed"
        status, body, _ = await login(api, owner.username, owner.password)
        assert (status, body["error"]["code"]) == (429, "rate_limited"), "without the cookie: an unknown device"


async def test_a_device_cookie_of_another_username_or_tampered_with_is_an_unknown_device(limited):
    victim, victims_device = await owner_with_a_known_device(limited, "127.0.0.12", "victim")
    _, mallorys_device = await owner_with_a_known_device(limited, "127.0.0.12", "mallory")
    await lock_out_unknown_devices(limited, "127.0.0.13", victim.username)
    tampered = victims_device[:-2] + ("A" if victims_device[-2] != "A" else "B") + victims_device[-1]
    async with api_from(limited, "127.0.0.12") as api:
        for cookie in (mallorys_device, tampered, "not a token"):
            status, _, _ = await login(api, victim.username, victim.password, device_cookie=cookie)
            assert status == 429, cookie
        assert (await login(api, victim.username, victim.password, device_cookie=victims_device))[0] == 200


async def test_the_device_cookie_is_http_only_same_site_strict_for_the_api_and_long_lived(limited):
    async with api_from(limited, "127.0.0.14") as api:
        person = await Person.register(api, limited.ws_url, "cookied")
        _, _, _, cookie = await login_response(api, person.username, person.password)
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/api"
    assert not cookie["secure"], "plain http: a Secure cookie would never come back"
    assert int(cookie["max-age"]) > 300 * 24 * 3600, "long-lived (auth's --device-token-ttl-secs)"


async def test_the_device_cookie_is_secure_when_a_trusted_proxy_says_the_browser_used_https(limited):
    async with api_from(limited, "127.0.0.7") as proxy:
        person = await Person.register(proxy, limited.ws_url, "secure")
        https = {"X-Forwarded-Proto": "https"}
        _, _, _, cookie = await login_response(proxy, person.username, person.password, headers=https,
                                               forwarded_for="198.51.100.20")
        assert cookie["secure"]
    async with api_from(limited, "127.0.0.15") as untrusted:  # its X-Forwarded-Proto is not believed
        _, _, _, cookie = await login_response(untrusted, person.username, person.password, headers=https)
        assert not cookie["secure"]


# registrations per address ---------------------------------------------------------------

@pytest.fixture(scope="module")
def registration_limited(start_stack):
    with start_stack({"CHORUS_REGISTRATIONS_PER_IP": str(REGISTRATIONS_PER_IP),
                      "CHORUS_TRUSTED_PROXIES": "127.0.0.7"}) as stack:
        yield stack


async def register(api: Api, *, forwarded_for: str | None = None, password: str = "correct horse battery"):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    async with api.http.post(api.base_url + "/api/register", headers=headers,
                             json={"username": unique("reg"), "password": password}) as response:
        return response.status, await response.json(), response.headers.get("Retry-After")


async def test_registrations_from_one_address_are_limited_there_only(registration_limited):
    async with api_from(registration_limited, "127.0.0.20") as api:
        assert (await register(api, password="short"))[0] == 400, "refused ones cost nothing and do not count"
        for _ in range(REGISTRATIONS_PER_IP):
            assert (await register(api))[0] == 201
        status, body, retry_after = await register(api)
        assert (status, body["error"]["code"]) == (429, "rate_limited"), body
        assert int(retry_after) >= 1
    async with api_from(registration_limited, "127.0.0.21") as elsewhere:
        assert (await register(elsewhere))[0] == 201


async def test_behind_a_trusted_proxy_registrations_count_per_forwarded_client(registration_limited):
    async with api_from(registration_limited, "127.0.0.7") as proxy:
        for _ in range(REGISTRATIONS_PER_IP):
            assert (await register(proxy, forwarded_for="198.51.100.30"))[0] == 201
        assert (await register(proxy, forwarded_for="198.51.100.30"))[0] == 429
        assert (await register(proxy, forwarded_for="198.51.100.31"))[0] == 201, "another client of the proxy"


# sizes (the settings are read and enforced) ---------------------------------------------

async def test_the_page_learns_the_limits_from_the_gateway_not_from_copies(limited):
    async with api_from(limited) as api:
        status, body = await api.call("GET", "/api/config")  # before logging in: no token needed
    assert status == 200
    assert body == {"max_text_chars": MAX_TEXT_CHARS, "history_page": DEFAULT_HISTORY_PAGE,
                    "max_history_page": MAX_HISTORY_PAGE, "max_idempotency_key_chars": MAX_IDEMPOTENCY_KEY_CHARS}


async def test_text_over_the_limit_is_refused_and_the_page_goes_on(people):
    (alice,) = await people("alice")
    group = await alice.create_group()
    page = await alice.open_page()
    await page.send({"op": "send", "group": group["id"], "text": "x" * (MAX_TEXT_CHARS + 1), "ref": "long"})
    error = await page.expect("error", ref="long")
    assert error["code"] == "too_large" and str(MAX_TEXT_CHARS) in error["message"]
    assert (await page.post_and_ack(group, "x" * MAX_TEXT_CHARS))["group"] == group["id"]


async def test_a_frame_over_the_limit_closes_the_socket_with_1009(people):
    (alice,) = await people("alice")
    page = await alice.open_page()
    await page.send({"op": "ping", "pad": "x" * MAX_FRAME_BYTES})
    code, _ = await page.closed()
    assert code == 1009


async def test_a_body_over_the_limit_gets_413(limited):
    async with api_from(limited) as api:
        status, body = await api.call("POST", "/api/register", data=b"{" + b" " * MAX_BODY_BYTES + b"}",
                                      headers={"Content-Type": "application/json"})
    assert (status, body["error"]["code"]) == (413, "too_large")
