package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite/token/jwt"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/storage/storagetest"
)

// testRetention is how long a rotated-out key stays published in these
// tests.
const testRetention = 24 * time.Hour

// newKeySet returns a key set over a fresh store, and the clock both read.
func newKeySet(t *testing.T) (*KeySet, *storage.Store, *storagetest.Clock) {
	t.Helper()
	clock := newFakeClock()
	store := storagetest.New(t, storagetest.SQLiteDSN(t), clock.Now)
	ks, err := NewKeySet(context.Background(), store, testRetention, clock.Now)
	if err != nil {
		t.Fatalf("NewKeySet: %v", err)
	}
	return ks, store, clock
}

// jwks decodes the key set's published document.
func jwks(t *testing.T, ks *KeySet) jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(ks.JWKS(context.Background()), &set); err != nil {
		t.Fatalf("decode JWKS: %v", err)
	}
	return set
}

// kids returns the key IDs of a set, sorted: the order of a JWKS carries
// no meaning (keys created in the same instant come in any order).
func kids(set jose.JSONWebKeySet) []string {
	var ids []string
	for _, k := range set.Keys {
		ids = append(ids, k.KeyID)
	}
	slices.Sort(ids)
	return ids
}

// sorted returns ids sorted, to compare with kids.
func sorted(ids ...string) []string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

// sign signs a short-lived token for sub with the key set's current key.
func sign(t *testing.T, ks *KeySet, sub string) string {
	t.Helper()
	now := time.Now()
	raw, _, err := ks.Generate(context.Background(), jwt.MapClaims{
		"iss": testIssuer, "sub": sub, "aud": []string{appID},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}, &jwt.Headers{})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return raw
}

// jwtHeader decodes the (unverified) header of a compact JWT.
func jwtHeader(t *testing.T, raw string) map[string]any {
	t.Helper()
	part, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatalf("header of %q: %v", raw, err)
	}
	h := map[string]any{}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("header of %q: %v", raw, err)
	}
	return h
}

// jwtClaims decodes the (unverified) payload of a compact JWT.
func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a compact JWT", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("payload of %q: %v", raw, err)
	}
	c := map[string]any{}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("payload of %q: %v", raw, err)
	}
	return c
}

