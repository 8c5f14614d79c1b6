package oidc

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/twostep/twostep/storage"
)

// userClaims returns the claims about u that the granted scopes release
// (OpenID Connect Core §5.4), and those named in requested, without `sub`.
func userClaims(u storage.User, granted fosite.Arguments, requested []string) map[string]any {
	c := map[string]any{}
	for _, name := range storage.UserClaims() {
		if !granted.Has(storage.ClaimScope(name)) && !slices.Contains(requested, name) {
			continue
		}
		switch name {
		case "name":
			c[name] = u.Name
		case "preferred_username":
			c[name] = u.Username
		case "email":
			c[name] = u.Email
		case "email_verified":
			c[name] = u.EmailVerified
		case "groups":
			groups := u.Groups
			if groups == nil {
				groups = []string{}
			}
			c[name] = groups
		}
	}
	return c
}

// session is the fosite session twostep keeps with its codes and tokens:
// fosite's OpenID Connect session (the ID token's claims and header), and
// the claims the claims parameter asked userinfo to release (OpenID
// Connect Core §5.5), which the access token's scopes may not cover.
type session struct {
	openid.DefaultSession
	// UserInfoClaims are released by userinfo, besides the scopes' claims.
	UserInfoClaims []string `json:"userinfo_claims,omitempty"`
}

// newEmptySession returns a session to decode a stored one into.
func newEmptySession() *session {
	return &session{DefaultSession: openid.DefaultSession{Claims: &jwt.IDTokenClaims{}, Headers: &jwt.Headers{}}}
}

// Clone implements fosite.Session; fosite clones the session of a refresh
// token for the tokens it issues.
func (s *session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	return &session{
		DefaultSession: *s.DefaultSession.Clone().(*openid.DefaultSession),
		UserInfoClaims: slices.Clone(s.UserInfoClaims),
	}
}

// newSession builds the fosite session for a user who completed the login:
// the ID token says when the second factor succeeded (auth_time), which
// factors were checked and by which path (amr and acr, as the login
// recorded them), and releases the claims of the granted scopes and those
// the claims parameter asked for.
//
// auth_time and the request's arrival are whole seconds, as the ID token
// carries them, so fosite's checks of prompt and max_age against them
// (OpenID Connect Core §3.1.2.1) see what the client will see. The arrival
// never reaches the token (idTokenSigner).
func newSession(u storage.User, login storage.LoginSession, requestedAt time.Time, granted fosite.Arguments, requested requestedClaims) *session {
	return &session{
		DefaultSession: openid.DefaultSession{
			Claims: &jwt.IDTokenClaims{
				Subject:                             u.ID,
				AuthTime:                            login.AuthTime.UTC().Truncate(time.Second),
				RequestedAt:                         requestedAt.UTC().Truncate(time.Second),
				AuthenticationMethodsReferences:     login.AMR,
				AuthenticationContextClassReference: sessionACR(login),
				Extra:                               withSID(userClaims(u, granted, requested.IDToken), login),
			},
			Headers:  &jwt.Headers{},
			Subject:  u.ID,
			Username: u.Username,
		},
		UserInfoClaims: requested.UserInfo,
	}
}

// sessionACR returns how the login ended (OpenID Connect Core §2, acr).
// Sessions from before the login recorded it all ended with a TOTP code.
func sessionACR(login storage.LoginSession) string {
	if login.ACR == "" {
		return storage.ACRTOTP
	}
	return login.ACR
}

// idTokenSigner signs ID tokens, leaving out the `rat` claim. fosite
// checks max_age and prompt against the request's arrival
// (IDTokenClaims.RequestedAt) when it issues an ID token, and writes it
// into the token as `rat`, a claim no specification defines.
type idTokenSigner struct{ jwt.Signer }

// Generate implements jwt.Signer.
func (s idTokenSigner) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	delete(claims, "rat")
	return s.Signer.Generate(ctx, claims, header)
}

// claimsRequest is what a claims parameter (OpenID Connect Core §5.5)
// asks for that twostep can give: claims it holds about users, by where
// they go, and the subject the ID token must have, if one is named.
type claimsRequest struct {
	userInfo, idToken []string
	sub               string
}

// requestedClaims are the claims of a claimsRequest that the client may
// have: those of the scopes it is registered for.
type requestedClaims struct {
	UserInfo, IDToken []string
}

// claimRequest is one member of a claims parameter: null, or an object
// saying how the claim is wanted (OpenID Connect Core §5.5.1).
type claimRequest struct {
	Essential bool  `json:"essential"`
	Value     any   `json:"value"`
	Values    []any `json:"values"`
}

// parseClaimsRequest parses a claims parameter; "" asks for nothing.
// Claims twostep does not hold are ignored (§5.5: they may be), and so
// are members other than userinfo and id_token.
func parseClaimsRequest(param string) (claimsRequest, error) {
	var req claimsRequest
	if param == "" {
		return req, nil
	}
	var raw struct {
		UserInfo map[string]*claimRequest `json:"userinfo"`
		IDToken  map[string]*claimRequest `json:"id_token"`
	}
	if err := json.Unmarshal([]byte(param), &raw); err != nil {
		return req, err
	}
	known := func(members map[string]*claimRequest) []string {
		var names []string
		for name := range members {
			if storage.ClaimScope(name) != "" {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		return names
	}
	req.userInfo, req.idToken = known(raw.UserInfo), known(raw.IDToken)
	if sub := raw.IDToken["sub"]; sub != nil {
		req.sub, _ = sub.Value.(string)
	}
	return req, nil
}

// allowed keeps the claims of the scopes a client is registered for.
func (c claimsRequest) allowed(clientScopes []string) requestedClaims {
	keep := func(names []string) []string {
		var out []string
		for _, name := range names {
			if has(clientScopes, storage.ClaimScope(name)) {
				out = append(out, name)
			}
		}
		return out
	}
	return requestedClaims{UserInfo: keep(c.userInfo), IDToken: keep(c.idToken)}
}

// scopes returns the scopes that would release the requested claims: the
// consent a user gives must cover them.
func (c requestedClaims) scopes() []string {
	var out []string
	for _, name := range append(slices.Clone(c.UserInfo), c.IDToken...) {
		if s := storage.ClaimScope(name); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
