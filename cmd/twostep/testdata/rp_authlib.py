#!/usr/bin/python3
"""A relying party built on Authlib, run against `twostep serve`.

It uses only Authlib, requests and the standard library, as an application
that knows nothing of twostep would: OpenID discovery, the authorization code
flow with PKCE S256 and a nonce, client_secret_basic at the token endpoint,
ID token validation with the JWKS, userinfo, and refresh token rotation.
It signs in through twostep's pages with twostep_signin.py, the way a
person with a password manager does: by the inputs' autocomplete attributes,
never by their names.

Settings come from the environment: ISSUER, CLIENT_ID, CLIENT_SECRET,
REDIRECT_URI, USERNAME, PASSWORD. It exits non-zero with a message on the
first failure. On Debian: apt-get install python3-authlib python3-requests.
"""

import os
import secrets
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

from twostep_signin import TIMEOUT, Browser, Failure, check, env, fresh_step, run, sign_in, totp  # noqa: E402

SCOPE = "openid profile email groups offline_access"


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
        # The first login enrols and is asked for consent; later ones are not.
        callback, secret = sign_in(Browser(self.redirect_uri), url, label, self.username, self.password,
                                   totp_code, enrol=enrol, consent=enrol)

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
    step = fresh_step()

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
    run("authlib relying party", main, OAuthError)
