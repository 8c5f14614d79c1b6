package storagetest

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/twostep/twostep/storage"
)

// fositeTests check the contracts fosite relies on: what its handlers do
// with each error is decided by errors.Is on these sentinels.
var fositeTests = []test{
	{"Fosite/GetClient", testGetClient},
	{"Fosite/CreateGetDelete", testFositeCreateGetDelete},
	{"Fosite/AuthorizeCode", testAuthorizeCode},
	{"Fosite/KindsAreSeparate", testFositeKindsAreSeparate},
	{"Fosite/RotateRefreshToken", testRotateRefreshToken},
	{"Fosite/RevokeByRequestID", testRevokeByRequestID},
}

// createClient stores a confidential client with the given ID.
func createClient(t *testing.T, s *storage.Store, id string) *storage.Client {
	t.Helper()
	hash, _ := storage.SecretHasher{}.Hash(context.Background(), []byte("secret-of-"+id))
	c := &storage.Client{
		ID:            id,
		SecretHash:    hash,
		Name:          "Client " + id,
		RedirectURIs:  []string{"https://" + id + ".example/callback"},
		GrantTypes:    []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"},
		Scopes:        []string{"openid", "profile", "email", "offline_access"},
	}
	if err := s.CreateClient(context.Background(), c); err != nil {
		t.Fatalf("create client %q: %v", id, err)
	}
	return c
}

// newRequest builds the kind of request fosite stores: an OpenID Connect
// session with claims and expiries, times in UTC with nanoseconds.
func newRequest(clk *Clock, clientID, requestID, subject string) *fosite.Request {
	now := clk.Now()
	return &fosite.Request{
		ID:                requestID,
		RequestedAt:       now,
		Client:            &storage.Client{ID: clientID},
		RequestedScope:    fosite.Arguments{"openid", "profile", "offline_access"},
		GrantedScope:      fosite.Arguments{"openid", "offline_access"},
		RequestedAudience: fosite.Arguments{},
		GrantedAudience:   fosite.Arguments{},
		Form: url.Values{
			"redirect_uri":  {"https://" + clientID + ".example/callback"},
			"scope":         {"openid profile offline_access"},
			"state":         {"xyz&=? ünïcode"},
			"response_type": {"code"},
		},
		Session: &openid.DefaultSession{
			Claims: &jwt.IDTokenClaims{
				Subject:                         subject,
				Nonce:                           "n-0S6_WzA2Mj",
				RequestedAt:                     now,
				AuthTime:                        now.Add(-90*time.Second - 987*time.Nanosecond),
				AuthenticationMethodsReferences: []string{"pwd", "otp"},
				Extra:                           map[string]any{"sid": "session-1", "email_verified": true, "n": float64(42)},
			},
			Headers: &jwt.Headers{Extra: map[string]any{"kid": "key-1"}},
			ExpiresAt: map[fosite.TokenType]time.Time{
				fosite.AuthorizeCode: now.Add(10 * time.Minute),
				fosite.AccessToken:   now.Add(time.Hour),
				fosite.RefreshToken:  now.Add(30 * 24 * time.Hour),
			},
			Username: "user-" + subject,
			Subject:  subject,
		},
	}
}

// newSession is the empty session fosite hands to the Get methods.
func newSession() *openid.DefaultSession {
	return &openid.DefaultSession{Claims: &jwt.IDTokenClaims{}, Headers: &jwt.Headers{}}
}

