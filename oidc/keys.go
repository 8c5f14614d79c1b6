package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/twostep/twostep/storage"
)

// keyRefresh is how often a KeySet rereads the database, so a key rotated
// by `twostep keys rotate` (or on another instance) is picked up.
const keyRefresh = time.Minute

// rsaBits is the size of generated RSA signing keys.
const rsaBits = 2048

// The JWS algorithms (RFC 7518 §3.1) twostep signs ID tokens with.
const (
	// RS256 signs by default: every OpenID Connect client supports it
	// (OpenID Connect Core §15.1).
	RS256 = "RS256"
	// ES256 (ECDSA on P-256) signs the ID tokens of clients registered
	// with it.
	ES256 = "ES256"
)

// Algorithms lists the signing algorithms; a KeySet holds one signing key
// of each.
var Algorithms = []string{RS256, ES256}

// KeySet holds the signing keys: per algorithm the newest signs, and every
// key not retired longer ago than the retention is published in the JWKS.
// A retired key must stay published until the longest-lived token it
// signed has expired: ID tokens live an hour, so DefaultKeyRetention (24
// hours) leaves a wide margin. KeySet implements fosite's jwt.Signer with
// the RS256 key, adding the signing key's `kid` to every header it signs;
// Signer gives the signer of another algorithm.
type KeySet struct {
	store     *storage.Store
	retention time.Duration
	now       func() time.Time

	mu       sync.Mutex
	loadedAt time.Time
	signing  map[string]signingKey // by algorithm
	public   []jose.JSONWebKey
	jwks     []byte
}

type signingKey struct {
	id  string
	key crypto.Signer // *rsa.PrivateKey or *ecdsa.PrivateKey
}

var _ jwt.Signer = (*KeySet)(nil)

