#!/usr/bin/python3
"""A relying party built on Authlib, run against `twostep serve`.

It uses only Authlib, requests and the standard library, as an application
that knows nothing of twostep would: OpenID discovery, the authorization code
flow with PKCE S256 and a nonce, client_secret_basic at the token endpoint,
ID token validation with the JWKS, userinfo, and refresh token rotation.
It fills the login pages the way a password manager does: by the inputs'
autocomplete attributes, never by their names.

Settings come from the environment: ISSUER, CLIENT_ID, CLIENT_SECRET,
REDIRECT_URI, USERNAME, PASSWORD. It exits non-zero with a message on the
first failure. On Debian: apt-get install python3-authlib python3-requests.
"""

import base64
import hashlib
import hmac
import html.parser
import os
import secrets
import struct
import sys
import time
import urllib.parse

# The test server listens on plain HTTP on 127.0.0.1, which Authlib's
# metadata validation refuses unless told otherwise; the flow is the same.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

import requests  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session, OAuthError  # noqa: E402
from authlib.jose import JsonWebKey, JsonWebToken  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402
from authlib.oidc.discovery import OpenIDProviderMetadata  # noqa: E402

SCOPE = "openid profile email groups offline_access"
STEP = 30
TIMEOUT = 15


class Failure(Exception):
    """One failed check; main prints it and exits 1."""


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def env(name):
    value = os.environ.get(name, "")
    check(value != "", "environment variable %s is not set" % name)
    return value


# --- HTML ---------------------------------------------------------------

