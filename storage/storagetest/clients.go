package storagetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/twostep/twostep/storage"
)

var clientTests = []test{
	{"Clients/CreateGetList", testClientCreateGetList},
	{"Clients/Duplicate", testClientDuplicate},
	{"Clients/Delete", testClientDelete},
	{"Clients/Update", testClientUpdate},
	{"Clients/SecretHasher", testSecretHasher},
}

// checkClient compares a stored client with what was created; created is
// when.
func checkClient(t *testing.T, got, want *storage.Client, created time.Time) {
	t.Helper()
	if got.ID != want.ID || !bytes.Equal(got.SecretHash, want.SecretHash) || got.Name != want.Name ||
		got.Public != want.Public || got.RequirePKCE != want.RequirePKCE || got.SkipConsent != want.SkipConsent {
		t.Errorf("got client %+v, want %+v", got, want)
	}
	for _, f := range []struct {
		name      string
		got, want []string
	}{
		{"redirect URIs", got.RedirectURIs, want.RedirectURIs},
		{"post-logout redirect URIs", got.PostLogoutRedirectURIs, want.PostLogoutRedirectURIs},
		{"grant types", got.GrantTypes, want.GrantTypes},
		{"response types", got.ResponseTypes, want.ResponseTypes},
		{"scopes", got.Scopes, want.Scopes},
	} {
		if !slices.Equal(f.got, f.want) {
			t.Errorf("client %q: got %s %q, want %q", want.ID, f.name, f.got, f.want)
		}
	}
	if !sameTime(got.CreatedAt, created) {
		t.Errorf("client %q: got created at %v, want %v in UTC", want.ID, got.CreatedAt, created)
	}
}

func testClientCreateGetList(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	if got, err := s.ListClients(ctx); err != nil || len(got) != 0 {
		t.Fatalf("list clients of an empty store: got %v, %v, want none", got, err)
	}
	hash, _ := storage.SecretHasher{}.Hash(ctx, []byte("s3cret"))
	tests := []struct {
		name    string
		client  storage.Client
		created time.Time // zero: the store's clock
	}{
		{"confidential", storage.Client{
			ID:                     "web",
			SecretHash:             hash,
			Name:                   "Web app",
			RedirectURIs:           []string{"https://app.example/cb", "https://app.example/cb2?x=1&y=\"2\""},
			PostLogoutRedirectURIs: []string{"https://app.example/bye"},
			GrantTypes:             []string{"authorization_code", "refresh_token"},
			ResponseTypes:          []string{"code"},
			Scopes:                 []string{"openid", "profile", "email", "offline_access"},
			RequirePKCE:            true,
			SkipConsent:            true,
		}, time.Time{}},
		{"public, empty lists", storage.Client{
			ID:     "cli",
			Public: true,
		}, t0.Add(-48 * time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client
			c.CreatedAt = tc.created
			if err := s.CreateClient(ctx, &c); err != nil {
				t.Fatalf("create: %v", err)
			}
			created := tc.created
			if created.IsZero() {
				created = clk.Now()
			}
			got, err := s.Client(ctx, c.ID)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			checkClient(t, got, &tc.client, created)
		})
	}
	got, err := s.ListClients(ctx)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var ids []string
	for _, c := range got {
		ids = append(ids, c.ID)
	}
	if want := []string{"cli", "web"}; !slices.Equal(ids, want) {
		t.Fatalf("got clients %q, want %q in ID order", ids, want)
	}
	checkClient(t, got[1], &tests[0].client, clk.Now())
}

func testClientDuplicate(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	err := s.CreateClient(ctx, &storage.Client{ID: "client-1", Name: "Impostor", Public: true})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("create a client with a taken ID: got %v, want storage.ErrAlreadyExists", err)
	}
	if c, err := s.Client(ctx, "client-1"); err != nil || c.Name != "Client client-1" {
		t.Errorf("get client after the failed create: got %+v, %v, want the first", c, err)
	}
}

