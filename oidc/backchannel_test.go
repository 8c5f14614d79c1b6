package oidc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/twostep/twostep/storage"
)

// received is one request a back-channel logout endpoint got.
type received struct {
	path, method, contentType string
	form                      url.Values
}

// receiver is a relying party's back-channel logout endpoint. It answers
// each request to /logout/... with the next of its statuses (200 once they
// run out), a 302 to /elsewhere, which a delivery must not follow.
type receiver struct {
	srv      *httptest.Server
	arrived  chan struct{}
	mu       sync.Mutex
	statuses []int
	got      []received
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	rc := &receiver{statuses: statuses, arrived: make(chan struct{}, 100)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		rc.mu.Lock()
		rc.got = append(rc.got, received{path: r.URL.Path, method: r.Method, contentType: r.Header.Get("Content-Type"), form: r.PostForm})
		status := http.StatusOK
		if len(rc.statuses) > 0 && strings.HasPrefix(r.URL.Path, "/logout/") {
			status, rc.statuses = rc.statuses[0], rc.statuses[1:]
		}
		rc.mu.Unlock()
		rc.arrived <- struct{}{}
		if status == http.StatusFound {
			http.Redirect(w, r, "/elsewhere", status)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// uri is the logout endpoint of client id.
func (rc *receiver) uri(id string) string { return rc.srv.URL + "/logout/" + id }

// take returns the requests received so far, and forgets them.
func (rc *receiver) take() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	got := rc.got
	rc.got = nil
	return got
}

// addBackchannelClient registers a confidential client that skips consent
// and takes back-channel logouts at uri ("" for none).
func (e *env) addBackchannelClient(id, uri, alg string) {
	e.t.Helper()
	c := appClient(id)
	c.SkipConsent, c.BackchannelLogoutURI, c.IDTokenAlg = true, uri, alg
	e.addClient(c, appSecret)
}

// signInTo runs the code flow for clientID in the browser's current login
// and returns the ID token.
func (e *env) signInTo(t *testing.T, clientID string) string {
	t.Helper()
	ar := newAuthRequest(t, clientID).with("scope", "openid")
	code := codeFrom(t, e.get(ar.url()), ar)
	rec, tr := e.exchange(t, ar, code, basic(clientID, appSecret))
	if rec.Code != http.StatusOK || tr.IDToken == "" {
		t.Fatalf("exchange for %s: got %d %s, want an ID token", clientID, rec.Code, rec.Body)
	}
	return tr.IDToken
}

// logout ends the browser's login as the client of idToken asks.
func (e *env) logout(t *testing.T, idToken string) {
	t.Helper()
	rec := e.get("/oauth2/logout?" + url.Values{"id_token_hint": {idToken}}.Encode())
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "You are signed out") {
		t.Fatalf("logout: got %d, want the signed-out page:\n%s", rec.Code, rec.Body)
	}
}

// deliver runs one delivery round and checks how many logouts it claimed.
func (e *env) deliver(t *testing.T, want int) {
	t.Helper()
	n, err := e.p.DeliverBackchannelLogouts(context.Background())
	if err != nil || n != want {
		t.Fatalf("deliver: got %d, %v; want %d, nil", n, err, want)
	}
}

// verifyLogoutToken checks raw's signature against the provider's JWKS,
// with the key its kid names, and returns its header and claims.
func verifyLogoutToken(t *testing.T, e *env, raw string) (jose.Header, map[string]any) {
	t.Helper()
	obj, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatalf("parse logout token %q: %v", raw, err)
	}
	h := obj.Signatures[0].Header
	set := jwks(t, e.p.Keys())
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("logout token kid %q: %d keys in the JWKS have it, want 1", h.KeyID, len(keys))
	}
	payload, err := obj.Verify(keys[0])
	if err != nil {
		t.Fatalf("verify logout token with the JWKS: %v", err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return h, claims
}

// checkLogoutToken checks that raw is a logout token for clientID about
// userID's session, issued now (Back-Channel Logout 1.0 §2.4), with
// exactly the claims the spec names, and returns its jti.
func checkLogoutToken(t *testing.T, e *env, raw, clientID, alg, userID string) string {
	t.Helper()
	h, claims := verifyLogoutToken(t, e, raw)
	if typ := h.ExtraHeaders[jose.HeaderType]; typ != "logout+jwt" || h.Algorithm != alg {
		t.Errorf("logout token header: got typ %v alg %s, want logout+jwt %s", typ, h.Algorithm, alg)
	}
	jti, _ := claims["jti"].(string)
	if len(jti) < 32 {
		t.Errorf("jti: got %q, want a long random value", jti)
	}
	delete(claims, "jti")
	now := e.clock.Now().Unix()
	want := map[string]any{
		"iss": testIssuer, "aud": clientID, "iat": float64(now), "exp": float64(now + 120),
		"sub": userID, "sid": sidOf(userID),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	if !reflect.DeepEqual(claims, want) {
		t.Errorf("logout token claims (but jti):\n got %v\nwant %v (and no nonce)", claims, want)
	}
	return jti
}

// TestLogoutToken: a logout token is signed as the client's ID tokens
// are, and carries exactly what §2.4 asks.
func TestLogoutToken(t *testing.T) {
	e := newEnv(t)
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			id := "app-" + alg
			e.addBackchannelClient(id, "https://rp.example/logout", alg)
			l := storage.BackchannelLogout{ClientID: id, UserID: "sub-alice", SID: sidOf("sub-alice"), URI: "https://rp.example/logout"}
			first, err := e.p.logoutToken(context.Background(), l)
			if err != nil {
				t.Fatal(err)
			}
			second, err := e.p.logoutToken(context.Background(), l)
			if err != nil {
				t.Fatal(err)
			}
			if checkLogoutToken(t, e, first, id, alg, "sub-alice") == checkLogoutToken(t, e, second, id, alg, "sub-alice") {
				t.Errorf("two logout tokens have one jti")
			}
		})
	}
}

