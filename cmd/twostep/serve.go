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
	"os"
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
	adminAddr       string
	issuer          string
	totpIssuer      string
	brandName       string
	brandLogo       string
	logFormat       string
	sessionLifetime time.Duration
	maxOpenConns    int
	maxIdleConns    int
	connMaxLifetime time.Duration
	cleanupEvery    time.Duration
	auditRetention  time.Duration
	shutdownTimeout time.Duration
	rememberDevice  time.Duration
	// backchannelEvery is how often due back-channel logouts are looked
	// for, and the unit of their retry back-off.
	backchannelEvery time.Duration
	// Password throttling: per username, and per client address.
	loginBackoffAfter int
	loginLockAfter    int
	loginLockFor      time.Duration
	ipBackoffAfter    int
	ipLockAfter       int
	trustedProxies    string
	// Accounts: who may create one, the mail that invitations, email
	// verifications and password resets need, and the password policy.
	registration string
	mail         mailFlags
	passwords    policyFlags
}

// throttleBase is the first delay of the password back-off; it doubles
// with each further failure up to the lock.
const throttleBase = time.Second

func (f *serveFlags) register(fs *flag.FlagSet, e env, defaultDB string) {
	f.db.register(fs, e)
	if e.getenv("TWOSTEP_DATABASE") == "" && defaultDB != "" {
		fs.Lookup("database").DefValue = defaultDB
		fs.Set("database", defaultDB)
	}
	fs.StringVar(&f.addr, "addr", envOr(e, "TWOSTEP_ADDR", "127.0.0.1:8080"), "listen address (env TWOSTEP_ADDR)")
	fs.StringVar(&f.adminAddr, "admin-addr", e.getenv("TWOSTEP_ADMIN_ADDR"),
		"listen address of the admin JSON API, whose bearer token is TWOSTEP_ADMIN_TOKEN (env TWOSTEP_ADMIN_ADDR; empty: off)")
	fs.StringVar(&f.issuer, "issuer", envOr(e, "TWOSTEP_ISSUER", "http://localhost:8080"), "issuer URL, as clients reach it (env TWOSTEP_ISSUER)")
	fs.StringVar(&f.totpIssuer, "totp-issuer", envOr(e, "TWOSTEP_TOTP_ISSUER", "twostep"), "name shown in authenticator apps")
	fs.StringVar(&f.brandName, "brand-name", envOr(e, "TWOSTEP_BRAND_NAME", "twostep"), "name shown in the pages' titles and header (env TWOSTEP_BRAND_NAME)")
	fs.StringVar(&f.brandLogo, "brand-logo", e.getenv("TWOSTEP_BRAND_LOGO"),
		"PNG, JPEG or SVG file of at most 256 KiB shown at the top of every page (env TWOSTEP_BRAND_LOGO)")
	fs.StringVar(&f.logFormat, "log-format", envOr(e, "TWOSTEP_LOG_FORMAT", "text"), "log format: text or json")
	fs.DurationVar(&f.sessionLifetime, "session-lifetime", 12*time.Hour, "how long a completed login lasts")
	fs.IntVar(&f.maxOpenConns, "db-max-open-conns", 0, "maximum open database connections (0: 4 on SQLite, 20 on PostgreSQL)")
	fs.IntVar(&f.maxIdleConns, "db-max-idle-conns", 0, "maximum idle database connections (0: as many as may be open)")
	fs.DurationVar(&f.connMaxLifetime, "db-conn-max-lifetime", 0, "maximum lifetime of a database connection (0: forever)")
	fs.DurationVar(&f.cleanupEvery, "cleanup-interval", 5*time.Minute, "how often expired codes, tokens and sessions are deleted")
	fs.DurationVar(&f.auditRetention, "audit-retention", 90*24*time.Hour, "how long audit events are kept (0: forever)")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long shutdown waits for requests in flight")
	fs.DurationVar(&f.rememberDevice, "remember-device", 0, `how long a browser may skip the code after "remember this device", e.g. 720h (0: never)`)
	fs.DurationVar(&f.backchannelEvery, "backchannel-interval", oidc.DefaultBackchannelInterval,
		"how often back-channel logouts due for delivery are looked for; failed ones are retried after 3, 9, 27 and 81 intervals")
	account, ip := login.DefaultAccountThrottle(), login.DefaultIPThrottle()
	fs.IntVar(&f.loginBackoffAfter, "login-backoff-after", account.After, "wrong passwords for one username before each further one is delayed (1s, doubling)")
	fs.IntVar(&f.loginLockAfter, "login-lock-after", account.LockAfter, "wrong passwords for one username from which it is locked for --login-lock-for")
	fs.DurationVar(&f.loginLockFor, "login-lock-for", account.Lock, "how long a username or address is locked after too many wrong passwords")
	fs.IntVar(&f.ipBackoffAfter, "ip-backoff-after", ip.After, "wrong passwords from one client address before each further one is delayed")
	fs.IntVar(&f.ipLockAfter, "ip-lock-after", ip.LockAfter, "wrong passwords from one client address from which it is locked for --login-lock-for")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", e.getenv("TWOSTEP_TRUSTED_PROXIES"),
		"comma-separated addresses or CIDR prefixes of reverse proxies whose X-Forwarded-For is believed (env TWOSTEP_TRUSTED_PROXIES)")
	fs.StringVar(&f.registration, "registration", envOr(e, "TWOSTEP_REGISTRATION", string(login.RegistrationClosed)),
		"who may create an account: closed (administrators add users), invite (also invitees, from `twostep user invite`) or open (anyone who verifies an email address; needs mail) (env TWOSTEP_REGISTRATION)")
	f.mail.register(fs, e)
	f.passwords.register(fs)
}

