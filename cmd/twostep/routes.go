package main

import (
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
func routes(mux *http.ServeMux, p *oidc.Provider, lh *login.Handler, ch *consent.Handler, store *storage.Store, m *metrics) {
	mux.Handle("GET /.well-known/openid-configuration", p.Discovery())
	mux.Handle("GET /.well-known/jwks.json", p.JWKS())
	mux.Handle("GET /oauth2/auth", p.Authorize())
	mux.Handle("POST /oauth2/auth", p.Authorize())
	mux.Handle("POST /oauth2/token", p.Token())
	mux.Handle("GET /userinfo", p.UserInfo())
	mux.Handle("POST /userinfo", p.UserInfo())
	mux.Handle("POST /oauth2/revoke", p.Revoke())
	mux.Handle("POST /oauth2/introspect", p.Introspect())
	mux.Handle("GET /oauth2/logout", p.Logout())
	mux.Handle("POST /oauth2/logout", p.Logout())
	lh.Routes(mux) // GET, POST /login and /login/totp
	ch.Routes(mux) // GET, POST /consent
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

// middleware gives every request an ID, bounds its body, recovers a panic
// into a plain 500, and logs and counts the outcome.
func middleware(next http.Handler, log *slog.Logger, pages *templates.Pages, m *metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID()
		w.Header().Set("X-Request-Id", id)
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				log.Error("panic", "panic", v, "request_id", id, "method", r.Method, "path", r.URL.Path)
				if !rec.wrote {
					pages.Failure(rec, r, false)
				}
			}
			elapsed := time.Since(start)
			m.observe(r, rec.status, elapsed)
			log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
				"duration_ms", elapsed.Milliseconds(), "request_id", id)
		}()
		next.ServeHTTP(rec, r)
	})
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