// TestBackchannelLogout: a logout reaches, in the background, every
// client the session signed in to that registered a back-channel logout
// URI, with the sid its ID tokens carry.
func TestBackchannelLogout(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t)
	e.addBackchannelClient("rp-1", rc.uri("rp-1"), RS256)
	e.addBackchannelClient("rp-2", rc.uri("rp-2"), ES256)
	e.addBackchannelClient("plain", "", RS256)
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
	var idToken string
	for _, id := range []string{"rp-1", "rp-2", "plain", "rp-1"} {
		idToken = e.signInTo(t, id)
		// Every client learns the sid (§2.1), with a URI or without.
		if sid := jwtClaims(t, idToken)["sid"]; sid != sidOf(u.ID) {
			t.Errorf("ID token for %s: got sid %v, want %s", id, sid, sidOf(u.ID))
		}
	}
	e.audit.take()

	// The logout page does not wait: nothing is delivered until the
	// delivery runs.
	e.logout(t, idToken)
	if got := rc.take(); len(got) != 0 {
		t.Fatalf("delivered during the logout: %+v", got)
	}
	e.deliver(t, 2)
	got := rc.take()
	if len(got) != 2 {
		t.Fatalf("got %d deliveries %+v, want one each to rp-1 and rp-2", len(got), got)
	}
	algs := map[string]string{"rp-1": RS256, "rp-2": ES256}
	for _, r := range got {
		id := strings.TrimPrefix(r.path, "/logout/")
		if r.method != http.MethodPost || r.contentType != "application/x-www-form-urlencoded" || len(r.form) != 1 {
			t.Errorf("delivery to %s: got %s %s with %v, want a form POST of logout_token alone", r.path, r.method, r.contentType, r.form)
		}
		checkLogoutToken(t, e, r.form.Get("logout_token"), id, algs[id], u.ID)
		delete(algs, id)
	}
	if len(algs) != 0 {
		t.Errorf("no delivery to %v", algs)
	}
	var events []storage.AuditEvent
	for _, ev := range e.audit.take() {
		if ev.Event == "backchannel_logout" {
			ev.Detail = ""
			events = append(events, ev)
		}
	}
	want := storage.AuditEvent{Event: "backchannel_logout", Outcome: "success", UserID: u.ID}
	if len(events) != 2 || events[0].ClientID == events[1].ClientID {
		t.Errorf("audit: got %+v, want %+v for rp-1 and rp-2", events, want)
	}
	for _, ev := range events {
		want.ClientID = ev.ClientID
		if ev != want {
			t.Errorf("audit: got %+v, want %+v", ev, want)
		}
	}

	// Delivered once: the next round and a second logout find nothing.
	e.deliver(t, 0)
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
	e.logout(t, idToken)
	e.deliver(t, 0)
}

