package login

import (
	"strings"
	"testing"
)

func TestHasherRoundTrip(t *testing.T) {
	h := NewHasher(DefaultParams())
	encoded, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if want := "$argon2id$v=19$m=19456,t=2,p=1$"; !strings.HasPrefix(encoded, want) {
		t.Errorf("got %q, want prefix %q", encoded, want)
	}
	for _, tc := range []struct {
		password string
		want     bool
	}{
		{"correct horse battery staple", true},
		{"correct horse battery stapl", false},
		{"Correct horse battery staple", false},
		{"", false},
	} {
		t.Run(tc.password, func(t *testing.T) {
			got, err := h.Verify(encoded, tc.password)
			if err != nil || got != tc.want {
				t.Errorf("got %v, %v; want %v, nil", got, err, tc.want)
			}
		})
	}
	again, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if again == encoded {
		t.Errorf("two hashes of one password are equal; want distinct salts")
	}
}

func TestHasherVerifiesOtherParams(t *testing.T) {
	cheap := NewHasher(Params{Memory: 64, Time: 3, Threads: 2, SaltLength: 8, KeyLength: 16})
	encoded, err := cheap.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	if want := "$argon2id$v=19$m=64,t=3,p=2$"; !strings.HasPrefix(encoded, want) {
		t.Errorf("got %q, want prefix %q", encoded, want)
	}
	ok, err := NewHasher(DefaultParams()).Verify(encoded, "pw")
	if err != nil || !ok {
		t.Errorf("default hasher verifying a cheap hash: got %v, %v; want true, nil", ok, err)
	}
}

func TestHasherRejectsMalformed(t *testing.T) {
	h := NewHasher(testParams)
	good, err := h.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	join := func(p ...string) string { return strings.Join(p, "$") }
	for _, tc := range []struct {
		name, encoded string
	}{
		{"empty", ""},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", join("", "argon2i", parts[2], parts[3], parts[4], parts[5])},
		{"old version", join("", "argon2id", "v=16", parts[3], parts[4], parts[5])},
		{"missing part", join("", "argon2id", parts[2], parts[3], parts[4])},
		{"parameters out of order", join("", "argon2id", parts[2], "t=1,m=64,p=1", parts[4], parts[5])},
		{"zero time", join("", "argon2id", parts[2], "m=64,t=0,p=1", parts[4], parts[5])},
		{"huge memory", join("", "argon2id", parts[2], "m=4194304,t=1,p=1", parts[4], parts[5])},
		{"bad salt", join("", "argon2id", parts[2], parts[3], "!!!", parts[5])},
		{"short hash", join("", "argon2id", parts[2], parts[3], parts[4], "AAAA")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := h.Verify(tc.encoded, "pw")
			if err == nil || ok {
				t.Errorf("got %v, %v; want false and an error", ok, err)
			}
		})
	}
}

func BenchmarkHash(b *testing.B) {
	h := NewHasher(DefaultParams())
	for b.Loop() {
		if _, err := h.Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
