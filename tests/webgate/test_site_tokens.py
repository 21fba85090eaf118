"""Site tokens checked without sockets: each refusal names its reason; good tokens give the claims."""

from __future__ import annotations

import http.server
import json
import threading
import time

import jwt
import pytest

from chorus.common.sites import SiteSpec
from chorus.webgate import errors
from chorus.webgate.site_keys import load_sites
from chorus.webgate.site_tokens import SiteTokens, is_site_token
from sites import KeyPairSite, SharedSecretSite, unsigned_token

MAX_LIFETIME_SECS = 3600


@pytest.fixture
def school():
    return SharedSecretSite("school")


@pytest.fixture
def shop():
    return KeyPairSite("shop", "RS256")


@pytest.fixture
def verifier(tmp_path, school, shop):
    specs = (SiteSpec(issuer="school", key_file=school.write_key(tmp_path)),
             SiteSpec(issuer="shop", jwks=str(shop.write_jwks(tmp_path))))
    sites = load_sites(specs, jwks_cache_secs=60, fetch_timeout_secs=1)
    return SiteTokens(sites, max_lifetime_secs=MAX_LIFETIME_SECS)


def refusal(verifier, token, now=None) -> errors.SiteTokenRefused:
    with pytest.raises(errors.SiteTokenRefused) as caught:
        verifier.verify(token, time.time() if now is None else now)
    assert len(caught.value.message.encode()) <= 123, "must fit a WebSocket close reason"
    return caught.value


def test_a_good_token_of_either_kind_names_the_site_user(verifier, school, shop):
    claims = verifier.verify(school.token(sub="42", name="Ann"), time.time())
    assert (claims.issuer, claims.subject, claims.name) == ("school", "42", "Ann")
    claims = verifier.verify(shop.token(sub="cust-7", name=None), time.time())
    assert (claims.issuer, claims.subject, claims.name) == ("shop", "cust-7", "cust-7")  # name falls back to sub


def test_es256_keys_work_too(tmp_path):
    site = KeyPairSite("maps", "ES256")
    sites = load_sites((SiteSpec(issuer="maps", jwks=str(site.write_jwks(tmp_path))),),
                       jwks_cache_secs=60, fetch_timeout_secs=1)
    assert SiteTokens(sites, max_lifetime_secs=60).verify(site.token(lifetime=30), time.time()).subject == "user-1"


def test_each_bad_token_is_refused_with_its_reason(verifier, school, shop):
    impostor = SharedSecretSite("school")  # same issuer, another key
    cases = [
        (impostor.token(), errors.BadSignature, "bad signature"),
        (SharedSecretSite("elsewhere").token(), errors.UnknownIssuer, "unknown issuer 'elsewhere'"),
        (school.token(lifetime=-5), errors.TokenExpired, "expired"),
        (school.token(lifetime=MAX_LIFETIME_SECS + 60), errors.LifetimeTooLong, "more than 3600 s away"),
        (school.token(sub=None), errors.MissingClaim, "missing claim 'sub'"),
        (school.token(sub=""), errors.MissingClaim, "missing claim 'sub'"),
        (unsigned_token("school"), errors.AlgNone, "alg none"),
        (shop.token(kid="retired-key"), errors.UnknownKid, "unknown kid 'retired-key'"),
        (jwt.encode({"iss": "school", "sub": "1"}, school.secret, algorithm="HS256"), errors.MissingClaim,
         "missing claim 'exp'"),
        (school.token(name=7), errors.BadClaim, "'name' must be a string"),
        ("not.a.jwt", errors.MalformedToken, "well-formed"),
    ]
    for token, kind, words in cases:
        refused = refusal(verifier, token)
        assert isinstance(refused, kind) and words in refused.message, (kind, refused.message)


def test_algorithms_the_site_has_no_key_for_are_refused(verifier, school, shop):
    # The shop publishes RSA keys: an HS256 token "signed" with its public key (the classic
    # algorithm confusion) finds no HS256 key for the shop at all.
    public_pem = shop.jwks()["keys"][0]["n"].encode()
    confused = jwt.encode({"iss": "shop", "sub": "1", "exp": int(time.time()) + 60}, public_pem * 2,
                          algorithm="HS256", headers={"kid": shop.current_kid})
    assert isinstance(refusal(verifier, confused), errors.AlgNotAccepted)
    # The school has only a shared secret: an RS256 token is not accepted for it.
    rsa_for_school = KeyPairSite("school").token()
    assert isinstance(refusal(verifier, rsa_for_school), errors.AlgNotAccepted)
    hs512 = jwt.encode({"iss": "school", "sub": "1", "exp": int(time.time()) + 60}, school.secret,
                       algorithm="HS512")
    assert isinstance(refusal(verifier, hs512), errors.AlgNotAccepted)


