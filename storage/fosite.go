package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
)

var (
	_ fosite.ClientManager               = (*Store)(nil)
	_ oauth2.CoreStorage                 = (*Store)(nil)
	_ oauth2.TokenRevocationStorage      = (*Store)(nil)
	_ pkce.PKCERequestStorage            = (*Store)(nil)
	_ openid.OpenIDConnectRequestStorage = (*Store)(nil)
	_ fosite.PARStorage                  = (*Store)(nil)
)

// The kinds of rows in oauth2_sessions.
const (
	kindCode    = "code"
	kindAccess  = "access"
	kindRefresh = "refresh"
	kindPKCE    = "pkce"
	kindOIDC    = "oidc"
	kindPAR     = "par"
)

// refreshFallback is how long a refresh token row lives when the session
// sets no expiry for it.
const refreshFallback = 90 * 24 * time.Hour

// GetClient implements fosite.ClientManager.
func (s *Store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.Client(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// errNoJWTAssertions is returned by the JWT-assertion methods: twostep
// registers only client_secret_basic, client_secret_post and none, so fosite
// never reaches them.
var errNoJWTAssertions = errors.New("client assertion JWTs are not supported")

// ClientAssertionJWTValid implements fosite.ClientManager.
func (s *Store) ClientAssertionJWTValid(context.Context, string) error { return errNoJWTAssertions }

// SetClientAssertionJWT implements fosite.ClientManager.
func (s *Store) SetClientAssertionJWT(context.Context, string, time.Time) error {
	return errNoJWTAssertions
}

// storedRequest is the JSON form of a fosite.Requester.
type storedRequest struct {
	ID                string          `json:"id"`
	RequestedAt       time.Time       `json:"requested_at"`
	ClientID          string          `json:"client_id"`
	RequestedScope    []string        `json:"requested_scope"`
	GrantedScope      []string        `json:"granted_scope"`
	RequestedAudience []string        `json:"requested_audience"`
	GrantedAudience   []string        `json:"granted_audience"`
	Form              url.Values      `json:"form"`
	Session           json.RawMessage `json:"session"`
	// The fields of an authorization request, kept for pushed ones.
	RedirectURI   string   `json:"redirect_uri,omitempty"`
	ResponseTypes []string `json:"response_types,omitempty"`
	State         string   `json:"state,omitempty"`
	ResponseMode  string   `json:"response_mode,omitempty"`
}

// clientCredentials are the form parameters that authenticate a client
// (client_secret_post, private_key_jwt): a stored request never keeps them.
var clientCredentials = []string{"client_secret", "client_assertion", "client_assertion_type"}

// key hashes a code or token signature: the database never holds a value
// that could be presented as a credential (fosite passes whole authorization
// codes to the OpenID Connect session methods).
func key(signature string) string {
	sum := sha256.Sum256([]byte(signature))
	return hex.EncodeToString(sum[:])
}

func (s *Store) createSession(ctx context.Context, kind, signature string, req fosite.Requester, tokenType fosite.TokenType) error {
	sr, err := encodeRequest(kind, req)
	if err != nil {
		return err
	}
	expires := time.Time{}
	if sess := req.GetSession(); sess != nil {
		expires = sess.GetExpiresAt(tokenType)
	}
	if expires.IsZero() {
		expires = s.now().Add(refreshFallback)
	}
	return s.insertSession(ctx, kind, signature, req, sr, expires)
}

// encodeRequest turns req into its stored form.
func encodeRequest(kind string, req fosite.Requester) (storedRequest, error) {
	session, err := json.Marshal(req.GetSession())
	if err != nil {
		return storedRequest{}, fmt.Errorf("store %s: encode session: %w", kind, err)
	}
	return storedRequest{
		ID:                req.GetID(),
		RequestedAt:       req.GetRequestedAt(),
		ClientID:          req.GetClient().GetID(),
		RequestedScope:    req.GetRequestedScopes(),
		GrantedScope:      req.GetGrantedScopes(),
		RequestedAudience: req.GetRequestedAudience(),
		GrantedAudience:   req.GetGrantedAudience(),
		Form:              req.GetRequestForm(),
		Session:           session,
	}, nil
}

// insertSession stores sr, the stored form of req, under signature.
func (s *Store) insertSession(ctx context.Context, kind, signature string, req fosite.Requester, sr storedRequest, expires time.Time) error {
	body, err := json.Marshal(sr)
	if err != nil {
		return fmt.Errorf("store %s: encode request: %w", kind, err)
	}
	subject := ""
	if sess := req.GetSession(); sess != nil {
		subject = sess.GetSubject()
	}
	_, err = s.exec(ctx, "store "+kind,
		`INSERT INTO oauth2_sessions (kind, signature, request_id, client_id, subject, request, active, expires_at)
		 VALUES (?, ?, ?, ?, ?, ?, TRUE, ?)`,
		kind, key(signature), req.GetID(), req.GetClient().GetID(), subject, string(body), utc(expires))
	return err
}

// getSession loads a stored request, decoding its session into session.
// An inactive row is returned with fosite's inactive error for the kind.
func (s *Store) getSession(ctx context.Context, kind, signature string, session fosite.Session) (fosite.Requester, error) {
	var row struct {
		Request string `db:"request"`
		Active  bool   `db:"active"`
	}
	err := s.get(ctx, "get "+kind, &row,
		`SELECT request, active FROM oauth2_sessions WHERE kind = ? AND signature = ?`, kind, key(signature))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", fosite.ErrNotFound, kind)
	}
	if err != nil {
		return nil, err
	}
	req, _, err := s.decodeRequest(ctx, kind, row.Request, session)
	if err != nil {
		return nil, err
	}
	if !row.Active {
		switch kind {
		case kindCode:
			return req, fosite.ErrInvalidatedAuthorizeCode
		default:
			return req, fosite.ErrInactiveToken
		}
	}
	return req, nil
}

// decodeRequest decodes a stored request, its session into session, and
// loads its client.
func (s *Store) decodeRequest(ctx context.Context, kind, body string, session fosite.Session) (*fosite.Request, storedRequest, error) {
	var sr storedRequest
	if err := json.Unmarshal([]byte(body), &sr); err != nil {
		return nil, sr, fmt.Errorf("get %s: decode request: %w", kind, err)
	}
	if session != nil {
		if err := json.Unmarshal(sr.Session, session); err != nil {
			return nil, sr, fmt.Errorf("get %s: decode session: %w", kind, err)
		}
	}
	client, err := s.GetClient(ctx, sr.ClientID)
	if err != nil {
		return nil, sr, fmt.Errorf("get %s: client: %w", kind, err)
	}
	return &fosite.Request{
		ID:                sr.ID,
		RequestedAt:       sr.RequestedAt,
		Client:            client,
		RequestedScope:    sr.RequestedScope,
		GrantedScope:      sr.GrantedScope,
		RequestedAudience: sr.RequestedAudience,
		GrantedAudience:   sr.GrantedAudience,
		Form:              sr.Form,
		Session:           session,
	}, sr, nil
}

func (s *Store) deleteSession(ctx context.Context, kind, signature string) error {
	_, err := s.exec(ctx, "delete "+kind, `DELETE FROM oauth2_sessions WHERE kind = ? AND signature = ?`, kind, key(signature))
	return err
}

// CreateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
func (s *Store) CreateAuthorizeCodeSession(ctx context.Context, code string, req fosite.Requester) error {
	return s.createSession(ctx, kindCode, code, req, fosite.AuthorizeCode)
}

// GetAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage. An
// invalidated code returns the request together with
// fosite.ErrInvalidatedAuthorizeCode, so fosite can revoke what it issued.
func (s *Store) GetAuthorizeCodeSession(ctx context.Context, code string, session fosite.Session) (fosite.Requester, error) {
	return s.getSession(ctx, kindCode, code, session)
}

// InvalidateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage as
// one conditional update: of concurrent redemptions exactly one succeeds,
// the others get fosite.ErrInvalidatedAuthorizeCode.
func (s *Store) InvalidateAuthorizeCodeSession(ctx context.Context, code string) error {
	n, err := s.exec(ctx, "invalidate code",
		`UPDATE oauth2_sessions SET active = FALSE WHERE kind = ? AND signature = ? AND active = TRUE`,
		kindCode, key(code))
	if err != nil {
		return err
	}
	if n == 0 {
		return fosite.ErrInvalidatedAuthorizeCode
	}
	return nil
}

// CreateAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *Store) CreateAccessTokenSession(ctx context.Context, signature string, req fosite.Requester) error {
	return s.createSession(ctx, kindAccess, signature, req, fosite.AccessToken)
}

// GetAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *Store) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.getSession(ctx, kindAccess, signature, session)
}

// DeleteAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *Store) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return s.deleteSession(ctx, kindAccess, signature)
}

// CreateRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *Store) CreateRefreshTokenSession(ctx context.Context, signature, _ string, req fosite.Requester) error {
	return s.createSession(ctx, kindRefresh, signature, req, fosite.RefreshToken)
}

// GetRefreshTokenSession implements oauth2.RefreshTokenStorage. A rotated or
// revoked token returns its request with fosite.ErrInactiveToken, which
// fosite treats as reuse and answers by revoking the whole family.
func (s *Store) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.getSession(ctx, kindRefresh, signature, session)
}

// DeleteRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *Store) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.deleteSession(ctx, kindRefresh, signature)
}

// RotateRefreshToken implements oauth2.RefreshTokenStorage: it deactivates
// the presented refresh token (one conditional update, so of concurrent
// refreshes exactly one rotates; the others get fosite.ErrInactiveToken) and
// deletes the access tokens of the same grant.
func (s *Store) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	n, err := s.exec(ctx, "rotate refresh token",
		`UPDATE oauth2_sessions SET active = FALSE WHERE kind = ? AND signature = ? AND active = TRUE`,
		kindRefresh, key(signature))
	if err != nil {
		return err
	}
	if n == 0 {
		return fosite.ErrInactiveToken
	}
	_, err = s.exec(ctx, "rotate refresh token",
		`DELETE FROM oauth2_sessions WHERE kind = ? AND request_id = ?`, kindAccess, requestID)
	return err
}

