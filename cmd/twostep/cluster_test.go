package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"golang.org/x/oauth2"

	"github.com/twostep/twostep/storage/storagetest"
)

// at returns u with its scheme and host replaced by those of base: the
// same request, sent to another instance.
func at(u *url.URL, base string) *url.URL {
	b, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	v := *u
	v.Scheme, v.Host = b.Scheme, b.Host
	return &v
}

// atString is at for a URL string.
func atString(t *testing.T, raw, base string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return at(u, base).String()
}

// jwksKeyIDs fetches an instance's JWKS and returns its key IDs, sorted.
func jwksKeyIDs(t *testing.T, base string) []string {
	t.Helper()
	res := doOAuth(http.DefaultClient, mustRequest(t, http.MethodGet, base+"/.well-known/jwks.json"))
	if res.err != nil || res.status != http.StatusOK {
		t.Fatalf("GET %s/.well-known/jwks.json: got %s", base, res)
	}
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(res.raw), &set); err != nil {
		t.Fatalf("jwks of %s: %v", base, err)
	}
	var ids []string
	for _, k := range set.Keys {
		ids = append(ids, k.KID)
	}
	slices.Sort(ids)
	return ids
}

func mustRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestTwoInstancesOneDatabase runs two `twostep serve` processes on one
// PostgreSQL database with one secret key and one issuer, and sends each
// step of the flows to a different instance: nothing an instance needs may
// live only in its memory.
//
// Not covered: that a key rotated by `twostep keys rotate` reaches the
// JWKS of running instances; they reread keys once a minute (keyRefresh),
// too long to wait for here.
func TestTwoInstancesOneDatabase(t *testing.T) {
	dsn := storagetest.PostgresDSN(t)
	a, baseA := startInstance(t, dsn, secretEnv, "")
	_, baseB := startInstance(t, dsn, secretEnv, a.issuer)
	hostA, hostB := strings.TrimPrefix(baseA, "http://"), strings.TrimPrefix(baseB, "http://")
	addUser(t, a, "alice", racePassword)
	rp := newRelyingParty(t, a)
	ctx := context.Background()
	c := http.DefaultClient

	// Both present one provider: one issuer, one key set.
	for _, base := range []string{baseA, baseB} {
		res := doOAuth(c, mustRequest(t, http.MethodGet, base+"/.well-known/openid-configuration"))
		if res.status != http.StatusOK || res.field("issuer") != a.issuer {
			t.Errorf("discovery on %s: got %s, want issuer %s", base, res, a.issuer)
		}
	}
	if ka, kb := jwksKeyIDs(t, baseA), jwksKeyIDs(t, baseB); len(ka) == 0 || !slices.Equal(ka, kb) {
		t.Errorf("JWKS key IDs: A has %v, B has %v; want the same, non-empty", ka, kb)
	}

	// First login: the password on A; the enrolment page comes from A,
	// which stores the pending secret; the code confirming it goes to B.
	br := newBrowser(t, testRedirect)
	ar := rp.newAuthRequest()
	p := br.submit(br.get(ar.url), map[string]string{"username": "alice", "password": racePassword})
	if p.url.Host != hostA || p.url.Path != "/login/totp" {
		t.Fatalf("after the password on A: got %s, want %s/login/totp", p, baseA)
	}
	key, err := otp.NewKeyFromURL(otpauthURI(p.body))
	if err != nil {
		t.Fatalf("enrolment page on A: %v\n%s", err, p.body)
	}
	now := time.Now()
	enrolStep := now.Unix() / 30
	p.url = at(p.url, baseB)
	p = br.submit(p, map[string]string{"code": codeAt(t, key, now)})
	_, p = br.recoveryCodes(p)
	if p.url.Host != hostB || p.url.Path != "/consent" {
		t.Fatalf("after the code on B: got %s (Location %q), want %s/consent\n%s", p, p.header.Get("Location"), baseB, p.body)
	}
	p = br.submit(p, map[string]string{"decision": "allow"})
	code, ok := codeFrom(t, p, ar)
	if !ok {
		t.Fatalf("after consent on B: got %s (Location %q), want a code", p, p.header.Get("Location"))
	}

	// The token exchange on A (the issuer's token endpoint, via x/oauth2).
	tok, err := rp.config.Exchange(ctx, code, oauth2.VerifierOption(ar.verifier))
	if err != nil {
		t.Fatalf("exchange on A: %v", err)
	}
	idToken := verifyIDToken(t, rp, tok, ar)

	// userinfo and introspection on B.
	info := getBearer(c, baseB+"/userinfo", tok.AccessToken)
	if info.status != http.StatusOK || info.field("sub") != idToken.Subject {
		t.Errorf("userinfo on B: got %s, want 200 with sub %q", info, idToken.Subject)
	}
	intro := postOAuth(c, baseB+"/oauth2/introspect", rp.config.ClientID, rp.config.ClientSecret, url.Values{"token": {tok.AccessToken}})
	if intro.status != http.StatusOK || intro.body["active"] != true || intro.field("sub") != idToken.Subject || intro.field("client_id") != rp.config.ClientID {
		t.Errorf("introspection on B: got %s, want active with sub %q and client_id %q", intro, idToken.Subject, rp.config.ClientID)
	}

	// The refresh token rotates on B; A then refuses the old one.
	refreshed := postOAuth(c, tokenURL(baseB), rp.config.ClientID, rp.config.ClientSecret, refreshGrant(tok.RefreshToken))
	if refreshed.status != http.StatusOK || refreshed.field("refresh_token") == "" {
		t.Errorf("refresh on B: got %s, want new tokens", refreshed)
	}
	if got := postOAuth(c, tokenURL(baseA), rp.config.ClientID, rp.config.ClientSecret, refreshGrant(tok.RefreshToken)); got.status != http.StatusBadRequest || got.field("error") != "invalid_grant" {
		t.Errorf("old refresh token on A after rotation on B: got %s, want 400 invalid_grant", got)
	}

	// Second login the other way round: the password on B, the code on A
	// (the secret B confirmed and sealed, A opens), the code exchanged on B.
	br2 := newBrowser(t, testRedirect)
	ar2 := rp.newAuthRequest()
	p = br2.submit(br2.get(atString(t, ar2.url, baseB)), map[string]string{"username": "alice", "password": racePassword})
	if p.url.Host != hostB || p.url.Path != "/login/totp" {
		t.Fatalf("second login, after the password on B: got %s, want %s/login/totp", p, baseB)
	}
	code2 := laterCode(t, key, enrolStep)
	p.url = at(p.url, baseA)
	p = br2.submit(p, map[string]string{"code": code2})
	c2, ok := codeFrom(t, p, ar2)
	if !ok {
		t.Fatalf("second login, after the code on A: got %s (Location %q), want a code (consent remembered)\n%s", p, p.header.Get("Location"), p.body)
	}
	tok2 := postOAuth(c, tokenURL(baseB), rp.config.ClientID, rp.config.ClientSecret, codeGrant(c2, ar2))
	if tok2.status != http.StatusOK {
		t.Fatalf("exchange on B: got %s, want tokens", tok2)
	}
	if _, err := rp.verifier.Verify(ctx, tok2.field("id_token")); err != nil {
		t.Errorf("id_token issued by B, verified with the keys discovered on A: %v", err)
	}

	// The replay guard is shared: the code A just accepted is refused on B.
	br3 := newBrowser(t, testRedirect)
	p = br3.submit(br3.get(rp.newAuthRequest().url), map[string]string{"username": "alice", "password": racePassword})
	if p.url.Path != "/login/totp" {
		t.Fatalf("third login, after the password on A: got %s, want /login/totp", p)
	}
	p.url = at(p.url, baseB)
	p = br3.submit(p, map[string]string{"code": code2})
	if p.url.Host != hostB || p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "That code was already used") {
		t.Errorf("code already used on A, replayed on B: got %s, want 422 with the code refused\n%s", p, p.body)
	}
}