// checkRequest compares what a Get method returned with what was stored.
func checkRequest(t *testing.T, got fosite.Requester, want *fosite.Request) {
	t.Helper()
	if got == nil {
		t.Fatalf("got nil request, want request %q", want.ID)
	}
	if got.GetID() != want.ID {
		t.Errorf("got request ID %q, want %q", got.GetID(), want.ID)
	}
	if got.GetClient() == nil || got.GetClient().GetID() != want.Client.GetID() {
		t.Errorf("got client %v, want %q", got.GetClient(), want.Client.GetID())
	}
	if !sameTime(got.GetRequestedAt(), want.RequestedAt) {
		t.Errorf("got requested at %v, want %v in UTC", got.GetRequestedAt(), want.RequestedAt)
	}
	for _, f := range []struct {
		name      string
		got, want []string
	}{
		{"requested scope", got.GetRequestedScopes(), want.RequestedScope},
		{"granted scope", got.GetGrantedScopes(), want.GrantedScope},
		{"requested audience", got.GetRequestedAudience(), want.RequestedAudience},
		{"granted audience", got.GetGrantedAudience(), want.GrantedAudience},
	} {
		if !slices.Equal(f.got, f.want) {
			t.Errorf("got %s %q, want %q", f.name, f.got, f.want)
		}
	}
	if !reflect.DeepEqual(got.GetRequestForm(), want.Form) {
		t.Errorf("got form %v, want %v", got.GetRequestForm(), want.Form)
	}
	gs, ok := got.GetSession().(*openid.DefaultSession)
	if !ok {
		t.Fatalf("got session %T, want *openid.DefaultSession", got.GetSession())
	}
	ws := want.Session.(*openid.DefaultSession)
	if gs.Subject != ws.Subject || gs.Username != ws.Username {
		t.Errorf("got subject %q, username %q, want %q, %q", gs.Subject, gs.Username, ws.Subject, ws.Username)
	}
	if gs.Claims == nil {
		t.Fatal("got nil ID token claims")
	}
	gc, wc := gs.Claims, ws.Claims
	if gc.Subject != wc.Subject || gc.Nonce != wc.Nonce {
		t.Errorf("got claims subject %q, nonce %q, want %q, %q", gc.Subject, gc.Nonce, wc.Subject, wc.Nonce)
	}
	if !sameTime(gc.AuthTime, wc.AuthTime) {
		t.Errorf("got auth_time %v, want %v in UTC", gc.AuthTime, wc.AuthTime)
	}
	if !sameTime(gc.RequestedAt, wc.RequestedAt) {
		t.Errorf("got rat %v, want %v in UTC", gc.RequestedAt, wc.RequestedAt)
	}
	if !slices.Equal(gc.AuthenticationMethodsReferences, wc.AuthenticationMethodsReferences) {
		t.Errorf("got amr %q, want %q", gc.AuthenticationMethodsReferences, wc.AuthenticationMethodsReferences)
	}
	if !reflect.DeepEqual(gc.Extra, wc.Extra) {
		t.Errorf("got extra claims %v, want %v", gc.Extra, wc.Extra)
	}
	if gs.Headers == nil || !reflect.DeepEqual(gs.Headers.Extra, ws.Headers.Extra) {
		t.Errorf("got headers %+v, want %+v", gs.Headers, ws.Headers)
	}
	for _, tt := range []fosite.TokenType{fosite.AuthorizeCode, fosite.AccessToken, fosite.RefreshToken} {
		if g, w := gs.GetExpiresAt(tt), ws.ExpiresAt[tt]; !sameTime(g, w) {
			t.Errorf("got %s expiry %v, want %v in UTC", tt, g, w)
		}
	}
}

func testGetClient(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	want := createClient(t, s, "client-1")
	tests := []struct {
		name    string
		id      string
		wantErr error
	}{
		{"known", "client-1", nil},
		{"unknown", "client-2", fosite.ErrNotFound},
		{"empty", "", fosite.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.GetClient(ctx, tc.id)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if got != nil {
					t.Errorf("got client %v with error, want nil", got)
				}
				return
			}
			if got.GetID() != want.ID || !slices.Equal(got.GetRedirectURIs(), want.RedirectURIs) ||
				!slices.Equal(got.GetGrantTypes(), want.GrantTypes) || !slices.Equal(got.GetResponseTypes(), want.ResponseTypes) ||
				!slices.Equal(got.GetScopes(), want.Scopes) || string(got.GetHashedSecret()) != string(want.SecretHash) ||
				got.IsPublic() != want.Public {
				t.Errorf("got client %+v, want %+v", got, want)
			}
			if err := (storage.SecretHasher{}).Compare(ctx, got.GetHashedSecret(), []byte("secret-of-client-1")); err != nil {
				t.Errorf("compare the client's secret with its stored hash: got %v, want nil", err)
			}
		})
	}
}

// fositeKind is one of the create/get/delete families of fosite's storage.
type fositeKind struct {
	name   string
	create func(ctx context.Context, signature string, req fosite.Requester) error
	get    func(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error)
	delete func(ctx context.Context, signature string) error
}

func fositeKinds(s *storage.Store) []fositeKind {
	return []fositeKind{
		{"access token", s.CreateAccessTokenSession, s.GetAccessTokenSession, s.DeleteAccessTokenSession},
		{
			"refresh token",
			func(ctx context.Context, sig string, req fosite.Requester) error {
				return s.CreateRefreshTokenSession(ctx, sig, "access-signature", req)
			},
			s.GetRefreshTokenSession, s.DeleteRefreshTokenSession,
		},
		{"pkce", s.CreatePKCERequestSession, s.GetPKCERequestSession, s.DeletePKCERequestSession},
		{
			"openid connect",
			s.CreateOpenIDConnectSession,
			func(ctx context.Context, code string, session fosite.Session) (fosite.Requester, error) {
				return s.GetOpenIDConnectSession(ctx, code, &fosite.Request{Session: session})
			},
			s.DeleteOpenIDConnectSession,
		},
	}
}

