package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
)

// What must happen once (a code redeemed, a refresh token rotated, a TOTP
// code accepted) is raced here by real clients against the real server,
// on every database.

// racers is how many requests race for one thing that must happen once,
// and raceRounds how many times a token race is run.
const (
	racers     = 20
	raceRounds = 5
)

const racePassword = "correct horse battery staple"

// together runs fn(0) ... fn(n-1) on n goroutines that are all parked on
// one channel before it is closed, so they start as close to together as
// the scheduler allows, and waits for all of them.
func together(n int, fn func(i int)) {
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			fn(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

// warmClient returns an HTTP client with its own connection pool that
// already holds an open connection to base, so a raced request does not
// spend its head start on a TCP handshake.
func warmClient(t *testing.T, base string) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	resp, err := c.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("warm up: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return c
}

// oauthResult is the answer of a token, introspection or userinfo
// endpoint.
type oauthResult struct {
	status int
	body   map[string]any
	raw    string
	err    error // transport or decoding failure
}

// field returns a string member of the JSON body.
func (r oauthResult) field(name string) string {
	s, _ := r.body[name].(string)
	return s
}

func (r oauthResult) String() string {
	if r.err != nil {
		return "transport error: " + r.err.Error()
	}
	return fmt.Sprintf("%d %s", r.status, strings.TrimSpace(r.raw))
}

// postOAuth posts form to endpoint with client_secret_basic (RFC 6749
// §2.3.1: the credentials are form-encoded before the Basic encoding). It
// reports failures in the result rather than through t, so goroutines may
// call it.
func postOAuth(c *http.Client, endpoint, clientID, secret string, form url.Values) oauthResult {
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return oauthResult{err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	return doOAuth(c, req)
}

// getBearer calls endpoint with an access token.
func getBearer(c *http.Client, endpoint, accessToken string) oauthResult {
	req, err := http.NewRequest(http.MethodGet, endpoint, nil)
	if err != nil {
		return oauthResult{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	return doOAuth(c, req)
}

func doOAuth(c *http.Client, req *http.Request) oauthResult {
	resp, err := c.Do(req)
	if err != nil {
		return oauthResult{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	res := oauthResult{status: resp.StatusCode, raw: string(raw), err: err}
	if err == nil && len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &res.body); err != nil {
			res.err = fmt.Errorf("decode %q: %w", raw, err)
		}
	}
	return res
}

// tokenURL is the token endpoint of an instance.
func tokenURL(base string) string { return base + "/oauth2/token" }

// enrolment is what a user's first login leaves: the browser, signed in,
// the authenticator's key, the time step the enrolment consumed and the
// recovery codes shown.
type enrolment struct {
	b        *browser
	key      *otp.Key
	step     int64
	recovery []string
}

// enrol runs a user's first login in a new browser, enrolling an
// authenticator with the code of the current time step and allowing
// consent.
func enrol(t *testing.T, rp *relyingParty, username string) enrolment {
	t.Helper()
	b := newBrowser(t, testRedirect)
	ar := rp.newAuthRequest()
	p := b.submit(b.get(ar.url), map[string]string{"username": username, "password": racePassword})
	if p.url.Path != "/login/totp" {
		t.Fatalf("%s: after the password: got %s, want /login/totp\n%s", username, p, p.body)
	}
	key, err := otp.NewKeyFromURL(otpauthURI(p.body))
	if err != nil {
		t.Fatalf("%s: enrolment page: %v\n%s", username, err, p.body)
	}
	now := time.Now()
	p = b.submit(p, map[string]string{"code": codeAt(t, key, now)})
	recovery, p := b.recoveryCodes(p)
	if p.url.Path == "/consent" {
		p = b.submit(p, map[string]string{"decision": "allow"})
	}
	if _, ok := codeFrom(t, p, ar); !ok {
		t.Fatalf("%s: first login: got %s (Location %q), want a code\n%s", username, p, p.header.Get("Location"), p.body)
	}
	return enrolment{b: b, key: key, step: now.Unix() / 30, recovery: recovery}
}

// laterCode returns a code that the server accepts now (the current step,
// or the next one, within the one-step skew) and that is for a step later
// than after, so the replay guard does not refuse it.
func laterCode(t *testing.T, key *otp.Key, after int64) string {
	t.Helper()
	step := max(time.Now().Unix()/30, after+1)
	return codeAt(t, key, time.Unix(step*30, 0))
}

// newCode gets a fresh authorization code from a browser that is signed in
// and whose consent is remembered.
func newCode(t *testing.T, b *browser, rp *relyingParty) (string, authRequest) {
	t.Helper()
	ar := rp.newAuthRequest()
	p := b.get(ar.url)
	code, ok := codeFrom(t, p, ar)
	if !ok {
		t.Fatalf("authorize with a session: got %s (Location %q), want a code", p, p.header.Get("Location"))
	}
	return code, ar
}

func codeGrant(code string, ar authRequest) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {testRedirect}, "code_verifier": {ar.verifier}}
}

func refreshGrant(refreshToken string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
}

// raceToken sends form to the token endpoint from racers clients at once
// and checks that exactly one gets tokens and every other gets
// invalid_grant (RFC 6749 §5.2). It returns the winner's answer.
func raceToken(t *testing.T, in *instance, rp *relyingParty, form url.Values) oauthResult {
	t.Helper()
	clients := make([]*http.Client, racers)
	for i := range clients {
		clients[i] = warmClient(t, in.issuer)
	}
	results := make([]oauthResult, racers)
	together(racers, func(i int) {
		results[i] = postOAuth(clients[i], tokenURL(in.issuer), rp.config.ClientID, rp.config.ClientSecret, form)
	})
	var winners []oauthResult
	for i, res := range results {
		switch {
		case res.err == nil && res.status == http.StatusOK && res.field("access_token") != "":
			winners = append(winners, res)
		case res.err == nil && res.status == http.StatusBadRequest && res.field("error") == "invalid_grant":
		default:
			t.Errorf("racer %d: got %s, want 200 with tokens or 400 invalid_grant", i, res)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d of %d racers got tokens, want exactly 1", len(winners), racers)
	}
	return winners[0]
}

// TestExactlyOnce races real requests for what must happen once, on each
// database.
func TestExactlyOnce(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, database string, getenv func(string) string) {
		in := startServer(t, database, getenv)
		rp := newRelyingParty(t, in)
		addUser(t, in, "alice", racePassword)
		alice := enrol(t, rp, "alice").b

		// A lost race shows only when the requests overlap, so each
		// race is run a few times.
		t.Run("authorization code", func(t *testing.T) {
			for range raceRounds {
				code, ar := newCode(t, alice, rp)
				raceToken(t, in, rp, codeGrant(code, ar))
			}
		})

		t.Run("refresh token", func(t *testing.T) {
			for range raceRounds {
				code, ar := newCode(t, alice, rp)
				tok := postOAuth(http.DefaultClient, tokenURL(in.issuer), rp.config.ClientID, rp.config.ClientSecret, codeGrant(code, ar))
				if tok.status != http.StatusOK || tok.field("refresh_token") == "" {
					t.Fatalf("exchange: got %s, want tokens with a refresh token", tok)
				}
				won := raceToken(t, in, rp, refreshGrant(tok.field("refresh_token")))
				if rt := won.field("refresh_token"); rt == "" || rt == tok.field("refresh_token") {
					t.Errorf("rotation: got refresh token %q, want a new one", rt)
				}
			}
		})

		t.Run("refresh token replay revokes the family", func(t *testing.T) {
			testRefreshReplay(t, in, rp, alice)
		})

		t.Run("totp code", func(t *testing.T) {
			testTOTPRace(t, in, rp)
		})
	})
}

// testRefreshReplay rotates a refresh token, then presents the old one
// again: it is refused, and since the server cannot tell the thief from
// the client, the tokens the rotation issued are revoked too (RFC 6819
// §5.2.2.3, fosite's reuse detection).
func testRefreshReplay(t *testing.T, in *instance, rp *relyingParty, b *browser) {
	c := http.DefaultClient
	post := func(form url.Values) oauthResult {
		return postOAuth(c, tokenURL(in.issuer), rp.config.ClientID, rp.config.ClientSecret, form)
	}
	code, ar := newCode(t, b, rp)
	first := post(codeGrant(code, ar))
	if first.status != http.StatusOK || first.field("refresh_token") == "" {
		t.Fatalf("exchange: got %s, want tokens with a refresh token", first)
	}
	second := post(refreshGrant(first.field("refresh_token")))
	if second.status != http.StatusOK || second.field("refresh_token") == "" {
		t.Fatalf("refresh: got %s, want new tokens", second)
	}
	if got := getBearer(c, in.issuer+"/userinfo", second.field("access_token")); got.status != http.StatusOK {
		t.Fatalf("userinfo with the rotated access token: got %s, want 200", got)
	}

	replay := post(refreshGrant(first.field("refresh_token")))
	if replay.status != http.StatusBadRequest || replay.field("error") != "invalid_grant" {
		t.Errorf("replayed old refresh token: got %s, want 400 invalid_grant", replay)
	}
	if got := post(refreshGrant(second.field("refresh_token"))); got.status != http.StatusBadRequest || got.field("error") != "invalid_grant" {
		t.Errorf("refresh token of the rotation after the replay: got %s, want 400 invalid_grant (family revoked)", got)
	}
	if got := getBearer(c, in.issuer+"/userinfo", second.field("access_token")); got.status != http.StatusUnauthorized {
		t.Errorf("access token of the rotation after the replay: got %s, want 401 (family revoked)", got)
	}
}

// totpRacer is one browser that has passed the password step and holds
// the code form.
type totpRacer struct {
	user   int
	b      *browser
	ar     authRequest
	client *http.Client // b's cookies, but stops at the first response
	action string       // where the code form posts
	csrf   string
	status int
	loc    string
	body   string
	err    error
}

// testTOTPRace: several browsers of one user, each past the password step
// in its own session, submit the same valid code at once; exactly one
// reaches the next step. The throttle allows 5 code attempts per user per
// login session, so each user gets 5 browsers, and 4 users race at once to
// make 20 concurrent submissions.
func testTOTPRace(t *testing.T, in *instance, rp *relyingParty) {
	const users, perUser = 4, 5
	keys := make([]*otp.Key, users)
	steps := make([]int64, users)
	for u := range users {
		name := fmt.Sprintf("racer%d", u)
		addUser(t, in, name, racePassword)
		e := enrol(t, rp, name)
		keys[u], steps[u] = e.key, e.step
	}
	var rs []*totpRacer
	for u := range users {
		for range perUser {
			b := newBrowser(t, testRedirect)
			b.client.Transport = &http.Transport{MaxIdleConnsPerHost: 1}
			t.Cleanup(b.client.Transport.(*http.Transport).CloseIdleConnections)
			ar := rp.newAuthRequest()
			p := b.submit(b.get(ar.url), map[string]string{"username": fmt.Sprintf("racer%d", u), "password": racePassword})
			if p.url.Path != "/login/totp" {
				t.Fatalf("racer%d: after the password: got %s, want /login/totp\n%s", u, p, p.body)
			}
			stop := *b.client
			stop.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			action, csrf := codeForm(t, p)
			rs = append(rs, &totpRacer{user: u, b: b, ar: ar, client: &stop, action: action, csrf: csrf})
		}
	}
	codes := make([]string, users)
	for u := range users {
		codes[u] = laterCode(t, keys[u], steps[u])
	}
	reqs := make([]*http.Request, len(rs))
	for i, r := range rs {
		form := url.Values{"csrf_token": {r.csrf}, "code": {codes[r.user]}}
		req, err := http.NewRequest(http.MethodPost, r.action, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		reqs[i] = req
	}
	together(len(rs), func(i int) {
		r := rs[i]
		resp, err := r.client.Do(reqs[i])
		if err != nil {
			r.err = err
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		r.status, r.loc, r.body, r.err = resp.StatusCode, resp.Header.Get("Location"), string(body), err
	})

	for u := range users {
		var winners []*totpRacer
		for _, r := range rs {
			if r.user != u {
				continue
			}
			switch {
			case r.err != nil:
				t.Errorf("racer%d: %v", u, r.err)
			case r.status == http.StatusSeeOther && strings.HasPrefix(r.loc, "/oauth2/auth?auth_request="):
				winners = append(winners, r)
			case r.status == http.StatusUnprocessableEntity && strings.Contains(r.body, "That code was already used"):
			default:
				t.Errorf("racer%d: got %d (Location %q), want 303 to /oauth2/auth or 422 with the code refused\n%s", u, r.status, r.loc, r.body)
			}
		}
		if len(winners) != 1 {
			t.Errorf("racer%d: %d of %d concurrent submissions of one code passed, want exactly 1", u, len(winners), perUser)
			continue
		}
		// The winner really is signed in: the authorization request now
		// yields a code.
		w := winners[0]
		if p := w.b.get(in.issuer + w.loc); !hasCode(t, p, w.ar) {
			t.Errorf("racer%d: winner after the code: got %s (Location %q), want a code", u, p, p.header.Get("Location"))
		}
	}
}

// codeForm returns where the code form on p posts, and its CSRF token.
func codeForm(t *testing.T, p page) (action, csrf string) {
	t.Helper()
	f := findForm(t, p.body, map[string]string{"code": ""})
	u, err := p.url.Parse(f.action)
	if err != nil {
		t.Fatalf("form action %q: %v", f.action, err)
	}
	if f.fields["csrf_token"] == "" {
		t.Fatalf("code form has no csrf_token:\n%s", p.body)
	}
	return u.String(), f.fields["csrf_token"]
}

// hasCode reports whether p redirected to the relying party with a code.
func hasCode(t *testing.T, p page, ar authRequest) bool {
	t.Helper()
	_, ok := codeFrom(t, p, ar)
	return ok
}