class Page(html.parser.HTMLParser):
    """The forms, links and images of one HTML page."""

    def __init__(self, url, status, body):
        super().__init__(convert_charrefs=True)
        self.url, self.status, self.body = url, status, body
        self.forms = []  # dicts: action, method, inputs (attr dicts), buttons
        self.links = []
        self.images = []
        self._form = None
        self.feed(body)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = {"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                          "inputs": [], "buttons": []}
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None:
            self._form["inputs"].append(a)
        elif tag == "button" and self._form is not None:
            self._form["buttons"].append(a)
        elif tag == "a" and "href" in a:
            self.links.append(a["href"])
        elif tag == "img" and "src" in a:
            self.images.append(a["src"])

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None

    def describe(self):
        return "%d %s" % (self.status, self.url)


def form_with_autocomplete(label, page, *tokens):
    """Returns the form whose inputs carry every autocomplete token, and a
    dict token -> input."""
    for form in page.forms:
        by_token = {}
        for inp in form["inputs"]:
            for tok in inp.get("autocomplete", "").split():
                by_token.setdefault(tok, inp)
        if all(t in by_token for t in tokens):
            return form, by_token
    raise Failure("%s: got %s, want a form with inputs autocomplete=%s; page:\n%s"
                  % (label, page.describe(), " and ".join(tokens), page.body))


def hidden_fields(form):
    return {i["name"]: i.get("value", "") for i in form["inputs"]
            if i.get("type", "").lower() == "hidden" and i.get("name")}


class Browser:
    """A requests.Session that follows redirects itself and stops at the
    relying party's redirect URI."""

    def __init__(self, redirect_uri):
        self.session = requests.Session()
        self.redirect_uri = redirect_uri

    def _follow(self, method, url, data=None):
        for _ in range(15):
            resp = self.session.request(method, url, data=data, allow_redirects=False, timeout=TIMEOUT)
            if resp.status_code not in (301, 302, 303, 307, 308):
                return Page(resp.url, resp.status_code, resp.text), None
            location = urllib.parse.urljoin(url, resp.headers.get("Location", ""))
            if location.startswith(self.redirect_uri):
                return None, location
            if resp.status_code in (301, 302, 303):
                method, data = "GET", None
            url = location
        raise Failure("too many redirects from %s" % url)

    def get(self, url):
        return self._follow("GET", url)

    def submit(self, page, form, values):
        check(form["method"] == "post", "%s: form method %r, want post" % (page.describe(), form["method"]))
        data = hidden_fields(form)
        data.update(values)
        return self._follow("POST", urllib.parse.urljoin(page.url, form["action"]), data)


# --- TOTP (RFC 6238 over RFC 4226) ------------------------------------

def totp(secret_b32, step):
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return "%06d" % (value % 1000000)


def otpauth_secret(uri):
    u = urllib.parse.urlparse(uri)
    check(u.scheme == "otpauth" and u.netloc == "totp", "otpauth link %r: want otpauth://totp/..." % uri)
    q = urllib.parse.parse_qs(u.query)
    check(q.get("secret"), "otpauth link %r has no secret" % uri)
    for name, want in (("algorithm", "SHA1"), ("digits", "6"), ("period", "30")):
        got = q.get(name, [want])[0]
        check(got.upper() == want, "otpauth link %r: %s=%s, want %s" % (uri, name, got, want))
    return q["secret"][0]


# --- the relying party ------------------------------------------------

class RelyingParty:
    def __init__(self):
        self.issuer = env("ISSUER").rstrip("/")
        self.client_id = env("CLIENT_ID")
        self.client_secret = env("CLIENT_SECRET")
        self.redirect_uri = env("REDIRECT_URI")
        self.username = env("USERNAME")
        self.password = env("PASSWORD")

        resp = requests.get(self.issuer + "/.well-known/openid-configuration", timeout=TIMEOUT)
        check(resp.status_code == 200, "discovery: HTTP %d: %s" % (resp.status_code, resp.text))
        self.metadata = OpenIDProviderMetadata(resp.json())
        try:
            self.metadata.validate()
        except ValueError as e:
            raise Failure("discovery document refused by Authlib: %s" % e)
        check(self.metadata["issuer"] == self.issuer,
              "discovery: issuer %r, want %r" % (self.metadata["issuer"], self.issuer))
        check("S256" in self.metadata.get("code_challenge_methods_supported", []),
              "discovery: code_challenge_methods_supported lacks S256")
        check("client_secret_basic" in self.metadata.get("token_endpoint_auth_methods_supported",
                                                         ["client_secret_basic"]),
              "discovery: token_endpoint_auth_methods_supported lacks client_secret_basic")

        resp = requests.get(self.metadata["jwks_uri"], timeout=TIMEOUT)
        check(resp.status_code == 200, "jwks: HTTP %d: %s" % (resp.status_code, resp.text))
        self.jwks = JsonWebKey.import_key_set(resp.json())
        self.jwt = JsonWebToken(self.metadata.get("id_token_signing_alg_values_supported", ["RS256"]))

    def oauth(self, token=None):
        return OAuth2Session(
            self.client_id, self.client_secret, scope=SCOPE, redirect_uri=self.redirect_uri,
            token_endpoint_auth_method="client_secret_basic", code_challenge_method="S256",
            token_endpoint=self.metadata["token_endpoint"], token=token)

    def login(self, label, totp_code, enrol):
        """Runs one browser login; returns (tokens, id token claims, otpauth secret or None)."""
        client = self.oauth()
        verifier = secrets.token_urlsafe(48)
        nonce = secrets.token_urlsafe(16)
        url, state = client.create_authorization_url(
            self.metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
        browser = Browser(self.redirect_uri)

        page, callback = browser.get(url)
        check(page is not None, "%s: authorize redirected to the client without a login: %s" % (label, callback))
        form, by = form_with_autocomplete(label, page, "username", "current-password")
        check(by["current-password"].get("type", "").lower() == "password",
              "%s: the current-password input has type %r, want password" % (label, by["current-password"].get("type")))
        page, callback = browser.submit(page, form, {by["username"]["name"]: self.username,
                                                     by["current-password"]["name"]: self.password})
        check(page is not None, "%s: the password alone led to the client: %s" % (label, callback))

        form, by = form_with_autocomplete(label, page, "one-time-code")
        code_input = by["one-time-code"]
        check(code_input.get("inputmode") == "numeric",
              "%s: the one-time-code input has inputmode=%r, want numeric" % (label, code_input.get("inputmode")))
        uris = [h for h in page.links if h.startswith("otpauth://")]
        qrs = [s for s in page.images if s.startswith("data:image/png")]
        secret = None
        if enrol:
            check(len(uris) == 1, "%s: enrolment page has %d otpauth:// links, want 1:\n%s" % (label, len(uris), page.body))
            check(qrs, "%s: enrolment page has no data:image/png QR code" % label)
            secret = otpauth_secret(uris[0])
            code = totp_code(secret)
        else:
            check("otpauth://" not in page.body and "data:image/png" not in page.body,
                  "%s: the code page of an enrolled user shows enrolment material:\n%s" % (label, page.body))
            code = totp_code(None)
        page, callback = browser.submit(page, form, {code_input["name"]: code})

        if enrol:
            # The first login shows the new recovery codes once, then
            # continues to the authorization request.
            check(page is not None and page.body.count("<li>") == 10,
                  "%s: after enrolment got %s, want the page with 10 recovery codes:\n%s"
                  % (label, page and page.describe(), page and page.body))
            onward = [h for h in page.links if h.startswith("/oauth2/auth?")]
            check(len(onward) == 1, "%s: the recovery codes page has %d continue links, want 1" % (label, len(onward)))
            page, callback = browser.get(urllib.parse.urljoin(page.url, onward[0]))

        if page is not None:
            check(enrol, "%s: consent was asked again (%s), want it remembered:\n%s" % (label, page.describe(), page.body))
            consent = None
            for f in page.forms:
                if any(b.get("name") == "decision" and b.get("value") == "allow" for b in f["buttons"]):
                    consent = f
            check(consent is not None, "%s: after the code got %s, want a consent page with decision=allow:\n%s"
                  % (label, page.describe(), page.body))
            page, callback = browser.submit(page, consent, {"decision": "allow"})
            check(page is None, "%s: after consent got %s, want a redirect to %s:\n%s"
                  % (label, page and page.describe(), self.redirect_uri, page and page.body))

        query = urllib.parse.parse_qs(urllib.parse.urlparse(callback).query)
        check("error" not in query, "%s: error at the redirect URI: %s" % (label, callback))
        check(query.get("state") == [state], "%s: state %r, want %r" % (label, query.get("state"), state))
        try:
            token = client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
        except OAuthError as e:
            raise Failure("%s: token request refused: %s" % (label, e))
        claims = self.validate_id_token(label, token, nonce)
        return client, token, claims, secret

    def validate_id_token(self, label, token, nonce):
        check("id_token" in token, "%s: token response has no id_token: %r" % (label, dict(token)))
        options = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": self.client_id},
            "auth_time": {"essential": True},
            "nonce": {"essential": True},
        }
        params = {"nonce": nonce, "client_id": self.client_id, "access_token": token["access_token"]}
        try:
            claims = self.jwt.decode(token["id_token"], self.jwks, claims_cls=CodeIDToken,
                                     claims_options=options, claims_params=params)
            claims.validate(leeway=5)
        except Exception as e:  # authlib.jose errors have no common base outside JoseError
            raise Failure("%s: ID token refused by Authlib: %s: %s" % (label, type(e).__name__, e))
        check(claims.get("nonce") == nonce, "%s: nonce %r, want %r" % (label, claims.get("nonce"), nonce))
        amr = claims.get("amr") or []
        for want in ("pwd", "otp", "mfa"):
            check(want in amr, "%s: amr %r lacks %r" % (label, amr, want))
        check(isinstance(claims.get("auth_time"), int), "%s: auth_time %r, want a number" % (label, claims.get("auth_time")))
        check(abs(claims["auth_time"] - time.time()) < 120, "%s: auth_time %d is not now" % (label, claims["auth_time"]))
        return claims

    def userinfo(self, label, client, claims):
        resp = client.get(self.metadata["userinfo_endpoint"], timeout=TIMEOUT)
        check(resp.status_code == 200, "%s: userinfo: HTTP %d: %s" % (label, resp.status_code, resp.text))
        info = resp.json()
        check(info.get("sub") == claims["sub"], "%s: userinfo sub %r, want %r" % (label, info.get("sub"), claims["sub"]))

    def refresh(self, label, client, token):
        old = token.get("refresh_token")
        check(old, "%s: no refresh_token despite offline_access" % label)
        try:
            new = client.refresh_token(self.metadata["token_endpoint"], refresh_token=old)
        except OAuthError as e:
            raise Failure("%s: refresh refused: %s" % (label, e))
        check(new.get("refresh_token") and new["refresh_token"] != old,
              "%s: refresh returned refresh_token %r, want a new one" % (label, new.get("refresh_token")))
        check(new.get("access_token") and new["access_token"] != token["access_token"],
              "%s: refresh returned no new access token" % label)

        # The rotated-out refresh token is refused (RFC 6749 §5.2, RFC 9700 §4.14.2).
        statuses = []
        replay = self.oauth()
        replay.register_compliance_hook("refresh_token_response", lambda r: statuses.append(r.status_code) or r)
        try:
            replay.refresh_token(self.metadata["token_endpoint"], refresh_token=old)
        except OAuthError as e:
            check(e.error == "invalid_grant", "%s: old refresh token: error %r, want invalid_grant" % (label, e.error))
        else:
            raise Failure("%s: the old refresh token still works after rotation" % label)
        check(statuses == [400], "%s: old refresh token: HTTP %s, want 400" % (label, statuses))


def main():
    # Both logins must fit: the first uses the code of step T, the second
    # that of T+1 (the server allows one step of skew, and a code works once).
    remaining = STEP - time.time() % STEP
    if remaining < 8:
        time.sleep(remaining + 0.2)
    step = int(time.time()) // STEP

    rp = RelyingParty()
    client, token, claims, secret = rp.login("first login", lambda s: totp(s, step), enrol=True)
    check(secret, "first login: no enrolment secret")
    rp.userinfo("first login", client, claims)
    rp.refresh("first login", client, token)

    client2, token2, claims2, _ = rp.login("second login", lambda _: totp(secret, step + 1), enrol=False)
    check(claims2["sub"] == claims["sub"], "second login: sub %r, want %r" % (claims2["sub"], claims["sub"]))
    rp.userinfo("second login", client2, claims2)
    print("authlib relying party: 2 logins ok (sub %s, amr %s)" % (claims2["sub"], " ".join(claims2["amr"])))


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print("authlib relying party: FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
    except (requests.RequestException, OAuthError) as e:
        print("authlib relying party: FAIL: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
