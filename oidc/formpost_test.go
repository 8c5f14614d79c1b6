package oidc

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// hiddenFieldRE finds the hidden fields of a form_post page.
var hiddenFieldRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)

// formPosted returns where a form_post page posts, and what, failing the
// test when rec is not such a page.
func formPosted(t *testing.T, rec *httptest.ResponseRecorder) (string, url.Values) {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status: got %d, want 200 (a form_post page); Location %q, body:\n%s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	if loc := rec.Header().Get("Location"); loc != "" {
		t.Errorf("form_post page also redirects to %q", loc)
	}
	if got, want := rec.Header().Get("Content-Security-Policy"), templates.FormPostCSP(); got != want {
		t.Errorf("Content-Security-Policy: got %q, want %q", got, want)
	}
	for h, want := range map[string]string{"Cache-Control": "no-store", "Pragma": "no-cache"} {
		if got := rec.Header().Get(h); got != want {
			t.Errorf("%s: got %q, want %q", h, got, want)
		}
	}
	body := rec.Body.String()
	m := formActionRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("page has no form:\n%s", body)
	}
	fields := url.Values{}
	for _, f := range hiddenFieldRE.FindAllStringSubmatch(body, -1) {
		fields.Add(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	return html.UnescapeString(m[1]), fields
}

// TestAuthorizeResponseIss: every authorization response, code or error,
// names the issuer (RFC 9207 §2), after the redirect_uri's own parameters.
func TestAuthorizeResponseIss(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	withQuery := appClient("withquery")
	withQuery.RedirectURIs = []string{appRedirect + "?tenant=a"}
	withQuery.SkipConsent = true
	e.addClient(withQuery, appSecret)
	u := e.addUser("alice")
	ar := newAuthRequest(t, appID)
	tests := []struct {
		name      string
		ar        authRequest
		signedIn  bool
		wantError string // "" for a code
		wantQuery url.Values
	}{
		{"code", ar, true, "", nil},
		{"redirect_uri with a query", newAuthRequest(t, "withquery").with("redirect_uri", appRedirect+"?tenant=a"), true, "", url.Values{"tenant": {"a"}}},
		{"login_required", ar.with("prompt", "none"), false, "login_required", nil},
		{"invalid_scope", ar.with("scope", "openid admin"), true, "invalid_scope", nil},
		{"invalid_request", ar.with("code_challenge_method", "plain"), true, "invalid_request", nil},
		{"unsupported_response_type", ar.with("response_type", "token"), true, "unsupported_response_type", nil},
		// fosite's error for a mode the client may not use goes in the
		// query, as every error of a code request.
		{"unsupported_response_mode", ar.with("response_mode", "fragment"), true, "unsupported_response_mode", nil},
		{"request_not_supported", ar.with("request", "eyJhbGciOiJub25lIn0.e30."), true, "request_not_supported", nil},
		{"error with a query", newAuthRequest(t, "withquery").with("redirect_uri", appRedirect+"?tenant=a").with("prompt", "none"), false, "login_required", url.Values{"tenant": {"a"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.sessions.signOut()
			if tc.signedIn {
				e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
			}
			rec := e.get(tc.ar.url())
			loc := mustRedirect(t, rec)
			if loc.Fragment != "" {
				t.Errorf("redirect %q has a fragment", loc)
			}
			q := clientRedirect(t, rec)
			if got := q["iss"]; len(got) != 1 || got[0] != testIssuer {
				t.Errorf("iss: got %q, want [%s]", got, testIssuer)
			}
			if got := q.Get("error"); got != tc.wantError {
				t.Errorf("error: got %q (%s), want %q", got, q.Get("error_description"), tc.wantError)
			}
			if got := q.Get("state"); got != tc.ar.state() {
				t.Errorf("state: got %q, want %q", got, tc.ar.state())
			}
			if tc.wantError == "" && q.Get("code") == "" {
				t.Errorf("got %v, want a code", q)
			}
			for k, want := range tc.wantQuery {
				if got := q[k]; len(got) != 1 || got[0] != want[0] {
					t.Errorf("%s: got %q, want the redirect_uri's %q", k, got, want)
				}
			}
		})
	}
}

// TestAuthorizeFormPost: with response_mode=form_post the response, code
// or error, is a page that posts it to the redirect_uri, with the state
// and the issuer, under a policy that lets the page's script submit it.
func TestAuthorizeFormPost(t *testing.T) {
	tests := []struct {
		name      string
		setUp     func(e *env, u storage.User) authRequest
		wantError string // "" for a code
	}{
		{"code", func(e *env, u storage.User) authRequest {
			e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
			return newAuthRequest(t, appID)
		}, ""},
		{"login_required", func(e *env, u storage.User) authRequest {
			return newAuthRequest(t, appID).with("prompt", "none")
		}, "login_required"},
		{"invalid_scope", func(e *env, u storage.User) authRequest {
			e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
			return newAuthRequest(t, appID).with("scope", "openid admin")
		}, "invalid_scope"},
		{"request_uri_not_supported", func(e *env, u storage.User) authRequest {
			return newAuthRequest(t, appID).with("request_uri", "https://app.example.com/request.jwt")
		}, "request_uri_not_supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(true)
			u := e.addUser("alice")
			ar := tc.setUp(e, u).with("response_mode", "form_post")
			action, fields := formPosted(t, e.get(ar.url()))
			if action != appRedirect {
				t.Errorf("form action: got %q, want %s", action, appRedirect)
			}
			if got := fields["iss"]; len(got) != 1 || got[0] != testIssuer {
				t.Errorf("iss: got %q, want [%s]", got, testIssuer)
			}
			if got := fields.Get("state"); got != ar.state() {
				t.Errorf("state: got %q, want %q", got, ar.state())
			}
			if got := fields.Get("error"); got != tc.wantError {
				t.Errorf("error: got %q (%s), want %q", got, fields.Get("error_description"), tc.wantError)
			}
			if tc.wantError != "" {
				if fields.Has("code") {
					t.Errorf("error response carries a code")
				}
				return
			}
			// The posted code is as good as a redirected one.
			rec, tr := e.exchange(t, ar, fields.Get("code"), basic(appID, appSecret))
			if rec.Code != http.StatusOK || tr.IDToken == "" {
				t.Errorf("exchange the posted code: got %d %s", rec.Code, rec.Body)
			}
		})
	}
}

// TestAuthorizeFormPostAfterSteps: a kept request keeps its response mode
// through the login and consent steps, and a user's denial is posted too.
func TestAuthorizeFormPostAfterSteps(t *testing.T) {
	for _, tc := range []struct {
		decision, wantError string
	}{
		{storage.ConsentGranted, ""},
		{storage.ConsentDenied, "access_denied"},
	} {
		t.Run(tc.decision, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(false)
			u := e.addUser("alice")
			ar := newAuthRequest(t, appID).with("response_mode", "form_post").with("ui_locales", "fr")
			id := pendingID(t, e.get(ar.url()), "/login")
			e.sessions.signIn(u.ID, e.clock.Now())
			if got := pendingID(t, e.resume(id), "/consent"); got != id {
				t.Fatalf("consent for auth_request %q, want the kept %q", got, id)
			}
			if err := e.store.DecideAuthRequest(context.Background(), id, u.ID, tc.decision); err != nil {
				t.Fatal(err)
			}
			rec := e.resume(id)
			_, fields := formPosted(t, rec)
			if got := fields.Get("error"); got != tc.wantError {
				t.Errorf("error: got %q, want %q", got, tc.wantError)
			}
			if got := fields.Has("code"); got != (tc.wantError == "") {
				t.Errorf("code posted: got %v, want %v", got, tc.wantError == "")
			}
			if fields.Get("iss") != testIssuer || fields.Get("state") != ar.state() {
				t.Errorf("got iss %q and state %q, want %s and %q", fields.Get("iss"), fields.Get("state"), testIssuer, ar.state())
			}
			// In the request's language.
			if !strings.Contains(rec.Body.String(), `<html lang="fr">`) {
				t.Errorf("form_post page is not in French:\n%s", rec.Body)
			}
		})
	}
}

// TestAuthorizeFormPostUnverifiedClient: form_post is no way around RFC
// 6749 §4.1.2.1: an unregistered redirect_uri gets twostep's own error
// page, with no form.
func TestAuthorizeFormPostUnverifiedClient(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
	rec := e.get(newAuthRequest(t, appID).with("response_mode", "form_post").with("redirect_uri", "https://evil.example/cb").url())
	wantErrorPage(t, rec, http.StatusBadRequest)
	if strings.Contains(rec.Body.String(), "evil.example") {
		t.Errorf("error page carries the unregistered redirect_uri:\n%s", rec.Body)
	}
}
