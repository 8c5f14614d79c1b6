package storagetest

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/twostep/twostep/storage"
)

// parTests check the pushed authorization request storage (RFC 9126):
// fosite's PARStorage contract, expiry, and that a request_uri is used
// once.
var parTests = []test{
	{"PAR/CreateGetDelete", testPARCreateGetDelete},
	{"PAR/Expiry", testPARExpiry},
	{"PAR/SingleUse", testPARSingleUse},
	{"PAR/NoClientCredentials", testPARNoClientCredentials},
}

// testRequestURI is a request_uri as fosite makes them.
const testRequestURI = "urn:ietf:params:oauth:request_uri:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

// newPushedRequest builds a pushed authorization request as fosite's PAR
// handler stores it: the whole form, the authorization request's own
// fields, and a session whose PushedAuthorizeRequestContext expiry is in
// lifetime.
func newPushedRequest(clk *Clock, clientID string, lifetime time.Duration) *fosite.AuthorizeRequest {
	redirect := "https://" + clientID + ".example/callback"
	form := url.Values{
		"client_id":             {clientID},
		"redirect_uri":          {redirect},
		"response_type":         {"code"},
		"scope":                 {"openid profile"},
		"state":                 {"state-0123456789 ünïcode"},
		"nonce":                 {"nonce-0123456789"},
		"code_challenge":        {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
		"code_challenge_method": {"S256"},
		"prompt":                {"login consent"},
		"ui_locales":            {"fr"},
	}
	u, _ := url.Parse(redirect)
	session := &openid.DefaultSession{}
	session.SetExpiresAt(fosite.PushedAuthorizeRequestContext, clk.Now().Add(lifetime))
	return &fosite.AuthorizeRequest{
		ResponseTypes:        fosite.Arguments{"code"},
		RedirectURI:          u,
		State:                form.Get("state"),
		ResponseMode:         fosite.ResponseModeQuery,
		HandledResponseTypes: fosite.Arguments{},
		Request: fosite.Request{
			ID:                "request-par",
			RequestedAt:       clk.Now(),
			Client:            &storage.Client{ID: clientID},
			RequestedScope:    fosite.Arguments{"openid", "profile"},
			GrantedScope:      fosite.Arguments{},
			RequestedAudience: fosite.Arguments{},
			GrantedAudience:   fosite.Arguments{},
			Form:              form,
			Session:           session,
		},
	}
}

func testPARCreateGetDelete(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	if _, err := s.GetPARSession(ctx, testRequestURI); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("get before create: got %v, want fosite.ErrNotFound", err)
	}
	want := newPushedRequest(clk, "client-1", 5*time.Minute)
	if err := s.CreatePARSession(ctx, testRequestURI, want); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := s.GetPARSession(ctx, testRequestURI+"x"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("get another request_uri: got %v, want fosite.ErrNotFound", err)
	}
	got, err := s.GetPARSession(ctx, testRequestURI)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.GetID() != want.ID || got.GetClient() == nil || got.GetClient().GetID() != "client-1" {
		t.Errorf("got request %q of client %v, want %q of client-1", got.GetID(), got.GetClient(), want.ID)
	}
	if _, ok := got.GetClient().(*storage.Client); !ok {
		t.Errorf("got client %T, want the stored *storage.Client", got.GetClient())
	}
	if !sameTime(got.GetRequestedAt(), want.RequestedAt) {
		t.Errorf("got requested at %v, want %v in UTC", got.GetRequestedAt(), want.RequestedAt)
	}
	if !equalForms(got.GetRequestForm(), want.Form) {
		t.Errorf("got form %v, want %v", got.GetRequestForm(), want.Form)
	}
	if !slices.Equal(got.GetRequestedScopes(), want.RequestedScope) {
		t.Errorf("got requested scope %q, want %q", got.GetRequestedScopes(), want.RequestedScope)
	}
	if got.GetRedirectURI() == nil || got.GetRedirectURI().String() != want.RedirectURI.String() {
		t.Errorf("got redirect URI %v, want %v", got.GetRedirectURI(), want.RedirectURI)
	}
	if !slices.Equal(got.GetResponseTypes(), want.ResponseTypes) {
		t.Errorf("got response types %q, want %q", got.GetResponseTypes(), want.ResponseTypes)
	}
	if got.GetState() != want.State || got.GetResponseMode() != want.ResponseMode {
		t.Errorf("got state %q, response mode %q, want %q, %q", got.GetState(), got.GetResponseMode(), want.State, want.ResponseMode)
	}
	if sess, ok := got.GetSession().(*openid.DefaultSession); !ok {
		t.Errorf("got session %T, want *openid.DefaultSession", got.GetSession())
	} else if g, w := sess.GetExpiresAt(fosite.PushedAuthorizeRequestContext), want.Session.GetExpiresAt(fosite.PushedAuthorizeRequestContext); !sameTime(g, w) {
		t.Errorf("got expiry %v, want %v in UTC", g, w)
	}

	if err := s.DeletePARSession(ctx, testRequestURI); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if got, err := s.GetPARSession(ctx, testRequestURI); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("get after delete: got %v, %v, want fosite.ErrNotFound", got, err)
	}
	if err := s.DeletePARSession(ctx, testRequestURI); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("delete again: got %v, want fosite.ErrNotFound (the request_uri was used)", err)
	}
	// A pushed request is a kind of its own: it is never an authorization
	// code, and deleting a code of the same signature leaves it.
	if err := s.CreatePARSession(ctx, testRequestURI, want); err != nil {
		t.Fatalf("create again: %v", err)
	}
	if _, err := s.GetAuthorizeCodeSession(ctx, testRequestURI, newSession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("get the request_uri as a code: got %v, want fosite.ErrNotFound", err)
	}
	if err := s.DeleteAccessTokenSession(ctx, testRequestURI); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPARSession(ctx, testRequestURI); err != nil {
		t.Errorf("get after deleting an access token of the same signature: %v", err)
	}
	// Removing the client removes its pushed requests.
	if err := s.DeleteClient(ctx, "client-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPARSession(ctx, testRequestURI); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("get after the client was removed: got %v, want fosite.ErrNotFound", err)
	}
}

