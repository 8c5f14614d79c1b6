package oidc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
)

// countAuthRequests counts the kept authorization requests.
func (e *env) countAuthRequests(t *testing.T) int {
	t.Helper()
	var n int
	if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM auth_requests`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// backdate moves a kept request's arrival d into the past, as if the login
// had taken that long. fosite stamps requests with the wall clock, so only
// the stored time can be moved.
func (e *env) backdate(t *testing.T, id string, d time.Duration) storage.AuthRequest {
	t.Helper()
	ctx := context.Background()
	kept, err := e.store.GetAuthRequest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.DB().ExecContext(ctx, `UPDATE auth_requests SET requested_at = ? WHERE id = ?`,
		kept.RequestedAt.Add(-d), id); err != nil {
		t.Fatal(err)
	}
	if kept, err = e.store.GetAuthRequest(ctx, id); err != nil {
		t.Fatal(err)
	}
	return kept
}

// resume replays a kept request, as /login and /consent send the browser
// back.
func (e *env) resume(id string) *httptest.ResponseRecorder {
	return e.get("/oauth2/auth?auth_request=" + url.QueryEscape(id))
}

// wantErrorPage checks that rec is an HTML page with status, never a
// redirect.
func wantErrorPage(t *testing.T, rec *httptest.ResponseRecorder, status int) {
	t.Helper()
	if loc := rec.Header().Get("Location"); loc != "" {
		t.Errorf("got a redirect to %q, want a page and no redirect", loc)
	}
	if rec.Code != status {
		t.Errorf("status: got %d, want %d", rec.Code, status)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type: got %q, want an HTML page", ct)
	}
}

// TestAuthorizeUnverifiedClientGetsPage: while the client or its
// redirect_uri are unknown, the error is a page, never a redirect
// (RFC 6749 §4.1.2.1), even with a signed-in user.
func TestAuthorizeUnverifiedClientGetsPage(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
	ar := newAuthRequest(t, appID)
	tests := []struct {
		name string
		ar   authRequest
	}{
		// fosite's invalid_client carries 401, which a browser page
		// without a WWW-Authenticate challenge must not use.
		{"unknown client_id", ar.with("client_id", "nobody")},
		{"no client_id", ar.with("client_id", "")},
		{"unregistered redirect_uri", ar.with("redirect_uri", "https://evil.example/cb")},
		{"redirect_uri with a longer path", ar.with("redirect_uri", appRedirect+"/more")},
		{"redirect_uri with a query added", ar.with("redirect_uri", appRedirect+"?next=https://evil.example")},
		{"unregistered redirect_uri and response_type=token", ar.with("redirect_uri", "https://evil.example/cb").with("response_type", "token")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.get(tc.ar.url())
			wantErrorPage(t, rec, http.StatusBadRequest)
			if !strings.Contains(rec.Body.String(), "invalid sign-in request") {
				t.Errorf("page does not say the request is invalid:\n%s", rec.Body)
			}
		})
	}
	if n := e.countAuthRequests(t); n != 0 {
		t.Errorf("kept %d authorization requests for invalid clients, want 0", n)
	}
}

// TestAuthorizeErrorPageLanguage: the page for an invalid request is in
// the language its ui_locales asks for, else the browser's, else English.
func TestAuthorizeErrorPageLanguage(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	bad := newAuthRequest(t, appID).with("redirect_uri", "https://evil.example/cb")
	for _, tc := range []struct {
		name, accept, want string
		ar                 authRequest
	}{
		{"ui_locales beats Accept-Language", "fr", `<html lang="de">`, bad.with("ui_locales", "es de-AT fr")},
		{"Accept-Language", "fr-FR, en;q=0.5", `<html lang="fr">`, bad},
		{"English", "", `<html lang="en">`, bad.with("ui_locales", "ja")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.ar.url(), nil)
			r.Header.Set("Accept-Language", tc.accept)
			rec := e.serve(r)
			wantErrorPage(t, rec, http.StatusBadRequest)
			if !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("page lacks %s:\n%s", tc.want, rec.Body)
			}
		})
	}
}

// TestAuthorizeErrorRedirects: errors about a request from a verified
// client and redirect_uri go back to the client with the state, and no
// code or token, even though the user is signed in and consent is skipped.
func TestAuthorizeErrorRedirects(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	// A client registered with implicit and hybrid response types: twostep
	// composes no handler for them, so they must still fail.
	loose := appClient("loose")
	loose.ResponseTypes = []string{"code", "token", "id_token", "id_token token", "code id_token", "code token", "code id_token token"}
	loose.SkipConsent = true
	e.addClient(loose, appSecret)
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))

	app, looseAR := newAuthRequest(t, appID), newAuthRequest(t, "loose")
	tests := []struct {
		name      string
		ar        authRequest
		wantError string // "" for any error
	}{
		{"response_type=token", app.with("response_type", "token"), "unsupported_response_type"},
		{"response_type=id_token", app.with("response_type", "id_token"), "unsupported_response_type"},
		{"response_type=code id_token", app.with("response_type", "code id_token"), "unsupported_response_type"},
		{"registered response_type=token", looseAR.with("response_type", "token"), "unsupported_response_type"},
		{"registered response_type=id_token token", looseAR.with("response_type", "id_token token"), "unsupported_response_type"},
		// fosite's PKCE handler answers these with server_error (the
		// code handler only takes response_type=code alone); any error
		// without a code or token will do.
		{"registered response_type=code token", looseAR.with("response_type", "code token"), ""},
		{"registered response_type=code id_token", looseAR.with("response_type", "code id_token"), ""},
		{"no code_challenge", app.with("code_challenge", ""), "invalid_request"},
		{"no code_challenge nor method", app.with("code_challenge", "").with("code_challenge_method", ""), "invalid_request"},
		{"code_challenge_method=plain", app.with("code_challenge_method", "plain"), "invalid_request"},
		{"code_challenge without a method (plain by default)", app.with("code_challenge_method", ""), "invalid_request"},
		{"unknown code_challenge_method", app.with("code_challenge_method", "S512"), "invalid_request"},
		{"scope the client may not ask", app.with("scope", "openid admin"), "invalid_scope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := clientRedirect(t, e.get(tc.ar.url()))
			if got := q.Get("error"); got == "" || (tc.wantError != "" && got != tc.wantError) {
				t.Errorf("error: got %q (%s), want %s", got, q.Get("error_description"), tc.wantError)
			}
			if got := q.Get("state"); got != tc.ar.state() {
				t.Errorf("state: got %q, want %q", got, tc.ar.state())
			}
			for _, leaked := range []string{"code", "access_token", "id_token"} {
				if q.Has(leaked) {
					t.Errorf("error redirect carries %s=%q", leaked, q.Get(leaked))
				}
			}
		})
	}
}

// TestAuthorizePKCEBeforeLogin: a request without S256 PKCE is refused
// before the user is sent through the login for nothing.
func TestAuthorizePKCEBeforeLogin(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	ar := newAuthRequest(t, appID)
	tests := []struct {
		name string
		ar   authRequest
	}{
		{"no code_challenge", ar.with("code_challenge", "")},
		{"code_challenge_method=plain", ar.with("code_challenge_method", "plain")},
		{"code_challenge without a method", ar.with("code_challenge_method", "")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := clientRedirect(t, e.get(tc.ar.url()))
			if q.Get("error") != "invalid_request" || q.Get("state") != tc.ar.state() {
				t.Errorf("got %v, want error=invalid_request with the state", q)
			}
		})
	}
	if n := e.countAuthRequests(t); n != 0 {
		t.Errorf("kept %d requests without PKCE, want 0", n)
	}
}

// TestAuthorizeSendsToLogin: without a usable login the request is kept
// as it came and the browser goes to /login.
func TestAuthorizeSendsToLogin(t *testing.T) {
	tests := []struct {
		name   string
		method string
		signIn func(e *env)
	}{
		{"no session", http.MethodGet, func(*env) {}},
		{"no session, POST", http.MethodPost, func(*env) {}},
		{"disabled user", http.MethodGet, func(e *env) {
			u := e.addUserWith("dora", func(u *storage.User) { u.Disabled = true }, true)
			e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
		}},
		{"user without TOTP", http.MethodGet, func(e *env) {
			u := e.addUserWith("nora", func(*storage.User) {}, false)
			e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
		}},
		{"user no longer exists", http.MethodGet, func(e *env) {
			e.sessions.signIn("sub-ghost", e.clock.Now().Add(-time.Minute))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(true)
			tc.signIn(e)
			ar := newAuthRequest(t, appID)
			r := httptest.NewRequest(http.MethodGet, ar.url(), nil)
			if tc.method == http.MethodPost {
				r = httptest.NewRequest(http.MethodPost, "/oauth2/auth", strings.NewReader(ar.params.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			before := time.Now().UTC()
			rec := e.serve(r)
			after := time.Now().UTC()
			id := pendingID(t, rec, "/login")

			kept, err := e.store.GetAuthRequest(context.Background(), id)
			if err != nil {
				t.Fatalf("GetAuthRequest(%q): %v", id, err)
			}
			if kept.ClientID != appID {
				t.Errorf("kept client: got %q, want %q", kept.ClientID, appID)
			}
			if got, want := kept.Form.Encode(), ar.params.Encode(); got != want {
				t.Errorf("kept form:\n got %s\nwant %s", got, want)
			}
			if kept.RequestedAt.Before(before.Truncate(time.Microsecond)) || kept.RequestedAt.After(after) {
				t.Errorf("kept RequestedAt: got %v, want between %v and %v", kept.RequestedAt, before, after)
			}
			if want := e.clock.Now().Add(authRequestLifetime); !kept.ExpiresAt.Equal(want) {
				t.Errorf("kept ExpiresAt: got %v, want %v", kept.ExpiresAt, want)
			}
			if kept.Consent != "" {
				t.Errorf("kept consent: got %q, want none yet", kept.Consent)
			}
		})
	}
}

// TestAuthorizeKeptRequest walks a kept request through the login: it is
// replayed with its own state, nonce and requested_at, once.
func TestAuthorizeKeptRequest(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.addApp(true)
	u := e.addUser("alice")
	ar := newAuthRequest(t, appID)
	id := pendingID(t, e.get(ar.url()), "/login")
	kept := e.backdate(t, id, 10*time.Minute)

	// Still nobody signed in: back to the login, with the same request.
	if got := pendingID(t, e.resume(id), "/login"); got != id {
		t.Errorf("resume without a login: got auth_request %q, want the kept %q", got, id)
	}

	e.sessions.signIn(u.ID, e.clock.Now())
	c := codeFrom(t, e.resume(id), ar)
	rec, tr := e.exchange(t, ar, c, basic(appID, appSecret))
	if rec.Code != http.StatusOK {
		t.Fatalf("exchange the code of a kept request: got %d %s", rec.Code, rec.Body)
	}
	claims := jwtClaims(t, tr.IDToken)
	if claims["nonce"] != ar.params.Get("nonce") {
		t.Errorf("ID token nonce: got %v, want the original %q", claims["nonce"], ar.params.Get("nonce"))
	}
	if rat, ok := claims["rat"]; ok {
		t.Errorf("ID token has rat %v, a claim no specification defines", rat)
	}
	// The code is for the request as it first arrived: fosite checks
	// prompt and max_age against that.
	var stored struct {
		RequestedAt time.Time `json:"requested_at"`
		Session     struct {
			Claims struct {
				RequestedAt time.Time `json:"rat"`
			} `json:"id_token_claims"`
		} `json:"session"`
	}
	var body string
	if err := e.store.DB().QueryRow(`SELECT request FROM oauth2_sessions WHERE kind = 'code'`).Scan(&body); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(body), &stored); err != nil {
		t.Fatal(err)
	}
	if !stored.RequestedAt.Equal(kept.RequestedAt) {
		t.Errorf("code's requested_at: got %v, want the kept request's %v", stored.RequestedAt, kept.RequestedAt)
	}
	if want := kept.RequestedAt.Truncate(time.Second); !stored.Session.Claims.RequestedAt.Equal(want) {
		t.Errorf("session's requested_at: got %v, want the kept request's, in seconds, %v", stored.Session.Claims.RequestedAt, want)
	}

	// Used once.
	wantErrorPage(t, e.resume(id), http.StatusBadRequest)
	if _, err := e.store.GetAuthRequest(ctx, id); err == nil {
		t.Errorf("kept request still stored after its code was issued")
	}
	wantErrorPage(t, e.resume("no-such-request"), http.StatusBadRequest)
}

func TestAuthorizeKeptRequestExpires(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	u := e.addUser("alice")
	id := pendingID(t, e.get(newAuthRequest(t, appID).url()), "/login")
	e.clock.Add(authRequestLifetime + time.Second)
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Second))
	wantErrorPage(t, e.resume(id), http.StatusBadRequest)
}

// TestAuthorizeConsent: without a remembered grant (or when prompt=consent
// asks again) the browser goes to /consent.
func TestAuthorizeConsent(t *testing.T) {
	all := []string{"openid", "profile", "email", "groups", "offline_access"}
	tests := []struct {
		name   string
		grant  []string
		prompt string
		want   string // "consent", "code" or an error code
	}{
		{"no grant", nil, "", "consent"},
		{"grant covers the scopes", all, "", "code"},
		{"grant covers fewer scopes", []string{"openid", "profile"}, "", "consent"},
		{"prompt=consent with a grant", all, "consent", "consent"},
		{"prompt=none without a grant", nil, "none", "consent_required"},
		{"prompt=none with a grant too small", []string{"openid"}, "none", "consent_required"},
		{"prompt=none with a grant", all, "none", "code"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(false)
			u := e.addUser("alice")
			if tc.grant != nil {
				if err := e.store.SaveGrant(context.Background(), u.ID, appID, tc.grant); err != nil {
					t.Fatal(err)
				}
			}
			e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
			ar := newAuthRequest(t, appID).with("prompt", tc.prompt)
			rec := e.get(ar.url())
			switch tc.want {
			case "consent":
				pendingID(t, rec, "/consent")
			case "code":
				codeFrom(t, rec, ar)
			default:
				wantErrorRedirect(t, rec, ar, tc.want)
				if n := e.countAuthRequests(t); n != 0 {
					t.Errorf("prompt=none kept %d requests, want 0", n)
				}
			}
		})
	}
}

// TestAuthorizeConsentDecision: a decision recorded on the kept request
// counts only for the user who made it.
func TestAuthorizeConsentDecision(t *testing.T) {
	tests := []struct {
		name     string
		by       string
		decision string
		want     string // "code", "consent" or an error code
	}{
		{"granted by the user", "sub-alice", storage.ConsentGranted, "code"},
		{"denied by the user", "sub-alice", storage.ConsentDenied, "access_denied"},
		{"granted by another user", "sub-mallory", storage.ConsentGranted, "consent"},
		{"denied by another user", "sub-mallory", storage.ConsentDenied, "consent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(false)
			u := e.addUser("alice")
			e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
			ar := newAuthRequest(t, appID)
			id := pendingID(t, e.get(ar.url()), "/consent")
			if err := e.store.DecideAuthRequest(context.Background(), id, tc.by, tc.decision); err != nil {
				t.Fatal(err)
			}
			rec := e.resume(id)
			switch tc.want {
			case "code":
				codeFrom(t, rec, ar)
			case "consent":
				if got := pendingID(t, rec, "/consent"); got != id {
					t.Errorf("got auth_request %q, want the kept %q", got, id)
				}
			default:
				wantErrorRedirect(t, rec, ar, tc.want)
			}
		})
	}
}

// TestAuthorizeReauthentication: prompt=login and max_age demand a login
// newer than the request or than max_age.
func TestAuthorizeReauthentication(t *testing.T) {
	tests := []struct {
		name     string
		param    string
		value    string
		loggedIn time.Duration // before now
		want     string        // "login" or "code"
	}{
		{"prompt=login with an earlier login", "prompt", "login", time.Hour, "login"},
		{"prompt=login with a login a second ago", "prompt", "login", time.Second, "login"},
		{"max_age exceeded", "max_age", "60", 2 * time.Minute, "login"},
		{"max_age respected", "max_age", "600", 2 * time.Minute, "code"},
		{"max_age=0", "max_age", "0", time.Second, "login"},
		{"max_age not a number", "max_age", "soon", time.Second, "login"},
		{"max_age negative", "max_age", "-1", time.Second, "login"},
		{"no prompt, old login", "prompt", "", 10 * time.Hour, "code"},
		{"prompt=none with a login", "prompt", "none", time.Hour, "code"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(true)
			u := e.addUser("alice")
			e.sessions.signIn(u.ID, e.clock.Now().Add(-tc.loggedIn))
			ar := newAuthRequest(t, appID).with(tc.param, tc.value)
			rec := e.get(ar.url())
			if tc.want == "login" {
				pendingID(t, rec, "/login")
				return
			}
			codeFrom(t, rec, ar)
		})
	}
}

// TestAuthorizePromptLoginKeptRequest: after prompt=login, a login that
// completed after the request arrived satisfies it; the old one does not.
func TestAuthorizePromptLoginKeptRequest(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Hour))
	ar := newAuthRequest(t, appID).with("prompt", "login")
	id := pendingID(t, e.get(ar.url()), "/login")
	kept := e.backdate(t, id, 10*time.Minute)
	if got := pendingID(t, e.resume(id), "/login"); got != id {
		t.Errorf("resume with the old login: got auth_request %q, want the kept %q", got, id)
	}

	authTime := kept.RequestedAt.Add(time.Second)
	e.sessions.signIn(u.ID, authTime)
	c := codeFrom(t, e.resume(id), ar)
	rec, tr := e.exchange(t, ar, c, basic(appID, appSecret))
	if rec.Code != http.StatusOK {
		t.Fatalf("exchange: got %d %s", rec.Code, rec.Body)
	}
	if got, _ := jwtClaims(t, tr.IDToken)["auth_time"].(float64); int64(got) != authTime.Unix() {
		t.Errorf("auth_time: got %v, want %d", got, authTime.Unix())
	}
}

// TestAuthorizePromptNoneWithoutLogin: prompt=none never shows a page.
func TestAuthorizePromptNoneWithoutLogin(t *testing.T) {
	tests := []struct {
		name   string
		signIn func(e *env)
	}{
		{"no session", func(*env) {}},
		{"disabled user", func(e *env) {
			u := e.addUserWith("dora", func(u *storage.User) { u.Disabled = true }, true)
			e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
		}},
		{"user without TOTP", func(e *env) {
			u := e.addUserWith("nora", func(*storage.User) {}, false)
			e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(true)
			tc.signIn(e)
			ar := newAuthRequest(t, appID).with("prompt", "none")
			q := clientRedirect(t, e.get(ar.url()))
			if q.Get("error") != "login_required" || q.Get("state") != ar.state() || q.Has("code") {
				t.Errorf("got %v, want error=login_required with the state and no code", q)
			}
			if n := e.countAuthRequests(t); n != 0 {
				t.Errorf("prompt=none kept %d requests, want 0", n)
			}
		})
	}
}

// TestAuthorizeACRValues: acr_values naming the TOTP class is not
// satisfied by an earlier login that skipped the code (remembered device)
// or replaced it (recovery code): the browser goes to a fresh login, as
// for prompt=login.
func TestAuthorizeACRValues(t *testing.T) {
	pwd, mfa := []string{"pwd"}, []string{"pwd", "mfa"}
	otp := []string{"pwd", "otp", "mfa"}
	tests := []struct {
		name      string
		acr       string // of the browser's login
		amr       []string
		acrValues string
		prompt    string
		want      string // "login", "code" or an error code
	}{
		{"remembered device, TOTP asked", storage.ACRRememberedDevice, pwd, storage.ACRTOTP, "", "login"},
		{"recovery code, TOTP asked", storage.ACRRecoveryCode, mfa, storage.ACRTOTP, "", "login"},
		{"remembered device, TOTP among others", storage.ACRRememberedDevice, pwd, storage.ACRRememberedDevice + " " + storage.ACRTOTP, "", "login"},
		{"remembered device, TOTP asked, prompt=none", storage.ACRRememberedDevice, pwd, storage.ACRTOTP, "none", "login_required"},
		{"TOTP login, TOTP asked", storage.ACRTOTP, otp, storage.ACRTOTP, "", "code"},
		{"login from before ACR was recorded, TOTP asked", "", otp, storage.ACRTOTP, "", "code"},
		{"remembered device, nothing asked", storage.ACRRememberedDevice, pwd, "", "", "code"},
		{"remembered device, its own class asked", storage.ACRRememberedDevice, pwd, storage.ACRRememberedDevice, "", "code"},
		{"recovery code, another class asked", storage.ACRRecoveryCode, mfa, "urn:example:other", "", "code"},
		// A substring is not the class.
		{"remembered device, a longer class asked", storage.ACRRememberedDevice, pwd, storage.ACRTOTP + "-ish", "", "code"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(true)
			u := e.addUser("alice")
			e.sessions.signInWith(u.ID, e.clock.Now().Add(-time.Minute), tc.acr, tc.amr)
			ar := newAuthRequest(t, appID).with("acr_values", tc.acrValues).with("prompt", tc.prompt)
			rec := e.get(ar.url())
			switch tc.want {
			case "login":
				id := pendingID(t, rec, "/login")
				kept, err := e.store.GetAuthRequest(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if got := kept.Form.Get("acr_values"); got != tc.acrValues {
					t.Errorf("kept acr_values: got %q, want %q (the login step reads it)", got, tc.acrValues)
				}
			case "code":
				codeFrom(t, rec, ar)
			default:
				wantErrorRedirect(t, rec, ar, tc.want)
			}
		})
	}
}

// TestAuthorizeACRValuesKeptRequest: after acr_values sent a remembered
// login back to /login, a login completed after the request satisfies it;
// should it end with a recovery code (the phone is lost), the code is
// issued rather than the browser looping, and the ID token says how.
func TestAuthorizeACRValuesKeptRequest(t *testing.T) {
	tests := []struct {
		name string
		acr  string
		amr  []string
	}{
		{"fresh TOTP login", storage.ACRTOTP, []string{"pwd", "otp", "mfa"}},
		{"fresh recovery-code login", storage.ACRRecoveryCode, []string{"pwd", "mfa"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(true)
			u := e.addUser("alice")
			e.sessions.signInWith(u.ID, e.clock.Now().Add(-time.Hour), storage.ACRRememberedDevice, []string{"pwd"})
			ar := newAuthRequest(t, appID).with("acr_values", storage.ACRTOTP)
			id := pendingID(t, e.get(ar.url()), "/login")
			kept := e.backdate(t, id, 10*time.Minute)
			if got := pendingID(t, e.resume(id), "/login"); got != id {
				t.Errorf("resume with the remembered login: got auth_request %q, want the kept %q", got, id)
			}

			e.sessions.signInWith(u.ID, kept.RequestedAt.Add(time.Second), tc.acr, tc.amr)
			c := codeFrom(t, e.resume(id), ar)
			rec, tr := e.exchange(t, ar, c, basic(appID, appSecret))
			if rec.Code != http.StatusOK {
				t.Fatalf("exchange: got %d %s", rec.Code, rec.Body)
			}
			if got := jwtClaims(t, tr.IDToken)["acr"]; got != tc.acr {
				t.Errorf("acr: got %v, want %q", got, tc.acr)
			}
		})
	}
}

// TestIDTokenACR: the ID token's acr and amr say how the login ended, in
// the first ID token and in those the refresh grant issues.
func TestIDTokenACR(t *testing.T) {
	tests := []struct {
		name    string
		acr     string
		amr     []string
		wantACR string
	}{
		{"TOTP code", storage.ACRTOTP, []string{"pwd", "otp", "mfa"}, storage.ACRTOTP},
		{"recovery code", storage.ACRRecoveryCode, []string{"pwd", "mfa"}, storage.ACRRecoveryCode},
		{"remembered device", storage.ACRRememberedDevice, []string{"pwd"}, storage.ACRRememberedDevice},
		{"login from before ACR was recorded", "", []string{"pwd", "otp", "mfa"}, storage.ACRTOTP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(true)
			u := e.addUser("alice")
			e.sessions.signInWith(u.ID, e.clock.Now().Add(-time.Minute), tc.acr, tc.amr)
			ar := newAuthRequest(t, appID)
			rec, tr := e.exchange(t, ar, codeFrom(t, e.get(ar.url()), ar), basic(appID, appSecret))
			if rec.Code != http.StatusOK {
				t.Fatalf("exchange: got %d %s", rec.Code, rec.Body)
			}
			rec = e.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, basic(appID, appSecret))
			refreshed := decodeToken(t, rec)
			if rec.Code != http.StatusOK || refreshed.IDToken == "" {
				t.Fatalf("refresh: got %d %s, want an ID token", rec.Code, rec.Body)
			}
			for which, raw := range map[string]string{"first": tr.IDToken, "refreshed": refreshed.IDToken} {
				claims := jwtClaims(t, raw)
				if got := claims["acr"]; got != tc.wantACR {
					t.Errorf("%s ID token acr: got %v, want %q", which, got, tc.wantACR)
				}
				var amr []string
				if list, ok := claims["amr"].([]any); ok {
					for _, v := range list {
						s, _ := v.(string)
						amr = append(amr, s)
					}
				}
				if !slices.Equal(amr, tc.amr) {
					t.Errorf("%s ID token amr: got %v, want %v", which, claims["amr"], tc.amr)
				}
			}
		})
	}
}
