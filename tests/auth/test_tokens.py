"""Session and device tokens: they round-trip, expire on our clock, and refuse anything we did not sign."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from chorus.auth.errors import InvalidToken
from chorus.auth.tokens import MIN_KEY_BYTES, Claims, DeviceTokens, TokenSigner

KEY = b"k" * MIN_KEY_BYTES
OTHER_KEY = b"o" * MIN_KEY_BYTES
TTL_SECS = 60
ISSUED_AT = 1_700_000_000


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(ISSUED_AT)


@pytest.fixture
def signer(clock) -> TokenSigner:
    return TokenSigner(KEY, ttl_secs=TTL_SECS, clock=clock)


def refused(signer: TokenSigner, token: str, message: str = "invalid token; log in again") -> None:
    with pytest.raises(InvalidToken) as caught:
        signer.verify(token)
    assert str(caught.value) == message


def signed(payload: dict, *, key=KEY, algorithm="HS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


def valid_payload() -> dict:
    return {"sub": "u_ann", "jti": "j1", "iat": ISSUED_AT, "exp": ISSUED_AT + TTL_SECS}


def test_an_issued_token_verifies_to_its_account(signer):
    token, claims = signer.issue("u_ann")
    assert claims == Claims(account_id="u_ann", token_id=claims.token_id, expires_at=ISSUED_AT + TTL_SECS)
    assert signer.verify(token) == claims


def test_every_login_gets_its_own_token_id(signer):
    (first, a), (second, b) = signer.issue("u_ann"), signer.issue("u_ann")
    assert first != second and a.token_id != b.token_id


def test_a_token_from_another_signer_with_the_same_key_verifies(signer):
    token, claims = signer.issue("u_ann")
    replica = TokenSigner(KEY, ttl_secs=1, clock=lambda: ISSUED_AT + 1)
    assert replica.verify(token) == claims


@pytest.mark.parametrize("seconds_later", [0, 1, TTL_SECS - 1, TTL_SECS - 0.001])
def test_a_token_is_valid_until_just_before_it_expires(signer, clock, seconds_later):
    token, claims = signer.issue("u_ann")
    clock.now = ISSUED_AT + seconds_later
    assert signer.verify(token) == claims


@pytest.mark.parametrize("seconds_later", [TTL_SECS, TTL_SECS + 0.001, TTL_SECS + 1, 10 * 365 * 24 * 3600])
def test_a_token_is_refused_from_the_moment_it_expires(signer, clock, seconds_later):
    token, _ = signer.issue("u_ann")
    clock.now = ISSUED_AT + seconds_later
    refused(signer, token, "token expired; log in again")


def test_expiry_follows_the_injected_clock_even_ahead_of_the_wall_clock():
    far_future = Clock(time.time() + 50 * 365 * 24 * 3600)
    signer = TokenSigner(KEY, ttl_secs=TTL_SECS, clock=far_future)
    token, claims = signer.issue("u_ann")
    assert signer.verify(token) == claims


def test_a_replica_whose_clock_is_a_little_behind_accepts_a_fresh_token():
    issuer = TokenSigner(KEY, ttl_secs=TTL_SECS, clock=lambda: time.time() + 5)
    verifier = TokenSigner(KEY, ttl_secs=TTL_SECS)  # the wall clock
    token, claims = issuer.issue("u_ann")
    assert verifier.verify(token) == claims


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_token_whose_payload_was_changed_is_refused(signer):
    token, _ = signer.issue("u_ann")
    header, payload, signature = _segments(token)
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == "u_ann"
    forged = ".".join([header, _b64({**claims, "sub": "u_mallory"}), signature])
    refused(signer, forged)
    longer = ".".join([header, _b64({**claims, "exp": claims["exp"] + 10**6}), signature])
    refused(signer, longer)


def test_a_token_whose_signature_was_changed_is_refused(signer):
    token, _ = signer.issue("u_ann")
    header, payload, signature = _segments(token)
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    refused(signer, ".".join([header, payload, flipped]))
    refused(signer, ".".join([header, payload, ""]))


def test_a_token_signed_with_another_key_is_refused(signer):
    token, _ = TokenSigner(OTHER_KEY, ttl_secs=TTL_SECS, clock=lambda: ISSUED_AT).issue("u_ann")
    refused(signer, token)


@pytest.mark.parametrize(
    "garbage",
    ["", "garbage", "a.b.c", "..", "...", "é.é.é", "Bearer x.y.z", "null", "{}", "\x00", "x" * 10_000],
)
def test_garbage_is_refused(signer, garbage):
    refused(signer, garbage)


def test_a_valid_token_with_extra_characters_is_refused(signer):
    token, _ = signer.issue("u_ann")
    refused(signer, token + "x")
    refused(signer, f"Bearer {token}")


def test_an_unsigned_token_is_refused(signer):
    unsigned = jwt.encode(valid_payload(), None, algorithm="none")
    assert unsigned.endswith(".")  # really unsigned
    refused(signer, unsigned)


@pytest.mark.filterwarnings("ignore:The HMAC key is 32 bytes long")  # PyJWT: short for SHA-384/512
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_a_token_signed_with_another_algorithm_is_refused_even_with_our_key(signer, algorithm):
    refused(signer, signed(valid_payload(), algorithm=algorithm))


def test_a_hand_made_token_with_our_key_and_algorithm_verifies(signer):
    # The control for the tests around it: only the one difference makes them fail.
    assert signer.verify(signed(valid_payload())) == Claims("u_ann", "j1", ISSUED_AT + TTL_SECS)


@pytest.mark.parametrize(
    "change",
    [
        {"sub": None},
        {"jti": None},
        {"exp": None},
        {"sub": 42},
        {"jti": 7},
        {"exp": "soon"},
        {"exp": float(ISSUED_AT + TTL_SECS)},
    ],
    ids=["no sub", "no jti", "no exp", "number sub", "number jti", "text exp", "float exp"],
)
def test_a_signed_token_missing_or_mistyping_a_claim_is_refused(signer, change):
    payload = {**valid_payload(), **change}
    refused(signer, signed({k: v for k, v in payload.items() if v is not None}))


@pytest.mark.parametrize("length", [0, 16, MIN_KEY_BYTES - 1])
def test_a_short_key_is_refused(length):
    with pytest.raises(ValueError, match=f"at least {MIN_KEY_BYTES} bytes, got {length}"):
        TokenSigner(b"k" * length, ttl_secs=TTL_SECS)


def test_a_key_of_exactly_the_minimum_length_is_accepted():
    assert MIN_KEY_BYTES == 32
    signer = TokenSigner(b"k" * MIN_KEY_BYTES, ttl_secs=TTL_SECS)
    token, claims = signer.issue("u_ann")
    assert signer.verify(token) == claims


def test_the_time_can_be_passed_instead_of_read_from_the_clock(signer, clock):
    token, claims = signer.issue("u_ann", now=ISSUED_AT + 100)
    assert claims.expires_at == ISSUED_AT + 100 + TTL_SECS
    assert signer.verify(token, now=ISSUED_AT + 100 + TTL_SECS - 1) == claims
    with pytest.raises(InvalidToken, match="token expired"):
        signer.verify(token, now=ISSUED_AT + 100 + TTL_SECS)
    assert signer.verify(token) == claims  # the clock still says ISSUED_AT


@pytest.mark.parametrize("ttl_secs", [0, -1])
def test_a_lifetime_that_is_not_positive_is_refused(ttl_secs):
    with pytest.raises(ValueError, match=f"the token lifetime must be > 0 seconds, got {ttl_secs}"):
        TokenSigner(KEY, ttl_secs=ttl_secs)


# device tokens ---------------------------------------------------------------------------

@pytest.fixture
def devices(clock) -> DeviceTokens:
    return DeviceTokens(KEY, ttl_secs=TTL_SECS, clock=clock)


def test_a_device_token_names_its_username_and_keeps_its_device_id_when_renewed(devices, clock):
    token, expires_at = devices.issue("alice")
    device_id = devices.device_of(token, "alice")
    assert device_id and expires_at == ISSUED_AT + TTL_SECS
    clock.now += TTL_SECS - 1
    renewed, _ = devices.issue("alice", device_id)
    clock.now += 2  # the first has expired, the renewed one has not
    assert devices.device_of(token, "alice") is None
    assert devices.device_of(renewed, "alice") == device_id


def test_each_new_device_token_is_a_new_device(devices):
    first, second = devices.issue("alice")[0], devices.issue("alice")[0]
    assert devices.device_of(first, "alice") != devices.device_of(second, "alice")


def test_a_device_token_for_another_username_or_tampered_or_foreign_is_not_trusted(devices, clock):
    token, _ = devices.issue("alice")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged_payload = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "bob"}).encode()).rstrip(b"=").decode()
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert devices.device_of(token, "bob") is None, "issued for another username"
    assert devices.device_of(f"{header}.{forged_payload}.{signature}", "bob") is None, "payload changed"
    assert devices.device_of(f"{header}.{payload}.{flipped}", "alice") is None, "signature changed"
    assert DeviceTokens(OTHER_KEY, ttl_secs=TTL_SECS, clock=clock).device_of(token, "alice") is None
    assert devices.device_of("", "alice") is None and devices.device_of("garbage", "alice") is None


def test_device_tokens_and_session_tokens_are_not_interchangeable(devices, signer):
    device_token, _ = devices.issue("alice")
    with pytest.raises(InvalidToken):
        signer.verify(device_token)
    session_token, _ = signer.issue("alice")
    assert devices.device_of(session_token, "alice") is None