// TestBackchannelLogoutWithoutSID: a login from before sids existed gets
// ID tokens without one, and its logout notifies nobody.
func TestBackchannelLogoutWithoutSID(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t)
	e.addBackchannelClient("rp-1", rc.uri("rp-1"), RS256)
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
	e.sessions.mu.Lock()
	e.sessions.login.SID = ""
	e.sessions.mu.Unlock()
	idToken := e.signInTo(t, "rp-1")
	if sid, ok := jwtClaims(t, idToken)["sid"]; ok {
		t.Errorf("ID token of a login without sid: got sid %v, want none", sid)
	}
	e.logout(t, idToken)
	e.deliver(t, 0)
}

// TestBackchannelRetry: a failed delivery (an error status, a redirect,
// which is not followed) is retried after 3, 9, 27 and 81 intervals, each
// time with a fresh token, and given up after the fifth attempt.
func TestBackchannelRetry(t *testing.T) {
	const interval = DefaultBackchannelInterval
	tests := []struct {
		name     string
		statuses []int
		outcome  string // of the audit event
		attempts int
	}{
		{"delivered at the third attempt", []int{500, 302, 204}, "success", 3},
		{"given up after five", []int{500, 503, 400, 302, 500, 200}, "failure", 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			rc := newReceiver(t, tc.statuses...)
			e.addBackchannelClient("rp-1", rc.uri("rp-1"), RS256)
			u := e.addUser("alice")
			e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
			e.logout(t, e.signInTo(t, "rp-1"))
			e.audit.take()

			jtis := map[string]bool{}
			wait := 3 * interval
			for attempt := 1; attempt <= tc.attempts; attempt++ {
				e.deliver(t, 1)
				got := rc.take()
				if len(got) != 1 || got[0].path != "/logout/rp-1" {
					t.Fatalf("attempt %d: got %+v, want one delivery to /logout/rp-1 (a redirect is not followed)", attempt, got)
				}
				jtis[checkLogoutToken(t, e, got[0].form.Get("logout_token"), "rp-1", RS256, u.ID)] = true
				if attempt == tc.attempts {
					break
				}
				e.deliver(t, 0) // the claim is over, but the retry is not due
				e.clock.Add(wait - time.Second)
				e.deliver(t, 0)
				e.clock.Add(time.Second)
				wait *= 3
			}
			if len(jtis) != tc.attempts {
				t.Errorf("%d attempts carried %d distinct jti, want a fresh token each", tc.attempts, len(jtis))
			}
			events := e.audit.take()
			if len(events) != 1 || events[0].Event != "backchannel_logout" || events[0].Outcome != tc.outcome ||
				events[0].ClientID != "rp-1" || events[0].UserID != u.ID || !strings.Contains(events[0].Detail, rc.uri("rp-1")) {
				t.Errorf("audit: got %+v, want one backchannel_logout %s for rp-1 naming its URI", events, tc.outcome)
			}
			// Delivered or dropped, it is gone.
			e.clock.Add(time.Hour)
			e.deliver(t, 0)
		})
	}
}

// TestRunBackchannel: the instance that queued a logout delivers it at
// once, without waiting for its interval, and stops when told.
func TestRunBackchannel(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t)
	e.addBackchannelClient("rp-1", rc.uri("rp-1"), RS256)
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
	idToken := e.signInTo(t, "rp-1")

	cfg := testConfig(e.store, e.clock, e.sessions, e.audit.record, parsePages(t))
	cfg.BackchannelInterval = time.Hour
	p, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		p.RunBackchannel(ctx)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	rec := httptest.NewRecorder()
	p.Logout().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth2/logout?id_token_hint="+url.QueryEscape(idToken), nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("logout: got %d, want 200", rec.Code)
	}
	select {
	case <-rc.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10 s of the logout, with an hour's interval")
	}
	if got := rc.take(); len(got) != 1 || got[0].form.Get("logout_token") == "" {
		t.Errorf("got %+v, want one logout token", got)
	}
}

// TestBackchannelDiscovery: discovery says logout tokens come, with sid.
func TestBackchannelDiscovery(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		Supported        bool     `json:"backchannel_logout_supported"`
		SessionSupported bool     `json:"backchannel_logout_session_supported"`
		Claims           []string `json:"claims_supported"`
	}
	if err := json.Unmarshal(e.get("/.well-known/openid-configuration").Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !doc.Supported || !doc.SessionSupported || !has(doc.Claims, "sid") {
		t.Errorf("discovery: got backchannel_logout_supported %t, backchannel_logout_session_supported %t, claims %v; want true, true, with sid",
			doc.Supported, doc.SessionSupported, doc.Claims)
	}
}
