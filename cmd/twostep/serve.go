package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twostep/twostep/consent"
	"github.com/twostep/twostep/login"
	"github.com/twostep/twostep/oidc"
	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// serveFlags are the flags of `serve` (and `demo`).
type serveFlags struct {
	db              dbFlags
	addr            string
	issuer          string
	totpIssuer      string
	logFormat       string
	sessionLifetime time.Duration
	maxOpenConns    int
	maxIdleConns    int
	connMaxLifetime time.Duration
	cleanupEvery    time.Duration
	shutdownTimeout time.Duration
}

func (f *serveFlags) register(fs *flag.FlagSet, e env, defaultDB string) {
	f.db.register(fs, e)
	if e.getenv("TWOSTEP_DATABASE") == "" && defaultDB != "" {
		fs.Lookup("database").DefValue = defaultDB
		fs.Set("database", defaultDB)
	}
	fs.StringVar(&f.addr, "addr", envOr(e, "TWOSTEP_ADDR", "127.0.0.1:8080"), "listen address (env TWOSTEP_ADDR)")
	fs.StringVar(&f.issuer, "issuer", envOr(e, "TWOSTEP_ISSUER", "http://localhost:8080"), "issuer URL, as clients reach it (env TWOSTEP_ISSUER)")
	fs.StringVar(&f.totpIssuer, "totp-issuer", envOr(e, "TWOSTEP_TOTP_ISSUER", "twostep"), "name shown in authenticator apps")
	fs.StringVar(&f.logFormat, "log-format", envOr(e, "TWOSTEP_LOG_FORMAT", "text"), "log format: text or json")
	fs.DurationVar(&f.sessionLifetime, "session-lifetime", 12*time.Hour, "how long a completed login lasts")
	fs.IntVar(&f.maxOpenConns, "db-max-open-conns", 0, "maximum open database connections (0: 4 on SQLite, 20 on PostgreSQL)")
	fs.IntVar(&f.maxIdleConns, "db-max-idle-conns", 0, "maximum idle database connections (0: as many as may be open)")
	fs.DurationVar(&f.connMaxLifetime, "db-conn-max-lifetime", 0, "maximum lifetime of a database connection (0: forever)")
	fs.DurationVar(&f.cleanupEvery, "cleanup-interval", 5*time.Minute, "how often expired codes, tokens and sessions are deleted")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long shutdown waits for requests in flight")
}

func envOr(e env, key, def string) string {
	if v := e.getenv(key); v != "" {
		return v
	}
	return def
}

func runServe(ctx context.Context, e env, args []string) error {
	srv, err := start(ctx, e, "serve", "", args)
	if err != nil {
		return err
	}
	defer srv.Close()
	return srv.serve(ctx)
}

// start parses the flags of serve (or demo, whose database defaults to
// defaultDB) and starts the server they describe, listening but not yet
// serving.
func start(ctx context.Context, e env, name, defaultDB string, args []string) (*server, error) {
	fs := newFlagSet(name, e)
	var f serveFlags
	f.register(fs, e, defaultDB)
	if err := parseNoArgs(fs, args); err != nil {
		return nil, err
	}
	logger, err := newLogger(f.logFormat, e.stderr)
	if err != nil {
		return nil, err
	}
	return newServer(ctx, e, f, logger)
}

func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	default:
		return nil, fmt.Errorf("--log-format must be text or json, got %q", format)
	}
}

// server is a running twostep: its store, handlers and listener.
type server struct {
	flags    serveFlags
	log      *slog.Logger
	store    *storage.Store
	provider *oidc.Provider
	pages    *templates.Pages
	metrics  *metrics
	mux      *http.ServeMux
	listener net.Listener
}

// newServer opens the database, migrates it, builds the handlers and
// listens. Every start-up error is returned before anything is served.
func newServer(ctx context.Context, e env, f serveFlags, logger *slog.Logger) (*server, error) {
	issuer, err := checkIssuer(f.issuer)
	if err != nil {
		return nil, err
	}
	store, k, err := f.db.open(ctx, e, storage.Options{
		MaxOpenConns: f.maxOpenConns, MaxIdleConns: f.maxIdleConns, ConnMaxLifetime: f.connMaxLifetime,
	})
	if err != nil {
		return nil, err
	}
	s, err := buildServer(ctx, f, logger, store, k, issuer)
	if err != nil {
		store.Close()
		return nil, err
	}
	return s, nil
}

func buildServer(ctx context.Context, f serveFlags, logger *slog.Logger, store *storage.Store, k keys, issuer *url.URL) (*server, error) {
	pages, err := templates.Parse()
	if err != nil {
		return nil, err
	}
	m := newMetrics(store)
	lh, err := login.New(login.Config{
		Store: store, Pages: pages, Logger: logger, TOTPIssuer: f.totpIssuer,
		SecureCookie: issuer.Scheme == "https", SessionLifetime: f.sessionLifetime, Events: m,
	})
	if err != nil {
		return nil, err
	}
	provider, err := oidc.New(ctx, oidc.Config{
		Issuer: issuer.String(), Store: store, Pages: pages, Logger: logger, Sessions: lh,
		HMACSecret: k.hmac, Events: m,
	})
	if err != nil {
		return nil, err
	}
	ch := consent.New(store, pages, logger, lh)
	mux := http.NewServeMux()
	routes(mux, provider, lh, ch, store, m)
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", f.addr, err)
	}
	return &server{flags: f, log: logger, store: store, provider: provider, pages: pages, metrics: m, mux: mux, listener: ln}, nil
}

// checkIssuer requires an absolute http(s) URL without query or fragment.
func checkIssuer(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--issuer %q must be an absolute http(s) URL without query or fragment", raw)
	}
	return u, nil
}

// Close releases the listener and the database.
func (s *server) Close() error {
	s.listener.Close()
	return s.store.Close()
}

// serve serves until ctx ends, then shuts down gracefully: it stops
// accepting, lets requests in flight finish (up to the shutdown timeout,
// on a fresh context) and returns.
func (s *server) serve(ctx context.Context) error {
	httpServer := &http.Server{
		Handler:           middleware(s.mux, s.log, s.pages, s.metrics),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	go s.cleanup(ctx)
	errc := make(chan error, 1)
	go func() { errc <- httpServer.Serve(s.listener) }()
	s.log.Info("twostep listening", "addr", s.listener.Addr().String(), "issuer", s.flags.issuer, "database", s.store.Dialect())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.flags.shutdownTimeout)
	defer cancel()
	s.log.Info("shutting down")
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// cleanup deletes expired rows periodically until ctx ends. Every instance
// may run it: the deletes are idempotent.
func (s *server) cleanup(ctx context.Context) {
	if s.flags.cleanupEvery <= 0 {
		return
	}
	t := time.NewTicker(s.flags.cleanupEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.store.DeleteExpired(ctx, 24*time.Hour)
			if err != nil {
				s.log.Warn("cleanup", "err", err)
				continue
			}
			s.log.Debug("cleanup", "deleted", n)
		}
	}
}