// RevokeRefreshToken implements oauth2.TokenRevocationStorage (RFC 7009
// §2.1): every refresh token of the grant becomes inactive.
func (s *Store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	_, err := s.exec(ctx, "revoke refresh token",
		`UPDATE oauth2_sessions SET active = FALSE WHERE kind = ? AND request_id = ?`, kindRefresh, requestID)
	return err
}

// RevokeAccessToken implements oauth2.TokenRevocationStorage.
func (s *Store) RevokeAccessToken(ctx context.Context, requestID string) error {
	_, err := s.exec(ctx, "revoke access token",
		`DELETE FROM oauth2_sessions WHERE kind = ? AND request_id = ?`, kindAccess, requestID)
	return err
}

// CreatePKCERequestSession implements pkce.PKCERequestStorage.
func (s *Store) CreatePKCERequestSession(ctx context.Context, signature string, req fosite.Requester) error {
	return s.createSession(ctx, kindPKCE, signature, req, fosite.AuthorizeCode)
}

// GetPKCERequestSession implements pkce.PKCERequestStorage.
func (s *Store) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.getSession(ctx, kindPKCE, signature, session)
}

// DeletePKCERequestSession implements pkce.PKCERequestStorage.
func (s *Store) DeletePKCERequestSession(ctx context.Context, signature string) error {
	return s.deleteSession(ctx, kindPKCE, signature)
}

// CreateOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *Store) CreateOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) error {
	return s.createSession(ctx, kindOIDC, code, req, fosite.AuthorizeCode)
}

// GetOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *Store) GetOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) (fosite.Requester, error) {
	return s.getSession(ctx, kindOIDC, code, req.GetSession())
}

// DeleteOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *Store) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return s.deleteSession(ctx, kindOIDC, code)
}

// parFallback is how long a pushed authorization request lives when its
// session sets no expiry (fosite's default lifetime).
const parFallback = 5 * time.Minute

