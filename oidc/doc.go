// Package oidc is twostep's OAuth 2.0 and OpenID Connect surface, composed
// from fosite: the authorization endpoint (which sends the browser through
// the login and consent steps and issues a code only after both factors),
// the token endpoint (authorization_code with PKCE S256, refresh_token with
// rotation, client_credentials), userinfo, revocation (RFC 7009),
// introspection (RFC 7662), RP-initiated logout, discovery and the JWKS.
//
// ID tokens are signed RS256 with keys kept in the database; a rotated key
// stays in the JWKS for a retention period so tokens it signed still verify.
package oidc