def test_keys_rotate_by_kid(tmp_path, shop):
    old_kid = shop.current_kid
    new_kid = shop.rotate()
    sites = load_sites((SiteSpec(issuer="shop", jwks=str(shop.write_jwks(tmp_path))),),
                       jwks_cache_secs=60, fetch_timeout_secs=1)
    verifier = SiteTokens(sites, max_lifetime_secs=60)
    for kid in (old_kid, new_kid):
        assert verifier.verify(shop.token(kid=kid, lifetime=30), time.time()).subject == "user-1"


def test_an_audience_when_configured_is_required(tmp_path, school):
    sites = load_sites((SiteSpec(issuer="school", key_file=school.write_key(tmp_path)),),
                       jwks_cache_secs=60, fetch_timeout_secs=1)
    verifier = SiteTokens(sites, max_lifetime_secs=60, audience="chorus")
    assert verifier.verify(school.token(lifetime=30, aud="chorus"), time.time()).subject == "user-1"
    for token in (school.token(lifetime=30), school.token(lifetime=30, aud="another-app")):
        assert isinstance(refusal(verifier, token), errors.WrongAudience)
    # Without an audience configured, one in the token is not held against it.
    lenient = SiteTokens(sites, max_lifetime_secs=60)
    assert lenient.verify(school.token(lifetime=30, aud="anything"), time.time()).subject == "user-1"


def test_only_tokens_naming_an_issuer_are_site_tokens(school):
    assert is_site_token(school.token())
    assert not is_site_token(jwt.encode({"sub": "u_1", "jti": "x", "exp": 1}, b"k" * 32, algorithm="HS256"))
    assert not is_site_token("garbage")


def test_bad_key_configuration_stops_the_gateway_with_the_site_named(tmp_path):
    short = tmp_path / "short.key"
    short.write_bytes(b"too short")
    with pytest.raises(ValueError, match="site 'school'.*at least 32 bytes, got 9"):
        load_sites((SiteSpec(issuer="school", key_file=short),), jwks_cache_secs=60, fetch_timeout_secs=1)
    with pytest.raises(ValueError, match="site 'shop': cannot read its JWKS file"):
        load_sites((SiteSpec(issuer="shop", jwks=str(tmp_path / "missing.json")),),
                   jwks_cache_secs=60, fetch_timeout_secs=1)
    bad = tmp_path / "bad.json"
    bad.write_text('{"keys": []}')
    with pytest.raises(ValueError, match="not a usable JWKS"):
        load_sites((SiteSpec(issuer="shop", jwks=str(bad)),), jwks_cache_secs=60, fetch_timeout_secs=1)


class JwksServer:
    """The shop's JWKS at a real http URL (a thread on a loopback port)."""

    def __init__(self, site: KeyPairSite) -> None:
        self.site, self.fetches = site, 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                owner.fetches += 1
                body = json.dumps(owner.site.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def published(shop):
    server = JwksServer(shop)
    yield server
    server.close()


def test_a_jwks_at_a_url_is_fetched_once_and_cached_until_its_lifetime_ends(published, shop):
    cache_secs = 0.5
    sites = load_sites((SiteSpec(issuer="shop", jwks=published.url),), jwks_cache_secs=cache_secs,
                       fetch_timeout_secs=2)
    verifier = SiteTokens(sites, max_lifetime_secs=60)
    for _ in range(3):
        assert verifier.verify(shop.token(lifetime=30), time.time()).subject == "user-1"
    assert published.fetches == 1
    new_kid = shop.rotate()  # the site publishes a new key and signs with it
    time.sleep(cache_secs + 0.1)
    assert verifier.verify(shop.token(kid=new_kid, lifetime=30), time.time()).subject == "user-1"
    assert published.fetches == 2


def test_an_unreachable_jwks_url_is_unavailable_not_a_refusal(shop):
    sites = load_sites((SiteSpec(issuer="shop", jwks="http://127.0.0.1:9/jwks.json"),), jwks_cache_secs=60,
                       fetch_timeout_secs=1)
    with pytest.raises(errors.SiteKeysUnavailable):
        SiteTokens(sites, max_lifetime_secs=60).verify(shop.token(lifetime=30), time.time())