// throttles are the password throttling policies the flags describe, or
// one clear error naming the flags of the one that cannot work.
func (f *serveFlags) throttles() (account, ip login.Backoff, err error) {
	account = login.Backoff{After: f.loginBackoffAfter, Base: throttleBase, LockAfter: f.loginLockAfter, Lock: f.loginLockFor}
	if err := account.Validate(); err != nil {
		return account, ip, fmt.Errorf("--login-backoff-after %d, --login-lock-after %d, --login-lock-for %s: %w",
			f.loginBackoffAfter, f.loginLockAfter, f.loginLockFor, err)
	}
	ip = login.Backoff{After: f.ipBackoffAfter, Base: throttleBase, LockAfter: f.ipLockAfter, Lock: f.loginLockFor}
	if err := ip.Validate(); err != nil {
		return account, ip, fmt.Errorf("--ip-backoff-after %d, --ip-lock-after %d, --login-lock-for %s: %w",
			f.ipBackoffAfter, f.ipLockAfter, f.loginLockFor, err)
	}
	return account, ip, nil
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
	// login sends some mail off the request path; Close waits for it.
	login    *login.Handler
	pages    *templates.Pages
	metrics  *metrics
	mux      *http.ServeMux
	listener net.Listener
	https    bool
	proxies  trustedProxies
	// admin serves the admin API on adminListener; both nil without
	// --admin-addr.
	admin         http.Handler
	adminListener net.Listener
}

// settings are the checked flags that need more than parsing.
type settings struct {
	issuer      *url.URL
	account, ip login.Backoff
	proxies     trustedProxies
	remember    time.Duration
	// adminToken is the admin API's bearer token; "" without --admin-addr.
	adminToken string
	// pages are the templates with the brand the flags describe.
	pages *templates.Pages
	// registration, mailer (nil: no mail) and policy are the account
	// settings.
	registration login.Registration
	mailer       login.Mailer
	policy       login.PasswordPolicy
}

// check validates the flags that parsing alone cannot, before anything is
// opened.
func (f *serveFlags) check() (settings, error) {
	var s settings
	var err error
	if s.issuer, err = checkIssuer(f.issuer); err != nil {
		return s, err
	}
	if s.account, s.ip, err = f.throttles(); err != nil {
		return s, err
	}
	if s.proxies, err = parseTrustedProxies(f.trustedProxies); err != nil {
		return s, err
	}
	if f.rememberDevice < 0 {
		return s, fmt.Errorf("--remember-device must not be negative, got %s", f.rememberDevice)
	}
	s.remember = f.rememberDevice
	if f.backchannelEvery <= 0 {
		return s, fmt.Errorf("--backchannel-interval must be positive, got %s", f.backchannelEvery)
	}
	brand := templates.Brand{Name: f.brandName}
	if f.brandLogo != "" {
		if brand.Logo, err = readLogo(f.brandLogo); err != nil {
			return s, fmt.Errorf("--brand-logo %s: %w", f.brandLogo, err)
		}
	}
	if s.pages, err = templates.Parse(brand); err != nil {
		return s, err
	}
	if s.registration, err = login.ParseRegistration(f.registration); err != nil {
		return s, fmt.Errorf("--registration: %w", err)
	}
	if s.mailer, err = f.mail.mailer(); err != nil {
		return s, err
	}
	if s.registration == login.RegistrationOpen && s.mailer == nil {
		return s, errors.New("--registration open needs mail to verify addresses: set --smtp-url and --mail-from")
	}
	if s.policy, err = f.passwords.policy(); err != nil {
		return s, err
	}
	return s, nil
}

// readLogo reads a logo file, no more of it than could be accepted.
func readLogo(path string) (templates.Logo, error) {
	fh, err := os.Open(path)
	if err != nil {
		return templates.Logo{}, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, templates.MaxLogoSize+1))
	if err != nil {
		return templates.Logo{}, err
	}
	return templates.NewLogo(data)
}

// newServer opens the database, migrates it, builds the handlers and
// listens. Every start-up error is returned before anything is served.
func newServer(ctx context.Context, e env, f serveFlags, logger *slog.Logger) (*server, error) {
	set, err := f.check()
	if err != nil {
		return nil, err
	}
	if set.adminToken, err = adminToken(f.adminAddr, e.getenv); err != nil {
		return nil, err
	}
	f.db.log = logger
	store, k, err := f.db.open(ctx, e, storage.Options{
		MaxOpenConns: f.maxOpenConns, MaxIdleConns: f.maxIdleConns, ConnMaxLifetime: f.connMaxLifetime,
	})
	if err != nil {
		return nil, err
	}
	s, err := buildServer(ctx, f, set, logger, store, k)
	if err != nil {
		store.Close()
		return nil, err
	}
	return s, nil
}

