"""A Dash app whose users sign in through twostep: password, then a code
from their authenticator app.

dash-auth's OIDCAuth does the OpenID Connect work (discovery, the
authorization code flow with PKCE, the ID token's checks) and keeps the ID
token's claims in the Flask session as session["user"]; twostep puts the
user's name, email and groups there. Pages:

  /       public landing page
  /me     any signed-in user: who they are, from the ID token's claims
  /admin  the admin group only (dash-auth's check_groups and
          protected_callback read the "groups" claim)

Settings (environment): TWOSTEP_ISSUER (default http://localhost:8080),
TWOSTEP_CLIENT_ID (default dash-example), TWOSTEP_CLIENT_SECRET,
DASH_SECRET_KEY (signs the session cookie; keep it stable), and
DASH_HTTPS_CALLBACK (set, to any value, behind a TLS-terminating proxy).
See README.md.
"""

import os
import sys
from urllib.parse import urlencode

import flask
from dash import Dash, Input, Output, dcc, html
from dash_auth import OIDCAuth, check_groups, protected_callback

PROVIDER = "twostep"  # dash-auth's redirect URI is /oidc/<provider>/callback
ADMIN_GROUP = "admin"


def setting(name, default=None):
    value = os.environ.get(name, default)
    if not value:
        sys.exit(f"{name} is not set: see examples/dash/README.md")
    return value


ISSUER = setting("TWOSTEP_ISSUER", "http://localhost:8080").rstrip("/")
CLIENT_ID = setting("TWOSTEP_CLIENT_ID", "dash-example")
CLIENT_SECRET = setting("TWOSTEP_CLIENT_SECRET")
# dash-auth signs its session cookie (the user's claims, and Authlib's
# state, nonce and PKCE verifier during a sign-in) with this key. It must be
# set, and the same across restarts and workers.
SECRET_KEY = setting("DASH_SECRET_KEY")


class TwostepAuth(OIDCAuth):
    """OIDCAuth whose sign-out also ends the twostep session.

    dash-auth's logout only clears the app's own cookie: the browser stays
    signed in at twostep, and the next "Sign in" would come back without a
    password. This logout also sends the browser to twostep's
    end_session_endpoint (OpenID Connect RP-Initiated Logout 1.0), which
    ends that session and returns to the landing page.
    """

    def callback(self, idp):
        response = super().callback(idp)
        # dash-auth keeps the ID token's claims, not the token, which logout
        # needs as id_token_hint. Authlib leaves the token it has just
        # fetched on flask.g for this request, where client.token reads it.
        if flask.session.get("idp") == idp:
            token = self.get_oauth_client(idp).token
            if token and token.get("id_token"):
                flask.session["id_token"] = token["id_token"]
        return response

    def logout(self):
        id_token = flask.session.get("id_token")
        idp = flask.session.get("idp", PROVIDER)
        page = super().logout()  # clears the session
        if not id_token:
            return page
        end_session = self.get_oauth_client(idp).load_server_metadata().get("end_session_endpoint")
        if not end_session:
            return page
        query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": self.landing_url()})
        return flask.redirect(f"{end_session}?{query}")

    def landing_url(self):
        """The landing page's URL, built as dash-auth builds its redirect URI.
        twostep follows it only if registered exactly
        (--post-logout-redirect-uri)."""
        scheme = "https" if self.force_https_callback else flask.request.scheme
        host = flask.request.headers.get("X-Forwarded-Host", flask.request.host)
        return f"{scheme}://{host}/"


app = Dash(__name__, title="Sales dashboard", suppress_callback_exceptions=True)
server = app.server  # for gunicorn: gunicorn app:server

auth = TwostepAuth(
    app,
    secret_key=SECRET_KEY,
    public_routes=["/"],
    force_https_callback="DASH_HTTPS_CALLBACK",
)
auth.register_provider(
    PROVIDER,
    server_metadata_url=ISSUER + "/.well-known/openid-configuration",
    client_id=CLIENT_ID,
    client_secret=CLIENT_SECRET,
    token_endpoint_auth_method="client_secret_post",
    client_kwargs={"scope": "openid email profile groups", "code_challenge_method": "S256"},
)

# Links are plain <a> elements, not dcc.Link: a full page load lets
# dash-auth send a signed-out browser to twostep before the page renders.
app.layout = html.Div([dcc.Location(id="url"), html.Div(id="nav"), html.Main(id="page")],
                      style={"fontFamily": "system-ui, sans-serif", "maxWidth": "48rem", "margin": "2rem auto"})


def nav(user):
    links = [html.A("Home", href="/"), " · ", html.A("Who am I", href="/me"), " · ",
             html.A("Admin", href="/admin"), " · "]
    if user:
        links += [f"Signed in as {user.get('name') or user.get('preferred_username')} ", html.A("Sign out", href="/oidc/logout")]
    else:
        links += [html.A("Sign in", href=f"/oidc/{PROVIDER}/login")]
    return html.Nav(links)


def landing(user):
    return [
        html.H1("Sales dashboard"),
        html.P("This page is public. Sign in with your twostep account (your password, then a code from "
               "your authenticator app) to see who you are, and, in the admin group, the admin page."),
    ]


def me(user):
    if not user:
        return html.P(html.A("Sign in to see this page.", href=f"/oidc/{PROVIDER}/login"))
    rows = [
        ("Name", user.get("name")),
        ("Username", user.get("preferred_username")),
        ("Email", user.get("email")),
        ("Groups", ", ".join(user.get("groups") or []) or "none"),
        # amr: how twostep checked who you are (pwd, otp, mfa: RFC 8176).
        ("Signed in with", " ".join(user.get("amr") or [])),
        ("Subject (sub)", user.get("sub")),
    ]
    return [
        html.H1("Who am I"),
        html.P("From the claims of the ID token twostep issued to this app:"),
        html.Table(html.Tbody([html.Tr([html.Th(k, style={"textAlign": "left"}), html.Td(v)]) for k, v in rows])),
    ]


def admin(user):
    allowed = check_groups([ADMIN_GROUP])  # None: signed out; False: not in the group
    if allowed is None:
        return html.P(html.A("Sign in to see this page.", href=f"/oidc/{PROVIDER}/login"))
    if not allowed:
        return [html.H1("Admin"), html.P(f"Only members of the {ADMIN_GROUP} group see this page.")]
    return [
        html.H1("Admin"),
        html.P(f"You are in the {ADMIN_GROUP} group."),
        html.Button("Load the payroll", id="load-payroll"),
        html.Div(id="payroll"),
    ]


PAGES = {"/": landing, "/me": me, "/admin": admin}


@app.callback(Output("nav", "children"), Output("page", "children"), Input("url", "pathname"))
def render(pathname):
    user = flask.session.get("user")
    page = PAGES.get(pathname)
    if page is None:
        return nav(user), html.P("No such page.")
    return nav(user), page(user)


# Hiding the button is not enough: anyone signed in can call a callback.
# protected_callback checks the group on the server for each call.
@protected_callback(
    Output("payroll", "children"),
    Input("load-payroll", "n_clicks"),
    groups=[ADMIN_GROUP],
    missing_permissions_output=f"Only the {ADMIN_GROUP} group may load the payroll.",
    prevent_initial_call=True,
)
def load_payroll(n_clicks):
    return html.Ul([html.Li("Alice: 5,200"), html.Li("Bob: 4,900")])


if __name__ == "__main__":
    app.run(host=os.environ.get("DASH_HOST", "127.0.0.1"), port=int(os.environ.get("DASH_PORT", "8050")))