func testClientDelete(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createUser(t, s, "id-alice", "alice")
	for _, id := range []string{"client-1", "client-2"} {
		createClient(t, s, id)
		if err := s.SaveGrant(ctx, "id-alice", id, []string{"openid"}); err != nil {
			t.Fatal(err)
		}
		req := newRequest(clk, id, "request-"+id, "id-alice")
		if err := s.CreateAccessTokenSession(ctx, "access-"+id, req); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRefreshTokenSession(ctx, "refresh-"+id, "access-"+id, req); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAuthRequest(ctx, storage.AuthRequest{
			ID: "auth-" + id, ClientID: id, RequestedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour),
		}); err != nil {
			t.Fatal(err)
		}
	}

	if err := s.DeleteClient(ctx, "client-1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	tests := []struct {
		name    string
		op      func(client string) error
		wantErr error // for the deleted client; the other one must still be there
	}{
		{"client", func(c string) error { _, err := s.Client(ctx, c); return err }, storage.ErrNotFound},
		{"fosite client", func(c string) error { _, err := s.GetClient(ctx, c); return err }, fosite.ErrNotFound},
		{"grant", func(c string) error { _, err := s.GetGrant(ctx, "id-alice", c); return err }, storage.ErrNotFound},
		{"auth request", func(c string) error { _, err := s.GetAuthRequest(ctx, "auth-"+c); return err }, storage.ErrNotFound},
		{"access token", func(c string) error {
			_, err := s.GetAccessTokenSession(ctx, "access-"+c, newSession())
			return err
		}, fosite.ErrNotFound},
		{"refresh token", func(c string) error {
			_, err := s.GetRefreshTokenSession(ctx, "refresh-"+c, newSession())
			return err
		}, fosite.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.op("client-1"); !errors.Is(err, tc.wantErr) {
				t.Errorf("deleted client: got %v, want %v", err, tc.wantErr)
			}
			if err := tc.op("client-2"); err != nil {
				t.Errorf("other client: got %v, want nil", err)
			}
		})
	}
	if err := s.DeleteClient(ctx, "client-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("delete twice: got %v, want storage.ErrNotFound", err)
	}
	if got, err := s.ListClients(ctx); err != nil || len(got) != 1 || got[0].ID != "client-2" {
		t.Errorf("list clients after delete: got %v, %v, want client-2 only", got, err)
	}
}

func testClientUpdate(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	createClient(t, s, "client-2")
	created := clk.Now()
	clk.Add(time.Hour)
	c, err := s.Client(ctx, "client-1")
	if err != nil {
		t.Fatal(err)
	}
	c.Name = "Renamed"
	c.RedirectURIs = []string{"https://new.example/cb"}
	c.PostLogoutRedirectURIs = []string{"https://new.example/bye"}
	c.SkipConsent, c.RequirePAR = !c.SkipConsent, !c.RequirePAR
	c.IDTokenAlg, c.BackchannelLogoutURI = "ES256", "https://new.example/logout"
	if err := s.UpdateClient(ctx, c); err != nil {
		t.Fatalf("update: %v", err)
	}
	got, err := s.Client(ctx, "client-1")
	if err != nil {
		t.Fatal(err)
	}
	checkClient(t, got, c, created)
	if got.RequirePAR != c.RequirePAR || got.IDTokenAlg != "ES256" || got.BackchannelLogoutURI != c.BackchannelLogoutURI {
		t.Errorf("got PAR %t, alg %q, back-channel URI %q, want %t, ES256, %q",
			got.RequirePAR, got.IDTokenAlg, got.BackchannelLogoutURI, c.RequirePAR, c.BackchannelLogoutURI)
	}
	if other, err := s.Client(ctx, "client-2"); err != nil || other.Name != "Client client-2" {
		t.Errorf("other client after the update: got %+v, %v, want it unchanged", other, err)
	}
	if err := s.UpdateClient(ctx, &storage.Client{ID: "nobody"}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("update an unknown client: got %v, want storage.ErrNotFound", err)
	}
}

func testSecretHasher(t *testing.T, _ *storage.Store, _ *Clock) {
	ctx := context.Background()
	var h storage.SecretHasher
	hash, err := h.Hash(ctx, []byte("correct horse"))
	if err != nil {
		t.Fatalf("hash: %v", err)
	}
	if again, _ := h.Hash(ctx, []byte("correct horse")); !bytes.Equal(again, hash) {
		t.Errorf("hash is not deterministic: got %x, then %x", hash, again)
	}
	tests := []struct {
		name    string
		hash    []byte
		secret  string
		wantErr bool
	}{
		{"right secret", hash, "correct horse", false},
		{"wrong secret", hash, "correct horsf", true},
		{"empty secret", hash, "", true},
		{"no hash (public client)", nil, "correct horse", true},
		{"truncated hash", hash[:16], "correct horse", true},
		{"the secret itself as hash", []byte("correct horse"), "correct horse", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := h.Compare(ctx, tc.hash, []byte(tc.secret))
			if (err != nil) != tc.wantErr {
				t.Errorf("got %v, want error %v", err, tc.wantErr)
			}
		})
	}
}