func buildServer(ctx context.Context, f serveFlags, set settings, logger *slog.Logger, store *storage.Store, k keyRing) (*server, error) {
	pages := set.pages
	m := newMetrics(store)
	audit := &auditor{store: store, log: logger, metrics: m, now: time.Now}
	https := set.issuer.Scheme == "https"
	lh, err := login.New(login.Config{
		Store: store, Pages: pages, Logger: logger, TOTPIssuer: f.totpIssuer,
		SecureCookie: https, SessionLifetime: f.sessionLifetime, Audit: audit.record,
		RememberDevice: set.remember, AccountThrottle: set.account, IPThrottle: set.ip,
		BaseURL: set.issuer.String(), Mailer: set.mailer, Registration: set.registration, Policy: set.policy,
	})
	if err != nil {
		return nil, err
	}
	provider, err := oidc.New(ctx, oidc.Config{
		Issuer: set.issuer.String(), Store: store, Pages: pages, Logger: logger, Sessions: lh,
		HMACSecret: k.hmac(), RotatedHMACSecrets: k.rotatedHMAC(), Audit: audit.record,
		BackchannelInterval: f.backchannelEvery,
	})
	if err != nil {
		return nil, err
	}
	ch := consent.New(store, pages, logger, lh, audit.record)
	mux := http.NewServeMux()
	routes(mux, provider, lh, ch, pages, store, m)
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", f.addr, err)
	}
	s := &server{
		flags: f, log: logger, store: store, provider: provider, login: lh, pages: pages, metrics: m, mux: mux, listener: ln,
		https: https, proxies: set.proxies,
	}
	if f.adminAddr != "" {
		if s.adminListener, err = net.Listen("tcp", f.adminAddr); err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen on --admin-addr %s: %w", f.adminAddr, err)
		}
		s.admin = newAdminAPI(store, audit, logger, set.adminToken, accountSettings{
			policy: set.policy, mailer: set.mailer, pages: pages, baseURL: set.issuer.String(),
		}).handler()
	}
	return s, nil
}

// checkIssuer requires an absolute http(s) URL without query or fragment.
func checkIssuer(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--issuer %q must be an absolute http(s) URL without query or fragment", raw)
	}
	return u, nil
}

// Close releases the listener and, once the mail being sent is out, the
// database.
func (s *server) Close() error {
	s.listener.Close()
	if s.adminListener != nil {
		s.adminListener.Close()
	}
	s.login.Wait()
	return s.store.Close()
}

// serve serves until ctx ends, then shuts down gracefully: it stops
// accepting, lets requests in flight finish (up to the shutdown timeout,
// on a fresh context) and returns.
func (s *server) serve(ctx context.Context) error {
	httpServer := &http.Server{
		Handler: middleware(s.mux, middlewareConfig{
			log: s.log, pages: s.pages, m: s.metrics, https: s.https, proxies: s.proxies,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	go s.cleanup(ctx)
	// Back-channel logouts are delivered until serve returns, and the
	// store (closed after it) is not used after that.
	deliverCtx, stopDelivery := context.WithCancel(ctx)
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		s.provider.RunBackchannel(deliverCtx)
	}()
	defer func() {
		stopDelivery()
		<-delivered
	}()
	servers := []*http.Server{httpServer}
	errc := make(chan error, 2)
	go func() { errc <- httpServer.Serve(s.listener) }()
	s.log.Info("twostep listening", "addr", s.listener.Addr().String(), "issuer", s.flags.issuer, "database", s.store.Dialect())
	if s.adminListener != nil {
		// The admin API has a server of its own: none of the pages'
		// middleware, and nothing of it reachable on the public address.
		adminServer := &http.Server{
			Handler:           s.admin,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		servers = append(servers, adminServer)
		go func() { errc <- adminServer.Serve(s.adminListener) }()
		s.log.Info("admin API listening", "addr", s.adminListener.Addr().String())
	}
	// A server that stops by itself stops the others too.
	pending := len(servers)
	var errs []error
	select {
	case err := <-errc:
		pending--
		errs = append(errs, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.flags.shutdownTimeout)
	defer cancel()
	s.log.Info("shutting down")
	for _, hs := range servers {
		if err := hs.Shutdown(shutdownCtx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown: %w", err))
		}
	}
	for ; pending > 0; pending-- {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
			n, err := s.store.DeleteExpired(ctx, login.ForgetFailures)
			if err == nil && s.flags.auditRetention > 0 {
				var old int64
				old, err = s.store.DeleteAuditEventsBefore(ctx, time.Now().Add(-s.flags.auditRetention))
				n += old
			}
			if err != nil {
				s.log.Warn("cleanup", "err", err)
				continue
			}
			s.log.Debug("cleanup", "deleted", n)
		}
	}
}