func testFositeCreateGetDelete(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	for _, k := range fositeKinds(s) {
		t.Run(k.name, func(t *testing.T) {
			sig := "signature-" + k.name
			if _, err := k.get(ctx, sig, newSession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Fatalf("get before create: got %v, want fosite.ErrNotFound", err)
			}
			want := newRequest(clk, "client-1", "request-"+k.name, "user-1")
			if err := k.create(ctx, sig, want); err != nil {
				t.Fatalf("create: %v", err)
			}
			got, err := k.get(ctx, sig, newSession())
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			checkRequest(t, got, want)
			if err := k.delete(ctx, sig); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if got, err := k.get(ctx, sig, newSession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("get after delete: got %v, %v, want fosite.ErrNotFound", got, err)
			}
			// fosite deletes tokens it may already have deleted (refresh
			// token reuse), so a missing one is not an error.
			if err := k.delete(ctx, sig); err != nil {
				t.Errorf("delete again: got %v, want nil", err)
			}
		})
	}
}

func testAuthorizeCode(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	if _, err := s.GetAuthorizeCodeSession(ctx, "unknown", newSession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("get unknown code: got %v, want fosite.ErrNotFound", err)
	}
	want := newRequest(clk, "client-1", "request-1", "user-1")
	if err := s.CreateAuthorizeCodeSession(ctx, "code-1", want); err != nil {
		t.Fatalf("create code: %v", err)
	}
	got, err := s.GetAuthorizeCodeSession(ctx, "code-1", newSession())
	if err != nil {
		t.Fatalf("get code: %v", err)
	}
	checkRequest(t, got, want)

	if err := s.InvalidateAuthorizeCodeSession(ctx, "code-1"); err != nil {
		t.Fatalf("invalidate code: %v", err)
	}
	// fosite needs the request of a replayed code to revoke what the code
	// was exchanged for (RFC 6749 §4.1.2).
	got, err = s.GetAuthorizeCodeSession(ctx, "code-1", newSession())
	if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Errorf("get invalidated code: got error %v, want fosite.ErrInvalidatedAuthorizeCode", err)
	}
	checkRequest(t, got, want)
	if err := s.InvalidateAuthorizeCodeSession(ctx, "code-1"); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Errorf("invalidate twice: got %v, want fosite.ErrInvalidatedAuthorizeCode", err)
	}
}

// testFositeKindsAreSeparate stores the same signature as every kind: each
// Get must find its own row, and deleting one must leave the others.
func testFositeKindsAreSeparate(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	const sig = "same-signature"
	if err := s.CreateAuthorizeCodeSession(ctx, sig, newRequest(clk, "client-1", "request-code", "user-1")); err != nil {
		t.Fatalf("create code: %v", err)
	}
	kinds := fositeKinds(s)
	for _, k := range kinds {
		if err := k.create(ctx, sig, newRequest(clk, "client-1", "request-"+k.name, "user-1")); err != nil {
			t.Fatalf("create %s: %v", k.name, err)
		}
	}
	for i, k := range kinds {
		if err := k.delete(ctx, sig); err != nil {
			t.Fatalf("delete %s: %v", k.name, err)
		}
		for _, other := range kinds[i+1:] {
			got, err := other.get(ctx, sig, newSession())
			if err != nil {
				t.Fatalf("after deleting the %s: get %s: %v", k.name, other.name, err)
			}
			if want := "request-" + other.name; got.GetID() != want {
				t.Errorf("get %s: got request %q, want %q", other.name, got.GetID(), want)
			}
		}
	}
	got, err := s.GetAuthorizeCodeSession(ctx, sig, newSession())
	if err != nil || got.GetID() != "request-code" {
		t.Errorf("get code after deleting the other kinds: got %v, %v, want request-code", got, err)
	}
}

