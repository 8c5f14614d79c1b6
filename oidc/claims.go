package oidc

import (
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/twostep/twostep/storage"
)

// userClaims returns the claims the granted scopes release about u
// (OpenID Connect Core §5.4), without `sub`.
func userClaims(u storage.User, granted fosite.Arguments) map[string]any {
	c := map[string]any{}
	if granted.Has("email") {
		c["email"] = u.Email
		c["email_verified"] = u.EmailVerified
	}
	if granted.Has("profile") {
		c["name"] = u.Name
		c["preferred_username"] = u.Username
	}
	if granted.Has("groups") {
		groups := u.Groups
		if groups == nil {
			groups = []string{}
		}
		c["groups"] = groups
	}
	return c
}

// newSession builds the fosite session for a user who completed the login:
// the ID token says when the second factor succeeded (auth_time), which
// factors were checked and by which path (amr and acr, as the login
// recorded them), and releases the claims of the granted scopes.
func newSession(u storage.User, login storage.LoginSession, requestedAt time.Time, granted fosite.Arguments) *openid.DefaultSession {
	return &openid.DefaultSession{
		Claims: &jwt.IDTokenClaims{
			Subject:                             u.ID,
			AuthTime:                            login.AuthTime.UTC(),
			RequestedAt:                         requestedAt.UTC(),
			AuthenticationMethodsReferences:     login.AMR,
			AuthenticationContextClassReference: sessionACR(login),
			Extra:                               userClaims(u, granted),
		},
		Headers:  &jwt.Headers{},
		Subject:  u.ID,
		Username: u.Username,
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
