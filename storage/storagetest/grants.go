package storagetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
)

var grantTests = []test{
	{"Grants/SaveMergesCovers", testGrantSave},
	{"Grants/Delete", testGrantDelete},
}

func testGrantSave(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	if _, err := s.GetGrant(ctx, "id-alice", "client-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("get before save: got %v, want storage.ErrNotFound", err)
	}
	steps := []struct {
		save []string
		want []string
	}{
		{[]string{"openid", "profile"}, []string{"openid", "profile"}},
		{[]string{"profile", "email"}, []string{"openid", "profile", "email"}},
		{[]string{"openid"}, []string{"openid", "profile", "email"}},
		{nil, []string{"openid", "profile", "email"}},
	}
	for i, st := range steps {
		if err := s.SaveGrant(ctx, "id-alice", "client-1", st.save); err != nil {
			t.Fatalf("save %q: %v", st.save, err)
		}
		g, err := s.GetGrant(ctx, "id-alice", "client-1")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if !sameSet(g.Scopes, st.want) {
			t.Errorf("after saving %q: got scopes %q, want %q", st.save, g.Scopes, st.want)
		}
		if g.UserID != "id-alice" || g.ClientID != "client-1" {
			t.Errorf("got grant of %q for %q, want id-alice for client-1", g.UserID, g.ClientID)
		}
		if !sameTime(g.CreatedAt, t0) || !sameTime(g.UpdatedAt, clk.Now()) {
			t.Errorf("after save %d: got created %v, updated %v, want %v, %v", i, g.CreatedAt, g.UpdatedAt, t0, clk.Now())
		}
		clk.Add(time.Minute)
	}

	// Grants are per user and client.
	if err := s.SaveGrant(ctx, "id-bob", "client-1", []string{"openid"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveGrant(ctx, "id-alice", "client-2", []string{"email"}); err != nil {
		t.Fatal(err)
	}
	g, err := s.GetGrant(ctx, "id-alice", "client-1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		scopes []string
		want   bool
	}{
		{nil, true},
		{[]string{"openid"}, true},
		{[]string{"email", "openid"}, true},
		{[]string{"openid", "profile", "email"}, true},
		{[]string{"openid", "offline_access"}, false},
		{[]string{"address"}, false},
	}
	for _, tc := range tests {
		if got := g.Covers(tc.scopes); got != tc.want {
			t.Errorf("grant %q covers %q: got %v, want %v", g.Scopes, tc.scopes, got, tc.want)
		}
	}
	if g, err := s.GetGrant(ctx, "id-bob", "client-1"); err != nil || !sameSet(g.Scopes, []string{"openid"}) {
		t.Errorf("get bob's grant: got %q, %v, want [openid]", g.Scopes, err)
	}
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func testGrantDelete(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	for _, c := range []string{"client-1", "client-2"} {
		if err := s.SaveGrant(ctx, "id-alice", c, []string{"openid"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteGrant(ctx, "id-alice", "client-1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.GetGrant(ctx, "id-alice", "client-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("get after delete: got %v, want storage.ErrNotFound", err)
	}
	if err := s.DeleteGrant(ctx, "id-alice", "client-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("delete twice: got %v, want storage.ErrNotFound", err)
	}
	if _, err := s.GetGrant(ctx, "id-alice", "client-2"); err != nil {
		t.Errorf("get another grant: got %v, want nil", err)
	}
}