func testRotateRefreshToken(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	want := newRequest(clk, "client-1", "request-1", "user-1")
	other := newRequest(clk, "client-1", "request-2", "user-1")
	for _, c := range []struct {
		create func(context.Context, string, fosite.Requester) error
		sig    string
		req    fosite.Requester
	}{
		{s.CreateAccessTokenSession, "access-1", want},
		{s.CreateAccessTokenSession, "access-1b", want},
		{func(ctx context.Context, sig string, r fosite.Requester) error {
			return s.CreateRefreshTokenSession(ctx, sig, "access-1", r)
		}, "refresh-1", want},
		{s.CreateAccessTokenSession, "access-2", other},
	} {
		if err := c.create(ctx, c.sig, c.req); err != nil {
			t.Fatalf("create %s: %v", c.sig, err)
		}
	}

	if err := s.RotateRefreshToken(ctx, "request-1", "refresh-1"); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	// A rotated token presented again is reuse (RFC 6819 §5.2.2.3): fosite
	// needs its request to revoke the family.
	got, err := s.GetRefreshTokenSession(ctx, "refresh-1", newSession())
	if !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("get rotated token: got error %v, want fosite.ErrInactiveToken", err)
	}
	checkRequest(t, got, want)
	if err := s.RotateRefreshToken(ctx, "request-1", "refresh-1"); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("rotate twice: got %v, want fosite.ErrInactiveToken", err)
	}
	for _, sig := range []string{"access-1", "access-1b"} {
		if _, err := s.GetAccessTokenSession(ctx, sig, newSession()); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("get %s of the rotated request: got %v, want fosite.ErrNotFound", sig, err)
		}
	}
	if _, err := s.GetAccessTokenSession(ctx, "access-2", newSession()); err != nil {
		t.Errorf("get access token of another request: got %v, want nil", err)
	}
	// fosite stores the new pair under the same request ID.
	if err := s.CreateRefreshTokenSession(ctx, "refresh-1-next", "access-1-next", want); err != nil {
		t.Fatalf("create next refresh token: %v", err)
	}
	if _, err := s.GetRefreshTokenSession(ctx, "refresh-1-next", newSession()); err != nil {
		t.Errorf("get next refresh token: got %v, want nil", err)
	}
	if err := s.RotateRefreshToken(ctx, "request-1", "unknown"); err == nil {
		t.Error("rotate unknown token: got nil, want an error")
	}
}

func testRevokeByRequestID(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	for _, id := range []string{"request-1", "request-2"} {
		req := newRequest(clk, "client-1", id, "user-1")
		for _, sig := range []string{"a", "b"} {
			if err := s.CreateAccessTokenSession(ctx, "access-"+sig+"-"+id, req); err != nil {
				t.Fatalf("create access token: %v", err)
			}
			if err := s.CreateRefreshTokenSession(ctx, "refresh-"+sig+"-"+id, "access-"+sig+"-"+id, req); err != nil {
				t.Fatalf("create refresh token: %v", err)
			}
		}
	}
	if err := s.RevokeRefreshToken(ctx, "request-1"); err != nil {
		t.Fatalf("revoke refresh tokens: %v", err)
	}
	if err := s.RevokeAccessToken(ctx, "request-1"); err != nil {
		t.Fatalf("revoke access tokens: %v", err)
	}
	for _, tc := range []struct {
		sig     string
		get     func(context.Context, string, fosite.Session) (fosite.Requester, error)
		wantErr error
		wantID  string // the request returned, even with an error; "" for none
	}{
		{"refresh-a-request-1", s.GetRefreshTokenSession, fosite.ErrInactiveToken, "request-1"},
		{"refresh-b-request-1", s.GetRefreshTokenSession, fosite.ErrInactiveToken, "request-1"},
		{"access-a-request-1", s.GetAccessTokenSession, fosite.ErrNotFound, ""},
		{"access-b-request-1", s.GetAccessTokenSession, fosite.ErrNotFound, ""},
		{"refresh-a-request-2", s.GetRefreshTokenSession, nil, "request-2"},
		{"access-a-request-2", s.GetAccessTokenSession, nil, "request-2"},
	} {
		got, err := tc.get(ctx, tc.sig, newSession())
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("get %s: got error %v, want %v", tc.sig, err, tc.wantErr)
			continue
		}
		if tc.wantID != "" && (got == nil || got.GetID() != tc.wantID) {
			t.Errorf("get %s: got request %v, want request %q", tc.sig, got, tc.wantID)
		}
	}
	for _, id := range []string{"request-1", "unknown"} {
		if err := s.RevokeRefreshToken(ctx, id); err != nil {
			t.Errorf("revoke refresh tokens of %s again: got %v, want nil", id, err)
		}
		if err := s.RevokeAccessToken(ctx, id); err != nil {
			t.Errorf("revoke access tokens of %s again: got %v, want nil", id, err)
		}
	}
}
