// Package oidc is twostep's OAuth 2.0 and OpenID Connect surface, composed
// from fosite: the authorization endpoint (which sends the browser through
// the login and consent steps and issues a code only after both factors),
// the pushed authorization request endpoint (RFC 9126),
// the token endpoint (authorization_code with PKCE S256, refresh_token with
// rotation, client_credentials), userinfo, revocation (RFC 7009),
// introspection (RFC 7662), RP-initiated logout, back-channel logout
// (queued logout tokens, delivered by RunBackchannel), discovery and the
// JWKS.
//
// ID tokens are signed RS256, or ES256 for clients registered with it,
// with keys kept in the database, one signing key per algorithm; a rotated
// key stays in the JWKS for a retention period, until the tokens it signed
// have expired.
package oidc
