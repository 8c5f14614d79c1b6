#!/usr/bin/python3
"""A Flask application signed in through twostep as dash-auth's OIDCAuth does.

dash-auth's OIDCAuth (examples/dash) is a thin layer over Authlib's Flask
client; Dash and dash-auth are not packaged by Debian, so this application
reproduces that layer with Authlib and Flask alone:

- the provider is registered exactly as OIDCAuth.register_provider does it
  (discovery URL, client_secret_post, scope and PKCE in client_kwargs);
- /oidc/<idp>/login, /oidc/<idp>/callback and /oidc/logout are OIDCAuth's
  routes: the callback calls authorize_access_token() and keeps
  token["userinfo"] (the ID token's claims) in the Flask session as
  session["user"]; an unauthenticated request to any other page but "/" is
  sent straight to the authorization endpoint (OIDCAuth's before_request);
- /oidc/logout is examples/dash's: it also ends the twostep session at the
  end_session_endpoint, with the ID token Authlib left on flask.g as
  id_token_hint;
- /admin needs the admin group, checked as dash_auth.check_groups does;
  /me shows the signed-in user's claims as JSON.

The script serves the application on APP_URL (http://127.0.0.1:PORT) and
drives it with requests and twostep_signin.py: first logins that enrol an
authenticator, the admin page for an admin and for a non-admin, logout at
twostep, a returning user, and a second registration for a client registered
with --no-pkce, whose client_kwargs have no code_challenge_method.

Settings come from the environment: ISSUER, APP_URL, CLIENT_ID,
CLIENT_SECRET (a client with redirect URI APP_URL/oidc/twostep/callback and
post-logout redirect URI APP_URL/), NOPKCE_CLIENT_ID, NOPKCE_CLIENT_SECRET
(redirect URI APP_URL/oidc/twostep-nopkce/callback), ADMIN_USERNAME,
ADMIN_PASSWORD (groups staff and admin), STAFF_USERNAME, STAFF_PASSWORD
(group staff). Each user's email is USERNAME@example.com. It exits non-zero
with a message on the first failure. On Debian: apt-get install
python3-authlib python3-flask python3-requests.
"""

import os
import secrets
import threading
import urllib.parse

import flask
from authlib.integrations.flask_client import OAuth, OAuthError
from werkzeug.serving import WSGIRequestHandler, make_server

from twostep_signin import TIMEOUT, Browser, check, env, fresh_step, run, sign_in, totp

PROVIDER = "twostep"
NOPKCE_PROVIDER = "twostep-nopkce"
SCOPE = "openid email profile groups"
ADMIN_GROUP = "admin"


# --- the application ------------------------------------------------------

def create_app(issuer, clients):
    """Returns the Flask application; clients maps a provider name to
    (client_id, client_secret, client_kwargs)."""
    app = flask.Flask(__name__)
    # OIDCAuth(app, secret_key=...): the session holds Authlib's state,
    # nonce and PKCE verifier, then the user.
    app.secret_key = secrets.token_urlsafe(32)
    oauth = OAuth(app)
    for name, (client_id, client_secret, client_kwargs) in clients.items():
        # OIDCAuth.register_provider(name, **kwargs) calls exactly this.
        oauth.register(
            name,
            server_metadata_url=issuer + "/.well-known/openid-configuration",
            client_id=client_id,
            client_secret=client_secret,
            token_endpoint_auth_method="client_secret_post",
            client_kwargs=client_kwargs,
        )

    def login_request(idp):
        # OIDCAuth.login_request: redirect_uri = url_for("oidc_callback", idp=idp, _external=True).
        redirect_uri = flask.url_for("oidc_callback", idp=idp, _external=True)
        return oauth.create_client(idp).authorize_redirect(redirect_uri)

    @app.before_request
    def before_request_auth():
        # OIDCAuth's check: public routes, its own routes, or a user in the session.
        if flask.request.path == "/" or flask.request.path.startswith("/oidc/") or "user" in flask.session:
            return None
        return login_request(PROVIDER)

    @app.route("/")
    def landing():
        return "twostep example: public landing page"

    @app.route("/oidc/<idp>/login")
    def oidc_login(idp):
        if idp not in clients:
            return "'%s' is not a valid registered idp" % idp, 400
        return login_request(idp)

    @app.route("/oidc/<idp>/callback")
    def oidc_callback(idp):
        # OIDCAuth.callback, dash-auth 2.3.0.
        if idp not in clients:
            return "'%s' is not a valid registered idp" % idp, 400
        client = oauth.create_client(idp)
        try:
            token = client.authorize_access_token()
        except OAuthError as err:
            return str(err), 401
        user = token.get("userinfo")
        if user:
            flask.session["user"] = user
            flask.session["idp"] = idp
            # examples/dash: the raw ID token, for logout's id_token_hint,
            # from where Authlib keeps this request's token (flask.g).
            if client.token and client.token.get("id_token"):
                flask.session["id_token"] = client.token["id_token"]
        return flask.redirect("/")

    @app.route("/oidc/logout")
    def oidc_logout():
        # examples/dash's TwostepAuth.logout.
        id_token = flask.session.get("id_token")
        idp = flask.session.get("idp", PROVIDER)
        flask.session.clear()
        if not id_token:
            return "Logged out successfully"
        metadata = oauth.create_client(idp).load_server_metadata()
        query = urllib.parse.urlencode({"id_token_hint": id_token,
                                        "post_logout_redirect_uri": flask.request.host_url})
        return flask.redirect(metadata["end_session_endpoint"] + "?" + query)

    @app.route("/me")
    def me():
        return flask.jsonify(idp=flask.session["idp"], user=flask.session["user"])

    @app.route("/admin")
    def admin():
        # dash_auth.check_groups([ADMIN_GROUP]): the "groups" of session["user"].
        if ADMIN_GROUP not in flask.session["user"].get("groups", []):
            return "You need the %s group to see this page." % ADMIN_GROUP, 403
        return "admin area"

    return app