// NewKeySet loads the keys from the store, generating a first key of each
// algorithm that has none.
func NewKeySet(ctx context.Context, store *storage.Store, retention time.Duration, now func() time.Time) (*KeySet, error) {
	ks := &KeySet{store: store, retention: retention, now: now}
	if err := ks.reload(ctx); err != nil {
		return nil, err
	}
	for _, alg := range Algorithms {
		if _, ok := ks.signing[alg]; ok {
			continue
		}
		if _, err := ks.Rotate(ctx, alg); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

// GenerateKey makes a new signing key for alg (RS256 or ES256), stores it
// and makes it the one that signs with alg; the previous key of alg stays
// in the JWKS for the retention period. It returns the new key's ID, the
// key's JWK thumbprint (RFC 7638).
func GenerateKey(ctx context.Context, store *storage.Store, alg string) (string, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return "", fmt.Errorf("generate signing key: unknown algorithm %q (want %s)", alg, strings.Join(Algorithms, " or "))
	}
	if err != nil {
		return "", fmt.Errorf("generate %s signing key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("generate %s signing key: %w", alg, err)
	}
	thumb, err := (&jose.JSONWebKey{Key: priv.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("generate %s signing key: %w", alg, err)
	}
	id := base64.RawURLEncoding.EncodeToString(thumb)
	if err := store.CreateSigningKey(ctx, storage.SigningKey{ID: id, Algorithm: alg, PrivateKey: der}); err != nil {
		return "", err
	}
	return id, nil
}

// Rotate generates a new signing key for alg and reloads the set.
func (ks *KeySet) Rotate(ctx context.Context, alg string) (string, error) {
	id, err := GenerateKey(ctx, ks.store, alg)
	if err != nil {
		return "", err
	}
	return id, ks.reload(ctx)
}

// parseKey decodes a stored key, checking that it fits its algorithm.
func parseKey(k storage.SigningKey) (crypto.Signer, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("load signing key %q: %w", k.ID, err)
	}
	switch priv := parsed.(type) {
	case *rsa.PrivateKey:
		if k.Algorithm == RS256 {
			return priv, nil
		}
	case *ecdsa.PrivateKey:
		if k.Algorithm == ES256 && priv.Curve == elliptic.P256() {
			return priv, nil
		}
	}
	return nil, fmt.Errorf("load signing key %q: a %T is not an %s key", k.ID, parsed, k.Algorithm)
}

// reload rereads the keys and recomputes the JWKS document.
func (ks *KeySet) reload(ctx context.Context) error {
	keys, err := ks.store.ListSigningKeys(ctx, ks.now().Add(-ks.retention))
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	signing := map[string]signingKey{}
	newest := map[string]signingKey{}
	public := make([]jose.JSONWebKey, 0, len(keys))
	for _, k := range keys { // newest first
		priv, err := parseKey(k)
		if err != nil {
			return err
		}
		sk := signingKey{id: k.ID, key: priv}
		if _, ok := newest[k.Algorithm]; !ok {
			newest[k.Algorithm] = sk
		}
		if _, ok := signing[k.Algorithm]; !ok && k.RetiredAt.IsZero() {
			signing[k.Algorithm] = sk
		}
		public = append(public, jose.JSONWebKey{Key: priv.Public(), KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig"})
	}
	for alg, sk := range newest {
		if _, ok := signing[alg]; !ok {
			// Every key of alg is retired (a rotation raced); the newest
			// still signs.
			signing[alg] = sk
		}
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: public})
	if err != nil {
		return fmt.Errorf("encode jwks: %w", err)
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.signing, ks.public, ks.jwks, ks.loadedAt = signing, public, jwks, ks.now()
	return nil
}

// fresh returns the current keys, rereading them when they are stale. A
// failed reread keeps the keys already loaded.
func (ks *KeySet) fresh(ctx context.Context) (map[string]signingKey, []jose.JSONWebKey, []byte) {
	ks.mu.Lock()
	stale := ks.now().Sub(ks.loadedAt) > keyRefresh
	if stale {
		// Claim the reload so concurrent callers don't all hit the database.
		ks.loadedAt = ks.now()
	}
	ks.mu.Unlock()
	if stale {
		_ = ks.reload(ctx) // on failure the loaded keys stay in use
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.signing, ks.public, ks.jwks
}

// JWKS returns the public key set document.
func (ks *KeySet) JWKS(ctx context.Context) []byte {
	_, _, jwks := ks.fresh(ctx)
	return jwks
}

// kidHeader adds the signing key's ID to a JWT header.
type kidHeader struct {
	jwt.Mapper
	kid string
}

func (h kidHeader) ToMap() map[string]interface{} {
	m := map[string]interface{}{}
	if h.Mapper != nil {
		for k, v := range h.Mapper.ToMap() {
			m[k] = v
		}
	}
	m["kid"] = h.kid
	return m
}

// Signer returns the jwt.Signer that signs with the current key of alg
// (RS256 or ES256). Its Decode, like the KeySet's, accepts a token of any
// published key.
func (ks *KeySet) Signer(alg string) jwt.Signer {
	return algSigner{ks: ks, alg: alg}
}

// algSigner signs with the current key of one algorithm.
type algSigner struct {
	ks  *KeySet
	alg string
}

var _ jwt.Signer = algSigner{}

func (s algSigner) signer(ctx context.Context) (*jwt.DefaultSigner, string) {
	signing, _, _ := s.ks.fresh(ctx)
	sk, ok := signing[s.alg]
	return &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (interface{}, error) {
		if !ok {
			return nil, fmt.Errorf("no %s signing key", s.alg)
		}
		return sk.key, nil
	}}, sk.id
}

// Generate implements jwt.Signer: it signs with the current key of the
// algorithm and names it in the `kid` header.
func (s algSigner) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	signer, kid := s.signer(ctx)
	return signer.Generate(ctx, claims, kidHeader{Mapper: header, kid: kid})
}

// Validate implements jwt.Signer.
func (s algSigner) Validate(ctx context.Context, token string) (string, error) {
	signer, _ := s.signer(ctx)
	return signer.Validate(ctx, token)
}

// Hash implements jwt.Signer.
func (s algSigner) Hash(ctx context.Context, in []byte) ([]byte, error) {
	signer, _ := s.signer(ctx)
	return signer.Hash(ctx, in)
}

// Decode implements jwt.Signer with KeySet.Decode.
func (s algSigner) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	return s.ks.Decode(ctx, token)
}

// GetSignature implements jwt.Signer.
func (s algSigner) GetSignature(ctx context.Context, token string) (string, error) {
	signer, _ := s.signer(ctx)
	return signer.GetSignature(ctx, token)
}

// GetSigningMethodLength implements jwt.Signer.
func (s algSigner) GetSigningMethodLength(ctx context.Context) int {
	signer, _ := s.signer(ctx)
	return signer.GetSigningMethodLength(ctx)
}

// Generate implements jwt.Signer: it signs with the current RS256 key and
// names it in the `kid` header.
func (ks *KeySet) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	return ks.Signer(RS256).Generate(ctx, claims, header)
}

// Validate implements jwt.Signer.
func (ks *KeySet) Validate(ctx context.Context, token string) (string, error) {
	return ks.Signer(RS256).Validate(ctx, token)
}

// Hash implements jwt.Signer.
func (ks *KeySet) Hash(ctx context.Context, in []byte) ([]byte, error) {
	return ks.Signer(RS256).Hash(ctx, in)
}

// Decode implements jwt.Signer. It verifies with the published key the
// token's `kid` names, whatever its algorithm, so a token signed before a
// rotation, or with another algorithm's key, still decodes. The header's
// `alg` must be that key's.
func (ks *KeySet) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	_, public, _ := ks.fresh(ctx)
	return jwt.Parse(token, func(t *jwt.Token) (interface{}, error) {
		kid, _ := t.Header["kid"].(string)
		for _, k := range public {
			if k.KeyID != kid {
				continue
			}
			if alg, _ := t.Header["alg"].(string); alg != k.Algorithm {
				return nil, fmt.Errorf("signing key %q is an %s key, not %q", kid, k.Algorithm, alg)
			}
			return k.Key, nil
		}
		return nil, fmt.Errorf("unknown signing key %q", kid)
	})
}