func TestKeySetFirstKey(t *testing.T) {
	ctx := context.Background()
	ks, store, clock := newKeySet(t)

	stored, err := store.ListSigningKeys(ctx, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 {
		t.Fatalf("after NewKeySet on an empty database: got %d keys, want 1", len(stored))
	}
	if stored[0].Algorithm != "RS256" || !stored[0].RetiredAt.IsZero() {
		t.Errorf("first key: got algorithm %q retired at %v, want RS256, not retired", stored[0].Algorithm, stored[0].RetiredAt)
	}

	set := jwks(t, ks)
	if got := kids(set); !slices.Equal(got, []string{stored[0].ID}) {
		t.Fatalf("JWKS kids: got %v, want [%s]", got, stored[0].ID)
	}
	k := set.Keys[0]
	if k.Algorithm != "RS256" || k.Use != "sig" || !k.IsPublic() {
		t.Errorf("JWKS key: got alg %q use %q public %v, want RS256, sig, true", k.Algorithm, k.Use, k.IsPublic())
	}
	pub, ok := k.Key.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("JWKS key: got %T, want an RSA public key", k.Key)
	}
	if pub.N.BitLen() < 2048 {
		t.Errorf("RSA modulus: got %d bits, want at least 2048", pub.N.BitLen())
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(ks.JWKS(ctx), &raw); err != nil {
		t.Fatal(err)
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if _, ok := raw.Keys[0][private]; ok {
			t.Errorf("JWKS publishes the private member %q", private)
		}
	}
	if raw.Keys[0]["kty"] != "RSA" {
		t.Errorf("kty: got %v, want RSA", raw.Keys[0]["kty"])
	}

	h := jwtHeader(t, sign(t, ks, "alice"))
	if h["alg"] != "RS256" || h["kid"] != stored[0].ID {
		t.Errorf("signed header: got alg %v kid %v, want RS256 and %s", h["alg"], h["kid"], stored[0].ID)
	}

	// A second instance on the same database uses the key; it makes none.
	other, err := NewKeySet(ctx, store, testRetention, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	if got := kids(jwks(t, other)); !slices.Equal(got, []string{stored[0].ID}) {
		t.Errorf("second key set: got kids %v, want [%s]", got, stored[0].ID)
	}
}

func TestKeySetRotate(t *testing.T) {
	ctx := context.Background()
	ks, _, clock := newKeySet(t)
	oldID := kids(jwks(t, ks))[0]
	oldToken := sign(t, ks, "signed-before")

	newID, err := ks.Rotate(ctx)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if newID == oldID || newID == "" {
		t.Fatalf("Rotate: got key %q, want a new one (old %q)", newID, oldID)
	}
	if got := jwtHeader(t, sign(t, ks, "signed-after"))["kid"]; got != newID {
		t.Errorf("after Rotate: signed with kid %v, want %s", got, newID)
	}
	if got := kids(jwks(t, ks)); !slices.Equal(got, sorted(newID, oldID)) {
		t.Errorf("after Rotate: JWKS kids %v, want [%s %s]", got, newID, oldID)
	}
	tok, err := ks.Decode(ctx, oldToken)
	if err != nil {
		t.Fatalf("Decode a token of the retired key while it is published: %v", err)
	}
	if tok.Claims["sub"] != "signed-before" {
		t.Errorf("decoded sub: got %v, want signed-before", tok.Claims["sub"])
	}

	// Still published one second before the retention ends...
	clock.Add(testRetention - time.Second)
	if got := kids(jwks(t, ks)); !slices.Equal(got, sorted(newID, oldID)) {
		t.Errorf("just before the retention ends: JWKS kids %v, want [%s %s]", got, newID, oldID)
	}
	if _, err := ks.Decode(ctx, oldToken); err != nil {
		t.Errorf("Decode just before the retention ends: %v", err)
	}
	// ...and gone at the first reload after it.
	clock.Add(keyRefresh + time.Second)
	if got := kids(jwks(t, ks)); !slices.Equal(got, []string{newID}) {
		t.Errorf("after the retention: JWKS kids %v, want [%s]", got, newID)
	}
	if _, err := ks.Decode(ctx, oldToken); err == nil {
		t.Errorf("Decode a token of a key past its retention: got no error")
	}
	if _, err := ks.Decode(ctx, sign(t, ks, "new")); err != nil {
		t.Errorf("Decode a token of the current key: %v", err)
	}
}

// TestKeySetPicksUpRotationElsewhere: a key rotated by `twostep keys
// rotate` or by another instance signs here after the next refresh.
func TestKeySetPicksUpRotationElsewhere(t *testing.T) {
	tests := []struct {
		name   string
		rotate func(t *testing.T, store *storage.Store, clock *storagetest.Clock) string
	}{
		{"GenerateKey on the same database", func(t *testing.T, store *storage.Store, _ *storagetest.Clock) string {
			id, err := GenerateKey(context.Background(), store)
			if err != nil {
				t.Fatalf("GenerateKey: %v", err)
			}
			return id
		}},
		{"another instance rotates", func(t *testing.T, store *storage.Store, clock *storagetest.Clock) string {
			other, err := NewKeySet(context.Background(), store, testRetention, clock.Now)
			if err != nil {
				t.Fatalf("NewKeySet: %v", err)
			}
			id, err := other.Rotate(context.Background())
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			return id
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ks, store, clock := newKeySet(t)
			oldID := kids(jwks(t, ks))[0]
			newID := tc.rotate(t, store, clock)

			check := func(when, wantKid string, wantKids []string) {
				t.Helper()
				if got := jwtHeader(t, sign(t, ks, "x"))["kid"]; got != wantKid {
					t.Errorf("%s: signed with kid %v, want %s", when, got, wantKid)
				}
				if got := kids(jwks(t, ks)); !slices.Equal(got, wantKids) {
					t.Errorf("%s: JWKS kids %v, want %v", when, got, wantKids)
				}
			}
			check("right after the rotation", oldID, []string{oldID})
			clock.Add(keyRefresh)
			check("exactly keyRefresh later", oldID, []string{oldID})
			clock.Add(time.Second)
			check("after keyRefresh", newID, sorted(newID, oldID))
		})
	}
}

func TestKeySetDecodeRefuses(t *testing.T) {
	ctx := context.Background()
	ks, _, _ := newKeySet(t)
	kid := kids(jwks(t, ks))[0]
	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := jwt.MapClaims{"iss": testIssuer, "sub": "mallory", "aud": appID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	signWith := func(key *rsa.PrivateKey, kid string) string {
		s := &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) { return key, nil }}
		var h jwt.Mapper = &jwt.Headers{}
		if kid != "" {
			h = kidHeader{Mapper: h, kid: kid}
		}
		raw, _, err := s.Generate(ctx, claims, h)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	b64 := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	// HS256 keyed with the published public key (algorithm confusion).
	pubDER, err := x509.MarshalPKIXPublicKey(&ks.signing.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	hsInput := b64(map[string]string{"alg": "HS256", "kid": kid}) + "." + b64(claims)
	mac := hmac.New(sha256.New, pubDER)
	mac.Write([]byte(hsInput))
	hs256 := hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	tests := []struct {
		name, token string
	}{
		{"foreign key claiming our kid", signWith(foreign, kid)},
		{"foreign key with an unknown kid", signWith(foreign, "unknown")},
		{"no kid", signWith(foreign, "")},
		{"alg none", b64(map[string]string{"alg": "none", "kid": kid}) + "." + b64(claims) + "."},
		{"HS256 keyed with the public key", hs256},
		{"garbage", "not.a.jwt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tok, err := ks.Decode(ctx, tc.token); err == nil {
				t.Errorf("Decode: got claims %v, want an error", tok.Claims)
			}
		})
	}
}

// TestIDTokenSignedWithRotatedKey: after a rotation, the ID tokens the
// provider issues name the new key, and verify against the served JWKS,
// which still lists the old key.
func TestIDTokenSignedWithRotatedKey(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	u := e.addUser("alice")
	oldID := kids(jwks(t, e.p.Keys()))[0]
	newID, err := e.p.Keys().Rotate(context.Background())
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}

	tr := e.tokensFor(t, u.ID, "openid")
	if tr.IDToken == "" {
		t.Fatal("no id_token for scope openid")
	}
	h := jwtHeader(t, tr.IDToken)
	if h["kid"] != newID || h["alg"] != "RS256" {
		t.Errorf("ID token header: got kid %v alg %v, want %s, RS256", h["kid"], h["alg"], newID)
	}

	rec := e.get("/.well-known/jwks.json")
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET jwks.json: got %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	if got := kids(set); !slices.Equal(got, sorted(newID, oldID)) {
		t.Errorf("served JWKS kids: got %v, want [%s %s]", got, newID, oldID)
	}
	keys := set.Key(newID)
	if len(keys) != 1 {
		t.Fatalf("served JWKS has %d keys with kid %s, want 1", len(keys), newID)
	}
	jws, err := jose.ParseSigned(tr.IDToken, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parse ID token: %v", err)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("verify ID token against the served JWKS: %v", err)
	}
	var claims struct {
		Iss string   `json:"iss"`
		Sub string   `json:"sub"`
		Aud []string `json:"aud"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Iss != testIssuer || claims.Sub != u.ID || !slices.Equal(claims.Aud, []string{appID}) {
		t.Errorf("ID token: got iss %q sub %q aud %v, want %s, %s, [%s]", claims.Iss, claims.Sub, claims.Aud, testIssuer, u.ID, appID)
	}
}