class QuietHandler(WSGIRequestHandler):
    """Logs errors only, not every request."""

    def log_request(self, *args, **kwargs):
        pass


class Server:
    """The application served on a real socket, in a thread."""

    def __init__(self, app, url):
        u = urllib.parse.urlparse(url)
        self.server = make_server(u.hostname, u.port, app, threaded=True, request_handler=QuietHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.thread.join()


# --- the checks -------------------------------------------------------------

class Site:
    """The application, as one browser sees it."""

    def __init__(self, base, issuer):
        self.base, self.issuer = base, issuer
        self.browser = Browser(base + "/oidc/")

    def sign_in(self, label, path, **kwargs):
        """Signs in through twostep from path, completes the application's
        callback, and returns the otpauth secret (when enrolling) and the
        authorization request the application sent to twostep."""
        self.browser.visited.clear()
        callback, secret = sign_in(self.browser, self.base + path, label, **kwargs)
        authorize = self.browser.visited_with_prefix(self.issuer + "/oauth2/auth?")
        check(authorize, "%s: the application never sent the browser to %s/oauth2/auth" % (label, self.issuer))
        resp = self.browser.session.get(callback, allow_redirects=False, timeout=TIMEOUT)
        check(resp.status_code == 302 and resp.headers.get("Location") in ("/", self.base + "/"),
              "%s: the callback %s answered %d %s, want a redirect to /:\n%s"
              % (label, callback, resp.status_code, resp.headers.get("Location", ""), resp.text))
        return secret, urllib.parse.parse_qs(urllib.parse.urlparse(authorize[0]).query)

    def get(self, path):
        return self.browser.session.get(self.base + path, allow_redirects=False, timeout=TIMEOUT)

    def me(self, label):
        resp = self.get("/me")
        check(resp.status_code == 200, "%s: /me answered %d %s, want the signed-in user"
              % (label, resp.status_code, resp.headers.get("Location", resp.text)))
        return resp.json()

    def admin_status(self):
        return self.get("/admin").status_code


def check_request(label, query, client_id, redirect_uri, pkce):
    """Checks the authorization request Authlib built from the registration."""
    for name, want in (("client_id", client_id), ("redirect_uri", redirect_uri), ("response_type", "code")):
        check(query.get(name) == [want], "%s: authorization request %s=%r, want %r" % (label, name, query.get(name), want))
    check(query.get("scope", [""])[0].split() == SCOPE.split(),
          "%s: authorization request scope=%r, want %r" % (label, query.get("scope"), SCOPE))
    check(query.get("nonce"), "%s: authorization request without a nonce" % label)
    if pkce:
        check(query.get("code_challenge_method") == ["S256"] and query.get("code_challenge"),
              "%s: authorization request without PKCE S256: %r" % (label, query))
    else:
        check("code_challenge" not in query and "code_challenge_method" not in query,
              "%s: authorization request has PKCE parameters, want none: %r" % (label, query))


def check_user(label, got, username, groups, idp, client_id):
    user = got["user"]
    want = {"email": username + "@example.com", "groups": groups}
    for claim, value in want.items():
        check(user.get(claim) == value, "%s: session user %s=%r, want %r (ID token claims: %r)"
              % (label, claim, user.get(claim), value, user))
    aud = user.get("aud")
    check(aud == client_id or aud == [client_id], "%s: aud %r, want %r" % (label, aud, client_id))
    check(got["idp"] == idp, "%s: session idp %r, want %r" % (label, got["idp"], idp))
    for claim in ("sub", "name", "preferred_username"):
        check(user.get(claim), "%s: the ID token has no %s claim: %r" % (label, claim, user))
    for method in ("pwd", "otp", "mfa"):
        check(method in (user.get("amr") or []), "%s: amr %r lacks %r" % (label, user.get("amr"), method))
    return user


def main():
    issuer = env("ISSUER").rstrip("/")
    base = env("APP_URL").rstrip("/")
    client_id, nopkce_id = env("CLIENT_ID"), env("NOPKCE_CLIENT_ID")
    admin, admin_password = env("ADMIN_USERNAME"), env("ADMIN_PASSWORD")
    staff, staff_password = env("STAFF_USERNAME"), env("STAFF_PASSWORD")
    app = create_app(issuer, {
        PROVIDER: (client_id, env("CLIENT_SECRET"),
                   {"scope": SCOPE, "code_challenge_method": "S256"}),
        NOPKCE_PROVIDER: (nopkce_id, env("NOPKCE_CLIENT_SECRET"), {"scope": SCOPE}),
    })
    server = Server(app, base)
    try:
        drive(issuer, base, client_id, nopkce_id, admin, admin_password, staff, staff_password)
    finally:
        server.close()


def drive(issuer, base, client_id, nopkce_id, admin, admin_password, staff, staff_password):
    # Each user enrols with the code of step T; the admin's returning login
    # uses T+1 (one step of skew is allowed, and a code works once per user).
    step = fresh_step()
    callback = base + "/oidc/%s/callback"

    # The admin: a first login from a protected page, enrolling.
    alice = Site(base, issuer)
    resp = alice.get("/")
    check(resp.status_code == 200, "landing page: %d, want 200 without signing in" % resp.status_code)
    label = "%s, first login" % admin
    secret, query = alice.sign_in(label, "/me", username=admin, password=admin_password,
                                  code=lambda s: totp(s, step), enrol=True, consent=True)
    check_request(label, query, client_id, callback % PROVIDER, pkce=True)
    user = check_user(label, alice.me(label), admin, ["staff", "admin"], PROVIDER, client_id)
    status = alice.admin_status()
    check(status == 200, "%s: /admin answered %d, want 200 for the admin group" % (label, status))

    # Logout ends the twostep session too, and comes back to the landing page.
    alice.browser.visited.clear()
    page, stopped = alice.browser.get(base + "/oidc/logout")
    check(page is not None and page.status == 200 and page.url == base + "/",
          "logout: ended at %s, want the landing page %s/" % (page.describe() if page else stopped, base))
    ends = alice.browser.visited_with_prefix(issuer + "/oauth2/logout?")
    check(len(ends) == 1, "logout: the browser visited %r, want one end_session_endpoint request" % alice.browser.visited)
    end = urllib.parse.parse_qs(urllib.parse.urlparse(ends[0]).query)
    check(end.get("id_token_hint") and end.get("post_logout_redirect_uri") == [base + "/"],
          "logout: end_session request %r, want id_token_hint and post_logout_redirect_uri=%s/" % (end, base))
    resp = alice.get("/me")
    check(resp.status_code == 302 and resp.headers["Location"].startswith(issuer + "/oauth2/auth?"),
          "after logout: /me answered %d %s, want a redirect to twostep" % (resp.status_code, resp.headers.get("Location")))

    # The admin again: twostep asks for the password and the code (the
    # session ended), but neither enrolment nor consent.
    label = "%s, returning" % admin
    alice.sign_in(label, "/admin", username=admin, password=admin_password,
                  code=lambda _: totp(secret, step + 1), enrol=False, consent=False)
    again = check_user(label, alice.me(label), admin, ["staff", "admin"], PROVIDER, client_id)
    check(again["sub"] == user["sub"], "%s: sub %r, want %r" % (label, again["sub"], user["sub"]))

    # A user without the admin group is signed in, and refused the admin page.
    bob = Site(base, issuer)
    label = "%s, first login" % staff
    bob.sign_in(label, "/admin", username=staff, password=staff_password,
                code=lambda s: totp(s, step), enrol=True, consent=True)
    check_user(label, bob.me(label), staff, ["staff"], PROVIDER, client_id)
    status = bob.admin_status()
    check(status == 403, "%s: /admin answered %d, want 403 without the admin group" % (label, status))

    # A client registered with --no-pkce, from a browser twostep knows:
    # no password, only the consent for this new client.
    label = "%s, client without PKCE" % admin
    _, query = alice.sign_in(label, "/oidc/%s/login" % NOPKCE_PROVIDER, consent=True)
    check_request(label, query, nopkce_id, callback % NOPKCE_PROVIDER, pkce=False)
    nopkce = check_user(label, alice.me(label), admin, ["staff", "admin"], NOPKCE_PROVIDER, nopkce_id)
    check(nopkce["sub"] == user["sub"], "%s: sub %r, want %r" % (label, nopkce["sub"], user["sub"]))

    print("flask oidcauth relying party: ok (4 logins, logout, admin page allowed and refused)")


if __name__ == "__main__":
    # The test issuer is http://127.0.0.1:PORT; Authlib accepts plain HTTP
    # only for http://localhost: unless told otherwise. The flow is the same.
    os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
    run("flask oidcauth relying party", main, OAuthError)
