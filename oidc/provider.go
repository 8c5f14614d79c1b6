package oidc

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// Scopes twostep understands. Any client may be registered with a subset.
var SupportedScopes = []string{"openid", "offline_access", "profile", "email", "groups"}

// DefaultKeyRetention is how long a rotated-out signing key stays in the
// JWKS. A key must stay published until the longest-lived token it signed
// has expired; the only tokens twostep signs with these keys are ID tokens,
// which live an hour, so a day leaves a wide margin.
const DefaultKeyRetention = 24 * time.Hour

// Sessions is what the authorization and logout endpoints need from the
// login package: who completed both factors in this browser, and how to end
// that.
type Sessions interface {
	// Current returns the browser's login session if both factors were
	// checked, or an error wrapping storage.ErrNotFound.
	Current(r *http.Request) (storage.LoginSession, error)
	// Logout ends the browser's login session.
	Logout(w http.ResponseWriter, r *http.Request) error
}

// Config configures a Provider.
type Config struct {
	// Issuer is the issuer URL, without a trailing slash.
	Issuer   string
	Store    *storage.Store
	Pages    *templates.Pages
	Logger   *slog.Logger
	Sessions Sessions
	// HMACSecret (32 bytes) signs codes and tokens; every instance must use
	// the same one.
	HMACSecret []byte
	// RotatedHMACSecrets are earlier HMAC secrets (each 32 bytes or more):
	// codes and tokens they signed stay valid, new ones are signed with
	// HMACSecret.
	RotatedHMACSecrets [][]byte
	// KeyRetention is how long a rotated-out signing key stays in the JWKS;
	// DefaultKeyRetention when zero.
	KeyRetention time.Duration
	// Audit receives the provider's security events: "token.issued",
	// "token.revoked", "logout" and "backchannel_logout". It gets the
	// request too, to add the caller's address and user agent; for
	// "backchannel_logout" that is twostep's own POST to the client. Nil
	// is allowed.
	Audit func(*http.Request, storage.AuditEvent)
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// BackchannelInterval is how often RunBackchannel looks for due
	// back-channel logouts, and the unit of their retry back-off;
	// DefaultBackchannelInterval when zero.
	BackchannelInterval time.Duration
}

// Provider is the OpenID provider.
type Provider struct {
	issuer    string
	store     *storage.Store
	pages     *templates.Pages
	log       *slog.Logger
	sessions  Sessions
	audit     func(*http.Request, storage.AuditEvent)
	now       func() time.Time
	oauth     fosite.OAuth2Provider
	keys      *KeySet
	discovery []byte
	bc        *backchannel
}

// New composes fosite with twostep's storage and keys. It loads the signing
// keys, creating the first one if the database has none.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	for _, secret := range append([][]byte{cfg.HMACSecret}, cfg.RotatedHMACSecrets...) {
		if len(secret) < 32 {
			return nil, errors.New("oidc: HMAC secrets must be at least 32 bytes")
		}
	}
	issuer := strings.TrimRight(cfg.Issuer, "/")
	if issuer == "" {
		return nil, errors.New("oidc: issuer is required")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	retention := cfg.KeyRetention
	if retention == 0 {
		retention = DefaultKeyRetention
	}
	keys, err := NewKeySet(ctx, cfg.Store, retention, now)
	if err != nil {
		return nil, err
	}
	fc := &fosite.Config{
		AccessTokenLifespan:            time.Hour,
		RefreshTokenLifespan:           30 * 24 * time.Hour,
		AuthorizeCodeLifespan:          5 * time.Minute,
		IDTokenLifespan:                time.Hour,
		IDTokenIssuer:                  issuer,
		AccessTokenIssuer:              issuer,
		TokenURL:                       issuer + "/oauth2/token",
		GlobalSecret:                   cfg.HMACSecret,
		RotatedGlobalSecrets:           cfg.RotatedHMACSecrets,
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:       fosite.DefaultAudienceMatchingStrategy,
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		RefreshTokenScopes:             []string{"offline_access"},
		ClientSecretsHasher:            storage.SecretHasher{},
		MinParameterEntropy:            fosite.MinParameterEntropy,
		SendDebugMessagesToClients:     false,
		// Pushed authorization requests (RFC 9126) are allowed to every
		// client and required of those registered with RequirePAR.
		PushedAuthorizeRequestURIPrefix: parURIPrefix,
		PushedAuthorizeContextLifespan:  parLifetime,
		IsPushedAuthorizeEnforced:       false,
	}
	strategy := compose.CommonStrategy{
		CoreStrategy:               compose.NewOAuth2HMACStrategy(fc),
		OpenIDConnectTokenStrategy: newIDTokenStrategy(keys, fc),
		Signer:                     keys,
	}
	oauth := compose.Compose(fc, cfg.Store, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2PKCEFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.PushedAuthorizeHandlerFactory,
	)
	p := &Provider{
		issuer: issuer, store: cfg.Store, pages: cfg.Pages, log: cfg.Logger, sessions: cfg.Sessions,
		audit: cfg.Audit, now: now, oauth: oauth, keys: keys, bc: newBackchannel(cfg.BackchannelInterval),
	}
	if p.discovery, err = discoveryDocument(issuer); err != nil {
		return nil, err
	}
	return p, nil
}

// Keys returns the provider's signing key set.
func (p *Provider) Keys() *KeySet { return p.keys }

// serverError logs err with the request id and shows a generic page: 503
// when the database is unreachable, 500 otherwise.
func (p *Provider) serverError(w http.ResponseWriter, r *http.Request, op string, err error) {
	p.log.ErrorContext(r.Context(), op, "err", err, "request_id", w.Header().Get("X-Request-Id"))
	p.pages.Failure(w, r, errors.Is(err, storage.ErrUnavailable))
}

// record sends a security event to the audit log, if one is configured.
func (p *Provider) record(r *http.Request, ev storage.AuditEvent) {
	if p.audit != nil {
		p.audit(r, ev)
	}
}

// fositeError makes a storage outage visible to fosite's error writers as a
// temporarily_unavailable error (HTTP 503) rather than a server_error.
func fositeError(err error) error {
	if errors.Is(err, storage.ErrUnavailable) {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error())
	}
	return err
}

func has(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func mustString(v any) string {
	s, _ := v.(string)
	return s
}

// randomID returns 256 random bits, base64url-encoded.
func randomID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