// GetSignature implements jwt.Signer.
func (ks *KeySet) GetSignature(ctx context.Context, token string) (string, error) {
	return ks.Signer(RS256).GetSignature(ctx, token)
}

// GetSigningMethodLength implements jwt.Signer.
func (ks *KeySet) GetSigningMethodLength(ctx context.Context) int {
	return ks.Signer(RS256).GetSigningMethodLength(ctx)
}

// idTokenStrategy signs each client's ID tokens with the algorithm it was
// registered with (storage.Client.IDTokenAlg; OpenID Connect Registration
// id_token_signed_response_alg). fosite's openid.DefaultStrategy has one
// Signer, so there is one strategy per algorithm.
type idTokenStrategy map[string]openid.OpenIDConnectTokenStrategy

var _ openid.OpenIDConnectTokenStrategy = idTokenStrategy(nil)

// newIDTokenStrategy returns the ID token strategy over the key set.
func newIDTokenStrategy(ks *KeySet, cfg *fosite.Config) idTokenStrategy {
	s := idTokenStrategy{}
	for _, alg := range Algorithms {
		s[alg] = &openid.DefaultStrategy{Signer: idTokenSigner{ks.Signer(alg)}, Config: cfg}
	}
	return s
}

// GenerateIDToken implements openid.OpenIDConnectTokenStrategy.
func (s idTokenStrategy) GenerateIDToken(ctx context.Context, lifespan time.Duration, req fosite.Requester) (string, error) {
	return s[idTokenAlg(req.GetClient())].GenerateIDToken(ctx, lifespan, req)
}

// idTokenAlg is the algorithm that signs c's ID tokens: RS256 unless it
// was registered with another one twostep supports.
func idTokenAlg(c fosite.Client) string {
	if sc, ok := c.(*storage.Client); ok && has(Algorithms, sc.IDTokenAlg) {
		return sc.IDTokenAlg
	}
	return RS256
}
