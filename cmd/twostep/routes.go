package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/twostep/twostep/consent"
	"github.com/twostep/twostep/login"
	"github.com/twostep/twostep/oidc"
	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// routes is twostep's whole HTTP surface.
func routes(mux *http.ServeMux, p *oidc.Provider, lh *login.Handler, ch *consent.Handler, pages *templates.Pages, store *storage.Store, m *metrics) {
	mux.Handle("GET /.well-known/openid-configuration", p.Discovery())
	mux.Handle("GET /.well-known/jwks.json", p.JWKS())
	mux.Handle("GET /oauth2/auth", p.Authorize())
	mux.Handle("POST /oauth2/auth", p.Authorize())
	mux.Handle("POST /oauth2/token", p.Token())
	mux.Handle("POST /oauth2/par", p.PushedAuthorize())
	mux.Handle("GET /userinfo", p.UserInfo())
	mux.Handle("POST /userinfo", p.UserInfo())
	mux.Handle("POST /oauth2/revoke", p.Revoke())
	mux.Handle("POST /oauth2/introspect", p.Introspect())
	mux.Handle("GET /oauth2/logout", p.Logout())
	mux.Handle("POST /oauth2/logout", p.Logout())
	lh.Routes(mux)    // /login and its steps, /account, /join, /register
	ch.Routes(mux)    // GET, POST /consent
	pages.Routes(mux) // GET /static/twostep.css and, with a brand logo, /static/logo
	mux.Handle("GET /healthz", healthz())
	mux.Handle("GET /readyz", readyz(store))
	mux.Handle("GET /metrics", m.Handler())
}

// healthz answers while the process is up.
func healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
}

// readyz answers 200 while the database is reachable, 503 otherwise.
func readyz(store *storage.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := store.Ping(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("database unavailable\n"))
			return
		}
		w.Write([]byte("ok\n"))
	})
}

// maxBody bounds every request body; larger ones fail to parse (400).
const maxBody = 1 << 20

// hsts asks browsers to reach the issuer's host, and its subdomains, only
// over https for a year (RFC 6797).
const hsts = "max-age=31536000; includeSubDomains"

// middlewareConfig is what the middleware needs beyond the handler.
type middlewareConfig struct {
	log   *slog.Logger
	pages *templates.Pages
	m     *metrics
	// https sends HSTS on every response.
	https bool
	// proxies are the reverse proxies whose X-Forwarded-For is believed.
	proxies trustedProxies
}

// middleware gives every request an ID, finds the client's address behind
// trusted proxies, bounds the body, sets HSTS on an https issuer, recovers
// a panic into a plain 500, and logs and counts the outcome.
func middleware(next http.Handler, c middlewareConfig) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID()
		w.Header().Set("X-Request-Id", id)
		if c.https {
			w.Header().Set("Strict-Transport-Security", hsts)
		}
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		r.RemoteAddr = c.proxies.clientAddr(r)
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				c.log.Error("panic", "panic", v, "request_id", id, "method", r.Method, "path", r.URL.Path)
				if !rec.wrote {
					c.pages.Failure(rec, r, false)
				}
			}
			elapsed := time.Since(start)
			c.m.observe(r, rec.status, elapsed)
			c.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
				"duration_ms", elapsed.Milliseconds(), "ip", hostOf(r.RemoteAddr), "request_id", id)
		}()
		next.ServeHTTP(rec, r)
	})
}

// requestIDKey is the context key of the request's ID.
type requestIDKey struct{}

// requestIDOf is the ID the middleware gave r, or "".
func requestIDOf(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}

func newRequestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
