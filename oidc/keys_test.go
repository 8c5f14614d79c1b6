package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
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

// algKids returns the sorted key IDs of the set's keys of alg.
func algKids(set jose.JSONWebKeySet, alg string) []string {
	var ids []string
	for _, k := range set.Keys {
		if k.Algorithm == alg {
			ids = append(ids, k.KeyID)
		}
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

// sign signs a short-lived token for sub with the key set's current RS256
// key.
func sign(t *testing.T, ks *KeySet, sub string) string {
	t.Helper()
	return signWith(t, ks, sub)
}

// signWith signs a short-lived token for sub with s.
func signWith(t *testing.T, s jwt.Signer, sub string) string {
	t.Helper()
	now := time.Now()
	raw, _, err := s.Generate(context.Background(), jwt.MapClaims{
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
	byAlg := map[string]storage.SigningKey{}
	for _, k := range stored {
		if !k.RetiredAt.IsZero() {
			t.Errorf("first key %s: retired at %v, want not retired", k.ID, k.RetiredAt)
		}
		byAlg[k.Algorithm] = k
	}
	if len(stored) != 2 || byAlg[RS256].ID == "" || byAlg[ES256].ID == "" {
		t.Fatalf("after NewKeySet on an empty database: got %d keys %v, want one RS256 and one ES256", len(stored), byAlg)
	}
	rsID, ecID := byAlg[RS256].ID, byAlg[ES256].ID

	set := jwks(t, ks)
	if got := kids(set); !slices.Equal(got, sorted(rsID, ecID)) {
		t.Fatalf("JWKS kids: got %v, want [%s %s]", got, rsID, ecID)
	}
	for _, k := range set.Keys {
		want := map[string]string{rsID: RS256, ecID: ES256}[k.KeyID]
		if k.Algorithm != want || k.Use != "sig" || !k.IsPublic() {
			t.Errorf("JWKS key %s: got alg %q use %q public %v, want %s, sig, true", k.KeyID, k.Algorithm, k.Use, k.IsPublic(), want)
		}
	}
	rsa0 := set.Key(rsID)[0]
	pub, ok := rsa0.Key.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("JWKS RS256 key: got %T, want an RSA public key", rsa0.Key)
	}
	if pub.N.BitLen() < 2048 {
		t.Errorf("RSA modulus: got %d bits, want at least 2048", pub.N.BitLen())
	}
	ec0 := set.Key(ecID)[0]
	if ecPub, ok := ec0.Key.(*ecdsa.PublicKey); !ok || ecPub.Curve != elliptic.P256() {
		t.Errorf("JWKS ES256 key: got %T, want a P-256 public key", ec0.Key)
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(ks.JWKS(ctx), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range raw.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWKS key %v publishes the private member %q", k["kid"], private)
			}
		}
		if want := map[any]string{rsID: "RSA", ecID: "EC"}[k["kid"]]; k["kty"] != want {
			t.Errorf("key %v: kty %v, want %s", k["kid"], k["kty"], want)
		}
	}

	h := jwtHeader(t, sign(t, ks, "alice"))
	if h["alg"] != RS256 || h["kid"] != rsID {
		t.Errorf("signed header: got alg %v kid %v, want RS256 and %s", h["alg"], h["kid"], rsID)
	}
	ecToken := signWith(t, ks.Signer(ES256), "alice")
	if h := jwtHeader(t, ecToken); h["alg"] != ES256 || h["kid"] != ecID {
		t.Errorf("ES256 signed header: got alg %v kid %v, want ES256 and %s", h["alg"], h["kid"], ecID)
	}
	if tok, err := ks.Decode(ctx, ecToken); err != nil || tok.Claims["sub"] != "alice" {
		t.Errorf("Decode an ES256 token: got %v, %v, want sub alice", tok, err)
	}

	// A second instance on the same database uses the keys; it makes none.
	other, err := NewKeySet(ctx, store, testRetention, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	if got := kids(jwks(t, other)); !slices.Equal(got, sorted(rsID, ecID)) {
		t.Errorf("second key set: got kids %v, want [%s %s]", got, rsID, ecID)
	}
}

// TestKeySetAddsMissingAlgorithm: a database from before ES256 has only
// RS256 keys; the key set adds an ES256 key and keeps the RS256 one.
func TestKeySetAddsMissingAlgorithm(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	store := storagetest.New(t, storagetest.SQLiteDSN(t), clock.Now)
	rsID, err := GenerateKey(ctx, store, RS256)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := NewKeySet(ctx, store, testRetention, clock.Now)
	if err != nil {
		t.Fatalf("NewKeySet: %v", err)
	}
	set := jwks(t, ks)
	if got := algKids(set, RS256); !slices.Equal(got, []string{rsID}) {
		t.Errorf("RS256 kids: got %v, want [%s]", got, rsID)
	}
	if got := algKids(set, ES256); len(got) != 1 || got[0] == rsID {
		t.Errorf("ES256 kids: got %v, want one new key", got)
	}
	if _, err := GenerateKey(ctx, store, "HS256"); err == nil {
		t.Error("GenerateKey HS256: got no error")
	}
}

func TestKeySetRotate(t *testing.T) {
	ctx := context.Background()
	ks, _, clock := newKeySet(t)
	oldID := algKids(jwks(t, ks), RS256)[0]
	ecID := algKids(jwks(t, ks), ES256)[0]
	oldToken := sign(t, ks, "signed-before")

	newID, err := ks.Rotate(ctx, RS256)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if newID == oldID || newID == "" {
		t.Fatalf("Rotate: got key %q, want a new one (old %q)", newID, oldID)
	}
	if got := jwtHeader(t, sign(t, ks, "signed-after"))["kid"]; got != newID {
		t.Errorf("after Rotate: signed with kid %v, want %s", got, newID)
	}
	if got := kids(jwks(t, ks)); !slices.Equal(got, sorted(newID, oldID, ecID)) {
		t.Errorf("after Rotate: JWKS kids %v, want [%s %s %s]", got, newID, oldID, ecID)
	}
	if got := jwtHeader(t, signWith(t, ks.Signer(ES256), "x"))["kid"]; got != ecID {
		t.Errorf("after rotating RS256: ES256 signed with kid %v, want the unrotated %s", got, ecID)
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
	if got := algKids(jwks(t, ks), RS256); !slices.Equal(got, sorted(newID, oldID)) {
		t.Errorf("just before the retention ends: JWKS kids %v, want [%s %s]", got, newID, oldID)
	}
	if _, err := ks.Decode(ctx, oldToken); err != nil {
		t.Errorf("Decode just before the retention ends: %v", err)
	}
	// ...and gone at the first reload after it.
	clock.Add(keyRefresh + time.Second)
	if got := kids(jwks(t, ks)); !slices.Equal(got, sorted(newID, ecID)) {
		t.Errorf("after the retention: JWKS kids %v, want [%s %s]", got, newID, ecID)
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
			id, err := GenerateKey(context.Background(), store, RS256)
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
			id, err := other.Rotate(context.Background(), RS256)
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			return id
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ks, store, clock := newKeySet(t)
			oldID := algKids(jwks(t, ks), RS256)[0]
			newID := tc.rotate(t, store, clock)

			check := func(when, wantKid string, wantKids []string) {
				t.Helper()
				if got := jwtHeader(t, sign(t, ks, "x"))["kid"]; got != wantKid {
					t.Errorf("%s: signed with kid %v, want %s", when, got, wantKid)
				}
				if got := algKids(jwks(t, ks), RS256); !slices.Equal(got, wantKids) {
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
	kid := algKids(jwks(t, ks), RS256)[0]
	ecKid := algKids(jwks(t, ks), ES256)[0]
	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	foreignEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := jwt.MapClaims{"iss": testIssuer, "sub": "mallory", "aud": appID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	forge := func(key crypto.Signer, kid string) string {
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
	pubDER, err := x509.MarshalPKIXPublicKey(ks.signing[RS256].key.Public())
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
		{"foreign key claiming our kid", forge(foreign, kid)},
		{"foreign EC key claiming our ES256 kid", forge(foreignEC, ecKid)},
		{"our RS256 key naming our ES256 kid", forge(ks.signing[RS256].key, ecKid)},
		{"our ES256 key naming our RS256 kid", forge(ks.signing[ES256].key, kid)},
		{"foreign key with an unknown kid", forge(foreign, "unknown")},
		{"no kid", forge(foreign, "")},
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
	oldID := algKids(jwks(t, e.p.Keys()), RS256)[0]
	ecID := algKids(jwks(t, e.p.Keys()), ES256)[0]
	newID, err := e.p.Keys().Rotate(context.Background(), RS256)
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
	if got := kids(set); !slices.Equal(got, sorted(newID, oldID, ecID)) {
		t.Errorf("served JWKS kids: got %v, want [%s %s %s]", got, newID, oldID, ecID)
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

// TestIDTokenES256: a client registered with ES256 gets ID tokens signed
// with the ES256 key, from the code and from a refresh, which go-oidc
// verifies against the served JWKS; an RS256 client on the same provider
// still gets RS256. After an ES256 rotation the old kid stays published
// and the old token still verifies.
func TestIDTokenES256(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.addApp(true)
	es := appClient("es-app")
	es.SkipConsent, es.IDTokenAlg = true, ES256
	e.addClient(es, appSecret)
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
	srv := httptest.NewServer(e.mux)
	t.Cleanup(srv.Close)
	verifier := func(clientID string, algs ...string) *gooidc.IDTokenVerifier {
		keys := gooidc.NewRemoteKeySet(ctx, srv.URL+"/.well-known/jwks.json")
		return gooidc.NewVerifier(testIssuer, keys, &gooidc.Config{ClientID: clientID, SupportedSigningAlgs: algs})
	}
	tokens := func(clientID string) tokenResponse {
		t.Helper()
		ar := newAuthRequest(t, clientID)
		code := codeFrom(t, e.get(ar.url()), ar)
		rec, tr := e.exchange(t, ar, code, basic(clientID, appSecret))
		if rec.Code != http.StatusOK || tr.IDToken == "" {
			t.Fatalf("exchange for %s: got %d %s, want an ID token", clientID, rec.Code, rec.Body)
		}
		return tr
	}
	ecID := algKids(jwks(t, e.p.Keys()), ES256)[0]
	rsID := algKids(jwks(t, e.p.Keys()), RS256)[0]

	tr := tokens("es-app")
	if h := jwtHeader(t, tr.IDToken); h["alg"] != ES256 || h["kid"] != ecID {
		t.Errorf("ES256 client's ID token header: got alg %v kid %v, want ES256 and %s", h["alg"], h["kid"], ecID)
	}
	if _, err := verifier("es-app", ES256).Verify(ctx, tr.IDToken); err != nil {
		t.Errorf("go-oidc verifies the ES256 ID token: %v", err)
	}
	if _, err := verifier("es-app", RS256).Verify(ctx, tr.IDToken); err == nil {
		t.Error("a verifier that accepts only RS256 took the ES256 ID token")
	}
	rec := e.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, basic("es-app", appSecret))
	refreshed := decodeToken(t, rec)
	if rec.Code != http.StatusOK || refreshed.IDToken == "" {
		t.Fatalf("refresh: got %d %s, want an ID token", rec.Code, rec.Body)
	}
	if h := jwtHeader(t, refreshed.IDToken); h["alg"] != ES256 || h["kid"] != ecID {
		t.Errorf("refreshed ID token header: got alg %v kid %v, want ES256 and %s", h["alg"], h["kid"], ecID)
	}

	rs := tokens(appID)
	if h := jwtHeader(t, rs.IDToken); h["alg"] != RS256 || h["kid"] != rsID {
		t.Errorf("RS256 client's ID token header: got alg %v kid %v, want RS256 and %s", h["alg"], h["kid"], rsID)
	}
	if _, err := verifier(appID).Verify(ctx, rs.IDToken); err != nil {
		t.Errorf("go-oidc verifies the RS256 ID token: %v", err)
	}

	newID, err := e.p.Keys().Rotate(ctx, ES256)
	if err != nil {
		t.Fatalf("Rotate ES256: %v", err)
	}
	if got := algKids(jwks(t, e.p.Keys()), ES256); !slices.Equal(got, sorted(newID, ecID)) {
		t.Errorf("after rotating ES256: ES256 kids %v, want [%s %s]", got, newID, ecID)
	}
	if got := algKids(jwks(t, e.p.Keys()), RS256); !slices.Equal(got, []string{rsID}) {
		t.Errorf("after rotating ES256: RS256 kids %v, want [%s]", got, rsID)
	}
	after := tokens("es-app")
	if h := jwtHeader(t, after.IDToken); h["alg"] != ES256 || h["kid"] != newID {
		t.Errorf("after rotating ES256: ID token header alg %v kid %v, want ES256 and %s", h["alg"], h["kid"], newID)
	}
	v := verifier("es-app", ES256)
	for _, tok := range []string{tr.IDToken, after.IDToken} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("go-oidc verifies %s after the rotation: %v", jwtHeader(t, tok)["kid"], err)
		}
	}
}
