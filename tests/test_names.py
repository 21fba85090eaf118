"""Names people can trust, through the real stack: display names and group names refuse
invisible, bidi and mixed-script look-alike forms; group names are unique under look-alikes;
messages of only invisible characters are refused. (The rules themselves: tests/common/test_names.py.)"""

from __future__ import annotations

import pytest

from chat import Person, unique

CYRILLIC_A = "\u0410"


@pytest.mark.parametrize("display_name, problem", [
    (f"{CYRILLIC_A}lice", "mixes scripts"),             # Cyrillic А posing as Latin A
    ("\u200b\u200b\u200b", "visible character"),       # zero-width spaces only
    ("\u3164", "visible character"),                    # Hangul filler: looks like nothing
    ("Ann\u202eevil", "control characters"),            # right-to-left override
])
async def test_registering_with_an_untrustworthy_display_name_is_refused(api, display_name, problem):
    status, body = await api.call("POST", "/api/register", json={
        "username": unique("name"), "password": "correct horse battery", "display_name": display_name})
    assert (status, body["error"]["code"]) == (400, "invalid_argument")
    assert problem in body["error"]["message"]


@pytest.mark.parametrize("name, problem", [
    (f"P{CYRILLIC_A}yPal support", "mixes scripts"),
    ("\u200b\u2060", "visible character"),
    ("news\u2028flash", "control characters"),          # line separator
    ("\u202eevil", "control characters"),
])
async def test_creating_a_group_with_an_untrustworthy_name_is_refused(api, stack, name, problem):
    alice = await Person.register(api, stack.ws_url, "alice")
    status, body = await api.call("POST", "/api/groups", json={"name": name}, token=alice.token)
    assert (status, body["error"]["code"]) == (400, "invalid_argument")
    assert problem in body["error"]["message"]


@pytest.mark.parametrize("look_alike", ["paypaI {}", "PAYPAL {}", "\uff50aypal {}"])  # capital i; case; fullwidth p
async def test_a_group_name_that_looks_like_an_existing_one_is_taken(api, stack, look_alike):
    alice, mallory = await Person.register(api, stack.ws_url, "alice"), await Person.register(api, stack.ws_url, "mal")
    suffix = unique("")
    original = await alice.create_group(f"paypal {suffix}")
    status, body = await api.call("POST", "/api/groups", json={"name": look_alike.format(suffix)},
                                  token=mallory.token)
    assert (status, body["error"]["code"]) == (409, "already_exists")
    assert repr(original["name"]) in body["error"]["message"], "the message names the group it looks like"


async def test_a_message_of_only_invisible_characters_is_refused(api, stack):
    alice = await Person.register(api, stack.ws_url, "alice")
    group = await alice.create_group()
    page = await alice.open_page()
    await page.send({"op": "send", "group": group["id"], "text": "\u200b\u200d\u3164", "ref": "ghost"})
    error = await page.expect("error", ref="ghost")
    assert error["code"] == "invalid_argument" and "blank" in error["message"]
    assert (await page.post_and_ack(group, "visible"))["group"] == group["id"]