// CreatePARSession implements fosite.PARStorage: it keeps a pushed
// authorization request (RFC 9126 §2) under its request_uri, without the
// parameters that authenticated the client, until the session's
// PushedAuthorizeRequestContext expiry.
func (s *Store) CreatePARSession(ctx context.Context, requestURI string, req fosite.AuthorizeRequester) error {
	sr, err := encodeRequest(kindPAR, req)
	if err != nil {
		return err
	}
	form := url.Values{}
	for k, v := range req.GetRequestForm() {
		form[k] = append([]string(nil), v...)
	}
	for _, k := range clientCredentials {
		form.Del(k)
	}
	sr.Form = form
	if u := req.GetRedirectURI(); u != nil {
		sr.RedirectURI = u.String()
	}
	sr.ResponseTypes = req.GetResponseTypes()
	sr.State = req.GetState()
	sr.ResponseMode = string(req.GetResponseMode())
	expires := time.Time{}
	if sess := req.GetSession(); sess != nil {
		expires = sess.GetExpiresAt(fosite.PushedAuthorizeRequestContext)
	}
	if expires.IsZero() {
		expires = s.now().Add(parFallback)
	}
	return s.insertSession(ctx, kindPAR, requestURI, req, sr, expires)
}

// GetPARSession implements fosite.PARStorage. An unknown, consumed or
// expired request_uri is fosite.ErrNotFound. The session comes back as an
// *openid.DefaultSession, the type twostep's provider stores.
func (s *Store) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	var row struct {
		Request string `db:"request"`
	}
	err := s.get(ctx, "get "+kindPAR, &row,
		`SELECT request FROM oauth2_sessions WHERE kind = ? AND signature = ? AND expires_at > ?`,
		kindPAR, key(requestURI), utc(s.now()))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", fosite.ErrNotFound, kindPAR)
	}
	if err != nil {
		return nil, err
	}
	req, sr, err := s.decodeRequest(ctx, kindPAR, row.Request, &openid.DefaultSession{})
	if err != nil {
		return nil, err
	}
	ar := &fosite.AuthorizeRequest{
		ResponseTypes:        sr.ResponseTypes,
		State:                sr.State,
		ResponseMode:         fosite.ResponseModeType(sr.ResponseMode),
		HandledResponseTypes: fosite.Arguments{},
		Request:              *req,
	}
	if ar.ResponseTypes == nil {
		ar.ResponseTypes = fosite.Arguments{}
	}
	if sr.RedirectURI != "" {
		if ar.RedirectURI, err = url.Parse(sr.RedirectURI); err != nil {
			return nil, fmt.Errorf("get %s: decode redirect_uri: %w", kindPAR, err)
		}
	}
	return ar, nil
}

// DeletePARSession implements fosite.PARStorage as one conditional delete:
// a request_uri is used once (RFC 9126 §4), so of concurrent consumers
// exactly one deletes it and the others get fosite.ErrNotFound.
func (s *Store) DeletePARSession(ctx context.Context, requestURI string) error {
	n, err := s.exec(ctx, "delete "+kindPAR,
		`DELETE FROM oauth2_sessions WHERE kind = ? AND signature = ?`, kindPAR, key(requestURI))
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", fosite.ErrNotFound, kindPAR)
	}
	return nil
}

// DeleteExpired removes expired codes, tokens, login sessions (with the
// record of the clients they signed in to), pending authorization
// requests and remembered devices, and throttling counters
// whose last block ended more than forget ago. Each
// is a plain DELETE on an indexed expiry, so it is safe to run on every
// instance at once. It returns how many rows went.
func (s *Store) DeleteExpired(ctx context.Context, forget time.Duration) (int64, error) {
	now := utc(s.now())
	var total int64
	for _, q := range []struct {
		query string
		arg   time.Time
	}{
		{`DELETE FROM oauth2_sessions WHERE expires_at < ?`, now},
		{`DELETE FROM login_sessions WHERE expires_at < ?`, now},
		{`DELETE FROM auth_requests WHERE expires_at < ?`, now},
		{`DELETE FROM remembered_devices WHERE expires_at < ?`, now},
		{`DELETE FROM session_clients WHERE expires_at < ?`, now},
		{`DELETE FROM account_tokens WHERE expires_at < ?`, now},
		{`DELETE FROM throttles WHERE blocked_until < ?`, now.Add(-forget)},
	} {
		n, err := s.exec(ctx, "delete expired", q.query, q.arg)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}
