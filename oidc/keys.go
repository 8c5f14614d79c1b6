package oidc

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite/token/jwt"

	"github.com/twostep/twostep/storage"
)

// keyRefresh is how often a KeySet rereads the database, so a key rotated
// by `twostep keys rotate` (or on another instance) is picked up.
const keyRefresh = time.Minute

// rsaBits is the size of generated signing keys.
const rsaBits = 2048

// KeySet holds the signing keys: the newest signs, all unexpired ones are
// published. It implements fosite's jwt.Signer, adding the signing key's
// `kid` to every header it signs.
type KeySet struct {
	store     *storage.Store
	retention time.Duration
	now       func() time.Time

	mu       sync.Mutex
	loadedAt time.Time
	signing  signingKey
	public   []jose.JSONWebKey
	jwks     []byte
}

type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

var _ jwt.Signer = (*KeySet)(nil)

// NewKeySet loads the keys from the store, generating the first one if
// there is none.
func NewKeySet(ctx context.Context, store *storage.Store, retention time.Duration, now func() time.Time) (*KeySet, error) {
	ks := &KeySet{store: store, retention: retention, now: now}
	if err := ks.reload(ctx); err != nil {
		return nil, err
	}
	if ks.signing.key == nil {
		if _, err := ks.Rotate(ctx); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

// GenerateKey makes a new RSA signing key, stores it and makes it the one
// that signs; the previous key stays in the JWKS for the retention period.
// It returns the new key's ID.
func GenerateKey(ctx context.Context, store *storage.Store) (string, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return "", fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("generate signing key: %w", err)
	}
	thumb, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("generate signing key: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(thumb)
	if err := store.CreateSigningKey(ctx, storage.SigningKey{ID: id, Algorithm: "RS256", PrivateKey: der}); err != nil {
		return "", err
	}
	return id, nil
}

// Rotate generates a new signing key and reloads the set.
func (ks *KeySet) Rotate(ctx context.Context) (string, error) {
	id, err := GenerateKey(ctx, ks.store)
	if err != nil {
		return "", err
	}
	return id, ks.reload(ctx)
}

// reload rereads the keys and recomputes the JWKS document.
func (ks *KeySet) reload(ctx context.Context) error {
	keys, err := ks.store.ListSigningKeys(ctx, ks.now().Add(-ks.retention))
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	var signing signingKey
	public := make([]jose.JSONWebKey, 0, len(keys))
	for _, k := range keys {
		parsed, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
		if err != nil {
			return fmt.Errorf("load signing key %q: %w", k.ID, err)
		}
		priv, ok := parsed.(*rsa.PrivateKey)
		if !ok {
			return fmt.Errorf("load signing key %q: not an RSA key", k.ID)
		}
		if signing.key == nil && k.RetiredAt.IsZero() {
			signing = signingKey{id: k.ID, key: priv}
		}
		public = append(public, jose.JSONWebKey{Key: &priv.PublicKey, KeyID: k.ID, Algorithm: "RS256", Use: "sig"})
	}
	if signing.key == nil && len(keys) > 0 {
		// Every key is retired (a rotation raced); the newest still signs.
		parsed, _ := x509.ParsePKCS8PrivateKey(keys[0].PrivateKey)
		signing = signingKey{id: keys[0].ID, key: parsed.(*rsa.PrivateKey)}
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
func (ks *KeySet) fresh(ctx context.Context) (signingKey, []jose.JSONWebKey, []byte) {
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

func (ks *KeySet) signer(ctx context.Context) (*jwt.DefaultSigner, string) {
	sk, _, _ := ks.fresh(ctx)
	return &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (interface{}, error) {
		if sk.key == nil {
			return nil, errors.New("no signing key")
		}
		return sk.key, nil
	}}, sk.id
}

// Generate implements jwt.Signer: it signs with the current key and names
// it in the `kid` header.
func (ks *KeySet) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	s, kid := ks.signer(ctx)
	return s.Generate(ctx, claims, kidHeader{Mapper: header, kid: kid})
}

// Validate implements jwt.Signer.
func (ks *KeySet) Validate(ctx context.Context, token string) (string, error) {
	s, _ := ks.signer(ctx)
	return s.Validate(ctx, token)
}

// Hash implements jwt.Signer.
func (ks *KeySet) Hash(ctx context.Context, in []byte) ([]byte, error) {
	s, _ := ks.signer(ctx)
	return s.Hash(ctx, in)
}

// Decode implements jwt.Signer. It verifies with the key the token's `kid`
// names, so a token signed before a rotation still decodes.
func (ks *KeySet) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	_, public, _ := ks.fresh(ctx)
	return jwt.Parse(token, func(t *jwt.Token) (interface{}, error) {
		kid, _ := t.Header["kid"].(string)
		for _, k := range public {
			if k.KeyID == kid {
				return k.Key, nil
			}
		}
		return nil, fmt.Errorf("unknown signing key %q", kid)
	})
}

// GetSignature implements jwt.Signer.
func (ks *KeySet) GetSignature(ctx context.Context, token string) (string, error) {
	s, _ := ks.signer(ctx)
	return s.GetSignature(ctx, token)
}

// GetSigningMethodLength implements jwt.Signer.
func (ks *KeySet) GetSigningMethodLength(ctx context.Context) int {
	s, _ := ks.signer(ctx)
	return s.GetSigningMethodLength(ctx)
}