func testPARExpiry(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	if err := s.CreatePARSession(ctx, testRequestURI, newPushedRequest(clk, "client-1", time.Minute)); err != nil {
		t.Fatalf("create: %v", err)
	}
	// A session without an expiry gets a short one, not a token's.
	noExpiry := newPushedRequest(clk, "client-1", 0)
	noExpiry.Session = &openid.DefaultSession{}
	if err := s.CreatePARSession(ctx, testRequestURI+"-no-expiry", noExpiry); err != nil {
		t.Fatalf("create without expiry: %v", err)
	}
	clk.Add(time.Minute - time.Second)
	if _, err := s.GetPARSession(ctx, testRequestURI); err != nil {
		t.Errorf("get a second before the expiry: got %v, want the request", err)
	}
	clk.Add(time.Second)
	if _, err := s.GetPARSession(ctx, testRequestURI); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("get at the expiry: got %v, want fosite.ErrNotFound", err)
	}
	if _, err := s.GetPARSession(ctx, testRequestURI+"-no-expiry"); err != nil {
		t.Errorf("get the request without expiry after a minute: got %v, want the request", err)
	}
	clk.Add(time.Hour)
	if _, err := s.GetPARSession(ctx, testRequestURI+"-no-expiry"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("get the request without expiry after an hour: got %v, want fosite.ErrNotFound", err)
	}
	n, err := s.DeleteExpired(ctx, time.Hour)
	if err != nil || n != 2 {
		t.Errorf("delete expired: got %d, %v, want the 2 pushed requests", n, err)
	}
}

// testPARSingleUse: of concurrent consumers of one request_uri, exactly
// one deletes it.
func testPARSingleUse(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	if err := s.CreatePARSession(ctx, testRequestURI, newPushedRequest(clk, "client-1", time.Minute)); err != nil {
		t.Fatalf("create: %v", err)
	}
	const consumers = 8
	var wg sync.WaitGroup
	errs := make(chan error, consumers)
	for range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.DeletePARSession(ctx, testRequestURI)
		}()
	}
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, fosite.ErrNotFound):
			t.Errorf("a losing consumer: got %v, want fosite.ErrNotFound", err)
		}
	}
	if won != 1 {
		t.Errorf("%d consumers deleted the request_uri, want exactly 1", won)
	}
}

// testPARNoClientCredentials: a client that authenticated with
// client_secret_post pushes its secret in the form; it is not stored.
func testPARNoClientCredentials(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	req := newPushedRequest(clk, "client-1", time.Minute)
	const secret = "secret-of-client-1-not-to-be-stored"
	req.Form.Set("client_secret", secret)
	req.Form.Set("client_assertion", "assertion-not-to-be-stored")
	req.Form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	if err := s.CreatePARSession(ctx, testRequestURI, req); err != nil {
		t.Fatalf("create: %v", err)
	}
	got, err := s.GetPARSession(ctx, testRequestURI)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	for _, k := range []string{"client_secret", "client_assertion", "client_assertion_type"} {
		if got.GetRequestForm().Has(k) {
			t.Errorf("got form with %s, want it dropped", k)
		}
	}
	if got.GetRequestForm().Get("code_challenge") == "" {
		t.Errorf("got form %v, want the rest kept", got.GetRequestForm())
	}
	var raw string
	query := rebind(s, `SELECT request FROM oauth2_sessions WHERE client_id = ?`)
	if err := s.DB().QueryRowContext(ctx, query, "client-1").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, secret) || strings.Contains(raw, "assertion-not-to-be-stored") {
		t.Errorf("the stored pushed request holds the client's credentials: %s", raw)
	}
	if !req.Form.Has("client_secret") {
		t.Error("CreatePARSession changed the caller's form")
	}
}

// equalForms compares forms regardless of nil versus empty value lists.
func equalForms(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
