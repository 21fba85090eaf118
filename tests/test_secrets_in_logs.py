"""Passwords and tokens never reach the services' logs, whatever the client does wrong."""

from __future__ import annotations

import asyncio

from chat import Person


async def test_no_password_or_token_is_logged_on_success_failure_or_garbage(api, stack):
    alice = await Person.register(api, stack.ws_url, "alice")
    wrong_password = "not-alices-password-" + alice.username
    await api.call("POST", "/api/login", json={"username": alice.username, "password": wrong_password})
    await api.call("POST", "/api/register", json={"username": alice.username, "password": alice.password})
    await api.call("GET", "/api/me", token=alice.token + "tampered")
    page = await alice.open_page()
    await page.send({"op": "auth", "token": alice.token})   # a second auth: an error frame, not a log line
    await page.send({"op": "send", "group": "g_nope", "text": alice.token})
    await page.close()
    bad = await api.http.ws_connect(stack.ws_url)
    await bad.send_str(f'{{"op": "auth", "token": "{alice.token[:-3]}xyz"}}')
    await bad.receive(timeout=5)
    await bad.close()
    await api.ok("POST", "/api/logout", token=alice.token)
    await api.call("GET", "/api/me", token=alice.token)      # revoked
    await asyncio.sleep(0.5)  # let the services write their logs

    logs = stack.log()
    for secret in (alice.password, wrong_password, alice.token, alice.token.split(".")[1],
                   alice.token.split(".")[2]):
        assert secret not in logs, "a secret reached the logs"
    assert "webgate" in logs and "auth listening" in logs, "these are the stack's logs"
