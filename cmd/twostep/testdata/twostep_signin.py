"""A browser for twostep's sign-in pages, shared by the relying-party scripts.

It signs in the way a person with a password manager and an authenticator
app does: it fills the forms by their inputs' autocomplete attributes (never
by their names), computes TOTP codes from the otpauth:// link of the
enrolment page, passes the recovery codes page by its continue link and
allows the consent page. It uses only requests and the standard library.
"""

import base64
import hashlib
import hmac
import html.parser
import os
import struct
import sys
import time
import urllib.parse

import requests

STEP = 30  # seconds per TOTP step (RFC 6238)
TIMEOUT = 15  # seconds per HTTP request


class Failure(Exception):
    """One failed check; run prints it and exits 1."""


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def env(name):
    value = os.environ.get(name, "")
    check(value != "", "environment variable %s is not set" % name)
    return value


def run(name, main, *errors):
    """Runs main, printing "NAME: FAIL: ..." and exiting 1 on a Failure, a
    requests error or one of errors."""
    try:
        main()
    except Failure as e:
        print("%s: FAIL: %s" % (name, e), file=sys.stderr)
        sys.exit(1)
    except (requests.RequestException,) + errors as e:
        print("%s: FAIL: %s: %s" % (name, type(e).__name__, e), file=sys.stderr)
        sys.exit(1)


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
    """A requests.Session that follows redirects itself, remembers every URL
    it requested, and stops at the first redirect to a URL that starts with
    stop_at (the relying party's redirect URI)."""

    def __init__(self, stop_at):
        self.session = requests.Session()
        self.stop_at = stop_at
        self.visited = []

    def _follow(self, method, url, data=None):
        for _ in range(15):
            self.visited.append(url)
            resp = self.session.request(method, url, data=data, allow_redirects=False, timeout=TIMEOUT)
            if resp.status_code not in (301, 302, 303, 307, 308):
                return Page(resp.url, resp.status_code, resp.text), None
            location = urllib.parse.urljoin(url, resp.headers.get("Location", ""))
            if location.startswith(self.stop_at):
                return None, location
            if resp.status_code in (301, 302, 303):
                method, data = "GET", None
            url = location
        raise Failure("too many redirects from %s" % url)

    def get(self, url):
        """Returns (page, None), or (None, URL) for a redirect to stop_at."""
        return self._follow("GET", url)

    def submit(self, page, form, values):
        check(form["method"] == "post", "%s: form method %r, want post" % (page.describe(), form["method"]))
        data = hidden_fields(form)
        data.update(values)
        return self._follow("POST", urllib.parse.urljoin(page.url, form["action"]), data)

    def visited_with_prefix(self, prefix):
        return [u for u in self.visited if u.startswith(prefix)]


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


def fresh_step(margin=8):
    """Returns the current TOTP step, first sleeping into the next one when
    fewer than margin seconds are left: a script that uses the codes of this
    step and the next (the server allows one step of skew, and a code works
    once per user) then has at least 30 + margin seconds for it."""
    remaining = STEP - time.time() % STEP
    if remaining < margin:
        time.sleep(remaining + 0.2)
    return int(time.time()) // STEP


# --- the sign-in --------------------------------------------------------

def sign_in(browser, url, label, username=None, password=None, code=None, enrol=False, consent=False):
    """Follows url (an authorization request, or an application page that
    redirects to one) through twostep's pages until twostep redirects to
    browser.stop_at, and returns (that redirect's URL, otpauth secret).

    username and password: expect the password page and fill it; None
    expects twostep to know the browser already (no password, no code).
    code: a function of the otpauth secret (None unless enrolling) that
    returns the code to enter.
    enrol: expect the enrolment page (QR code and otpauth:// link) and,
    after the code, the page with the 10 recovery codes; the secret
    returned is None otherwise.
    consent: expect the consent page and allow; otherwise expect consent
    to be remembered.
    """
    page, callback = browser.get(url)
    secret = None
    if username is not None:
        check(page is not None, "%s: authorize redirected to the client without a login: %s" % (label, callback))
        form, by = form_with_autocomplete(label, page, "username", "current-password")
        check(by["current-password"].get("type", "").lower() == "password",
              "%s: the current-password input has type %r, want password" % (label, by["current-password"].get("type")))
        page, callback = browser.submit(page, form, {by["username"]["name"]: username,
                                                     by["current-password"]["name"]: password})
        check(page is not None, "%s: the password alone led to the client: %s" % (label, callback))

        form, by = form_with_autocomplete(label, page, "one-time-code")
        code_input = by["one-time-code"]
        check(code_input.get("inputmode") == "numeric",
              "%s: the one-time-code input has inputmode=%r, want numeric" % (label, code_input.get("inputmode")))
        uris = [h for h in page.links if h.startswith("otpauth://")]
        qrs = [s for s in page.images if s.startswith("data:image/png")]
        if enrol:
            check(len(uris) == 1, "%s: enrolment page has %d otpauth:// links, want 1:\n%s" % (label, len(uris), page.body))
            check(qrs, "%s: enrolment page has no data:image/png QR code" % label)
            secret = otpauth_secret(uris[0])
        else:
            check("otpauth://" not in page.body and "data:image/png" not in page.body,
                  "%s: the code page of an enrolled user shows enrolment material:\n%s" % (label, page.body))
        page, callback = browser.submit(page, form, {code_input["name"]: code(secret)})

        if enrol:
            # The first login shows the new recovery codes once, then
            # continues to the authorization request.
            check(page is not None and page.body.count("<li>") == 10,
                  "%s: after enrolment got %s, want the page with 10 recovery codes:\n%s"
                  % (label, page and page.describe(), page and page.body))
            onward = [h for h in page.links if h.startswith("/oauth2/auth?")]
            check(len(onward) == 1, "%s: the recovery codes page has %d continue links, want 1" % (label, len(onward)))
            page, callback = browser.get(urllib.parse.urljoin(page.url, onward[0]))
    elif page is not None and page.forms:
        # A browser twostep knows must not be asked for a password again.
        for f in page.forms:
            for inp in f["inputs"]:
                check("current-password" not in inp.get("autocomplete", "").split(),
                      "%s: got the password page (%s), want the signed-in browser to skip it" % (label, page.describe()))

    if consent:
        allow = None
        for f in (page.forms if page is not None else []):
            if any(b.get("name") == "decision" and b.get("value") == "allow" for b in f["buttons"]):
                allow = f
        check(allow is not None, "%s: got %s, want a consent page with decision=allow:\n%s"
              % (label, page.describe() if page else "a redirect to " + callback, page.body if page else ""))
        page, callback = browser.submit(page, allow, {"decision": "allow"})
    else:
        check(page is None, "%s: got %s, want consent remembered and a redirect to %s:\n%s"
              % (label, page and page.describe(), browser.stop_at, page and page.body))
    check(page is None, "%s: after consent got %s, want a redirect to %s:\n%s"
          % (label, page and page.describe(), browser.stop_at, page and page.body))
    return callback, secret
