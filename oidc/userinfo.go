package oidc

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/twostep/twostep/storage"
)

// UserInfo serves /userinfo (OpenID Connect Core §5.3): GET or POST, the
// access token in the Authorization header or, for POST, in the form body
// (RFC 6750 §2.1, §2.2). It answers with the claims the token's scopes
// release and those the authorization request's claims parameter asked
// userinfo for (§5.5), read fresh from the user record.
func (p *Provider) UserInfo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		token := bearerToken(r)
		if token == "" {
			bearerError(w, http.StatusUnauthorized, "invalid_request", "No access token was sent.")
			return
		}
		session := newEmptySession()
		use, ar, err := p.oauth.IntrospectToken(ctx, token, fosite.AccessToken, session)
		if errors.Is(err, storage.ErrUnavailable) {
			p.log.ErrorContext(ctx, "userinfo", "err", err, "request_id", w.Header().Get("X-Request-Id"))
			bearerError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The service is temporarily unavailable.")
			return
		}
		if err != nil || use != fosite.AccessToken {
			bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid or expired.")
			return
		}
		if !ar.GetGrantedScopes().Has("openid") {
			bearerError(w, http.StatusForbidden, "insufficient_scope", "The access token was not granted the openid scope.")
			return
		}
		u, err := p.store.GetUser(ctx, ar.GetSession().GetSubject())
		if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Disabled) {
			bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token's user no longer exists or is disabled.")
			return
		}
		if err != nil {
			p.log.ErrorContext(ctx, "userinfo", "err", err, "request_id", w.Header().Get("X-Request-Id"))
			status, code := http.StatusInternalServerError, "server_error"
			if errors.Is(err, storage.ErrUnavailable) {
				status, code = http.StatusServiceUnavailable, "temporarily_unavailable"
			}
			bearerError(w, status, code, "The user could not be loaded.")
			return
		}
		claims := userClaims(u, ar.GetGrantedScopes(), session.UserInfoClaims)
		claims["sub"] = u.ID
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(claims)
	})
}

// bearerToken takes the access token from the Authorization header or, on
// a form-encoded POST, from the access_token body parameter. The query
// string is never read: tokens there leak into logs.
func bearerToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return h[7:]
	}
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err == nil {
			return r.PostForm.Get("access_token")
		}
	}
	return ""
}

// bearerError answers as RFC 6750 §3 describes.
func bearerError(w http.ResponseWriter, status int, code, description string) {
	description = errorDescription(description)
	w.Header().Set("WWW-Authenticate", `Bearer error="`+code+`", error_description="`+description+`"`)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}
