package main

// Load benchmarks: the real server, started through run, driven over
// loopback HTTP by benchClients concurrent clients. Each benchmark runs
// as the sub-benchmark "sqlite" on a temp SQLite database and as
// "postgres" on a fresh schema of the server in TWOSTEP_TEST_POSTGRES
// (skipped when that is empty). Each reports req/s (for BenchmarkLogin:
// whole logins per second), the p50 and p99 latency of one request (one
// login), and, from the server's own /metrics once the load has ended,
// its goroutines, open database connections and heap in use. Run them
// with
//
//	go test -run '^$' -bench . -benchtime 5s ./cmd/twostep/
//
// and see BENCHMARKS.md for the targets and the last results. Extra flags
// for `twostep serve` (e.g. "--db-max-open-conns 4") may be given in
// TWOSTEP_BENCH_SERVE_FLAGS to compare settings without editing code.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"

	"github.com/twostep/twostep/login"
	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/storage/storagetest"
)

const (
	// benchClients is how many clients send requests at once.
	benchClients = 50
	// benchUsers is how many users BenchmarkLogin seeds. A TOTP code is
	// good once per user and 30-second step, so the users are taken in
	// turn: at 65 logins/s (the two-core argon2id ceiling) a user comes
	// round again after about a minute.
	benchUsers      = 4000
	benchPassword   = "correct horse battery staple"
	benchClientID   = "bench-app"
	benchRedirect   = "http://127.0.0.1:9/callback"
	benchLoginScope = "openid profile email"
)

// benchDatabase is the database a benchmark's server runs on: its DSN
// and the environment the server and the CLI see.
type benchDatabase struct {
	dsn    string
	getenv func(string) string
}

// benchEachDatabase runs fn as the sub-benchmark "sqlite", on a temp SQLite
// file whose secret key file twostep creates beside it, and as "postgres",
// on a fresh schema of the server in TWOSTEP_TEST_POSTGRES with
// TWOSTEP_SECRET_KEY set (skipped when the variable is empty, failed when
// it is empty under CI=true).
func benchEachDatabase(b *testing.B, fn func(b *testing.B, db benchDatabase)) {
	b.Run("sqlite", func(b *testing.B) {
		fn(b, benchDatabase{dsn: storagetest.SQLiteDSN(b), getenv: func(string) string { return "" }})
	})
	b.Run("postgres", func(b *testing.B) {
		fn(b, benchDatabase{dsn: storagetest.PostgresDSN(b), getenv: secretEnv})
	})
}

// benchServer is a twostep started through run, as `twostep serve` starts,
// for a benchmark: its database, its log in a temp file, and one HTTP
// transport shared by every client.
type benchServer struct {
	issuer   string
	database string
	getenv   func(string) string
	logPath  string
	// transport keeps a connection per client alive across requests.
	transport *http.Transport
	// http is a cookie-less client on the shared transport that does not
	// follow redirects.
	http *http.Client
}

// startBenchServer prepares the database (seed may write to it through
// the store, before the server starts), runs `twostep serve` on it on a
// free port and waits for /healthz. The server stops when the benchmark
// ends.
func startBenchServer(tb testing.TB, db benchDatabase, seed func(ctx context.Context, srv *benchServer, store *storage.Store) error) *benchServer {
	tb.Helper()
	dir := tb.TempDir()
	srv := &benchServer{
		database: db.dsn,
		getenv:   db.getenv,
		logPath:  filepath.Join(dir, "twostep.log"),
		transport: &http.Transport{
			Proxy:               nil, // loopback: never a proxy from the environment
			MaxIdleConns:        4 * benchClients,
			MaxIdleConnsPerHost: 2 * benchClients,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	srv.http = &http.Client{
		Transport:     srv.transport,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	tb.Cleanup(srv.transport.CloseIdleConnections)

	ctx := context.Background()
	if seed != nil {
		flags := dbFlags{database: srv.database}
		store, _, err := flags.open(ctx, env{getenv: srv.getenv, stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}, storage.Options{})
		if err != nil {
			tb.Fatalf("open store to seed: %v", err)
		}
		err = seed(ctx, srv, store)
		store.Close()
		if err != nil {
			tb.Fatalf("seed: %v", err)
		}
	}

	// The log goes to a file, as `twostep serve 2>file` would write it:
	// one write per line, so the benchmark pays what a deployment pays.
	logFile, err := os.Create(srv.logPath)
	if err != nil {
		tb.Fatal(err)
	}
	addr := freeBenchAddr(tb)
	srv.issuer = "http://" + addr
	args := []string{"serve", "--addr", addr, "--issuer", srv.issuer, "--database", srv.database}
	args = append(args, strings.Fields(os.Getenv("TWOSTEP_BENCH_SERVE_FLAGS"))...)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, args, srv.getenv, strings.NewReader(""), io.Discard, logFile)
	}()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("serve returned %v\n%s", err, srv.logTail())
		}
		logFile.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-done:
			done <- err // for the cleanup
			tb.Fatalf("serve exited early: %v\n%s", err, srv.logTail())
		default:
		}
		resp, err := srv.http.Get(srv.issuer + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return srv
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("server did not become healthy: %v\n%s", err, srv.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeBenchAddr returns a free loopback address.
func freeBenchAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// logTail returns the last lines of the server's log, for failure messages.
func (srv *benchServer) logTail() string {
	b, err := os.ReadFile(srv.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// cli runs one twostep command against the server's database.
func (srv *benchServer) cli(tb testing.TB, stdin string, args ...string) string {
	tb.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--database", srv.database)
	if err := run(context.Background(), args, srv.getenv, strings.NewReader(stdin), &out, &errOut); err != nil {
		tb.Fatalf("twostep %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// addClient registers a confidential client through the CLI, as an
// operator would, and returns its secret.
func (srv *benchServer) addClient(tb testing.TB, id string) string {
	tb.Helper()
	out := srv.cli(tb, "", "client", "add", "--id", id, "--redirect-uri", benchRedirect, "--name", "Bench App", "--json")
	var creds struct {
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &creds); err != nil || creds.ClientSecret == "" {
		tb.Fatalf("client add --json printed %q: %v", out, err)
	}
	return creds.ClientSecret
}

// benchResult is what one load run measured.
type benchResult struct {
	ok      int // successful operations
	elapsed time.Duration
}

// benchLoad calls op once per b.Loop iteration, from benchClients goroutines at
// once, and reports throughput and latency percentiles of op. The
// benchmark function runs once (b.Loop), so setup happens once. op gets
// its worker's index (0..benchClients-1) and the iteration's index.
//
// It also reads srv's /metrics before, during (four times a second) and after
// the load, reports the gauges that would grow if the server leaked (see
// benchGrowth), and fails the benchmark if the open database connections
// ever exceed the pool's bound.
func benchLoad(b *testing.B, srv *benchServer, op func(ctx context.Context, worker, i int) error) benchResult {
	b.Helper()
	ctx := context.Background()
	runtime.GC() // so heap in use is what is live, before and after alike
	before, err := srv.metrics(ctx)
	if err != nil {
		b.Fatalf("metrics before the load: %v", err)
	}
	work := make(chan int)
	lat := make([][]time.Duration, benchClients)
	var failed atomic.Int64
	var errOnce sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for w := range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				start := time.Now()
				err := op(ctx, w, i)
				d := time.Since(start)
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				lat[w] = append(lat[w], d)
			}
		}()
	}
	stopSampling := make(chan struct{})
	peak := make(chan benchMetrics, 1)
	go func() { peak <- srv.peakMetrics(ctx, stopSampling) }()
	cpu0 := sampleBenchCPU()
	start := time.Now()
	i := 0
	for b.Loop() {
		work <- i
		i++
	}
	close(work)
	wg.Wait()
	res := benchResult{elapsed: time.Since(start)}
	cpu1 := sampleBenchCPU()
	close(stopSampling)
	during := <-peak
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	res.ok = len(all)
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed; the first: %v", n, int(n)+res.ok, firstErr)
	}
	b.ReportMetric(float64(res.ok)/res.elapsed.Seconds(), "req/s")
	b.ReportMetric(benchMS(benchPercentile(all, 50)), "p50-ms")
	b.ReportMetric(benchMS(benchPercentile(all, 99)), "p99-ms")
	if cpu0.ok && cpu1.ok {
		// How much CPU this process (server and clients) had, and how
		// much other processes took meanwhile: results are comparable
		// only between runs that had the machine to themselves. On
		// PostgreSQL the database server's own processes are counted
		// apart, as postgres-cores: they are part of the system measured.
		self := cpu1.self - cpu0.self
		pg := cpu1.postgres - cpu0.postgres
		b.ReportMetric(float64(self)/float64(res.elapsed), "cpu-cores")
		if strings.HasPrefix(srv.database, "postgres") {
			b.ReportMetric(float64(pg)/float64(res.elapsed), "postgres-cores")
		} else {
			pg = 0
		}
		b.ReportMetric(float64(max(cpu1.busy-cpu0.busy-self-pg, 0))/float64(res.elapsed), "others-cores")
	}
	srv.benchGrowth(b, before, during)
	return res
}

// benchDrain reads and closes a response body so its connection is reused.
func benchDrain(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// get fetches u and fails unless it answers 200.
func (srv *benchServer) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return srv.do(req)
}

// postForm posts form with HTTP Basic client authentication and fails
// unless it answers 200.
func (srv *benchServer) postForm(ctx context.Context, path, clientID, secret string, form url.Values) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	return srv.do(req)
}

// do sends req and returns the body, failing unless it answers 200.
func (srv *benchServer) do(req *http.Request) ([]byte, error) {
	resp, err := srv.http.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := benchDrain(resp)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %.200s", req.Method, req.URL.Path, resp.Status, body)
	}
	return body, nil
}

func BenchmarkDiscovery(b *testing.B) {
	benchEachDatabase(b, func(b *testing.B, db benchDatabase) {
		srv := startBenchServer(b, db, nil)
		u := srv.issuer + "/.well-known/openid-configuration"
		benchLoad(b, srv, func(ctx context.Context, _, _ int) error {
			body, err := srv.get(ctx, u)
			if err == nil && !bytes.Contains(body, []byte(`"jwks_uri"`)) {
				err = fmt.Errorf("discovery document without jwks_uri: %.200s", body)
			}
			return err
		})
	})
}

func BenchmarkJWKS(b *testing.B) {
	benchEachDatabase(b, func(b *testing.B, db benchDatabase) {
		srv := startBenchServer(b, db, nil)
		u := srv.issuer + "/.well-known/jwks.json"
		benchLoad(b, srv, func(ctx context.Context, _, _ int) error {
			body, err := srv.get(ctx, u)
			if err == nil && !bytes.Contains(body, []byte(`"kid"`)) {
				err = fmt.Errorf("JWKS without a kid: %.200s", body)
			}
			return err
		})
	})
}

// clientCredentials asks for a token with the client_credentials grant
// and returns the access token.
func (srv *benchServer) clientCredentials(ctx context.Context, clientID, secret string) (string, error) {
	body, err := srv.postForm(ctx, "/oauth2/token", clientID, secret, url.Values{"grant_type": {"client_credentials"}})
	if err != nil {
		return "", err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("token response without access_token: %.200s", body)
	}
	return tok.AccessToken, nil
}

func BenchmarkClientCredentials(b *testing.B) {
	benchEachDatabase(b, func(b *testing.B, db benchDatabase) {
		var secret string
		srv := startBenchServer(b, db, func(_ context.Context, srv *benchServer, _ *storage.Store) error {
			secret = srv.addClient(b, benchClientID)
			return nil
		})
		benchLoad(b, srv, func(ctx context.Context, _, _ int) error {
			_, err := srv.clientCredentials(ctx, benchClientID, secret)
			return err
		})
	})
}

// benchTokens is how many access tokens BenchmarkIntrospection asks about,
// in turn.
const benchTokens = 1000

func BenchmarkIntrospection(b *testing.B) {
	benchEachDatabase(b, func(b *testing.B, db benchDatabase) {
		var secret string
		srv := startBenchServer(b, db, func(_ context.Context, srv *benchServer, _ *storage.Store) error {
			secret = srv.addClient(b, benchClientID)
			return nil
		})
		tokens := make([]string, benchTokens)
		ctx := context.Background()
		for i := range tokens {
			var err error
			if tokens[i], err = srv.clientCredentials(ctx, benchClientID, secret); err != nil {
				b.Fatalf("issue token %d: %v", i, err)
			}
		}
		benchLoad(b, srv, func(ctx context.Context, _, i int) error {
			body, err := srv.postForm(ctx, "/oauth2/introspect", benchClientID, secret, url.Values{"token": {tokens[i%len(tokens)]}})
			if err == nil && !bytes.Contains(body, []byte(`"active":true`)) {
				err = fmt.Errorf("introspection: want an active token, got %.200s", body)
			}
			return err
		})
	})
}

// benchUser is a seeded user with a confirmed authenticator.
type benchUser struct {
	username string
	secret   string // base32 TOTP secret
	// lastStep is the last TOTP time step this benchmark used for the
	// user; the server accepts only a later one.
	lastStep atomic.Int64
}

// seedBenchUsers writes n users straight into the store, in one transaction:
// one precomputed argon2id hash (OWASP parameters) shared by all, each
// with a confirmed TOTP secret and a remembered grant of scopes for
// clientID, so no enrolment or consent page is needed.
func seedBenchUsers(ctx context.Context, store *storage.Store, n int, clientID string, scopes []string) ([]*benchUser, error) {
	hash, err := login.NewHasher(login.DefaultParams()).Hash(benchPassword)
	if err != nil {
		return nil, err
	}
	txCtx, err := store.BeginTX(ctx)
	if err != nil {
		return nil, err
	}
	defer store.Rollback(txCtx)
	users := make([]*benchUser, n)
	for i := range users {
		raw := make([]byte, 20)
		rand.Read(raw)
		u := &benchUser{
			username: fmt.Sprintf("bench%05d", i),
			secret:   base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw),
		}
		id := fmt.Sprintf("bench-user-%05d", i)
		if err := store.CreateUser(txCtx, storage.User{
			ID: id, Username: u.username, Email: u.username + "@example.com", EmailVerified: true,
			Name: "Bench User", Groups: []string{"staff"}, PasswordHash: hash,
		}); err != nil {
			return nil, err
		}
		if err := store.ConfirmTOTP(txCtx, id, u.secret, 0, nil); err != nil {
			return nil, err
		}
		if err := store.SaveGrant(txCtx, id, clientID, scopes); err != nil {
			return nil, err
		}
		users[i] = u
	}
	return users, store.Commit(txCtx)
}

// benchLoginSteps names the parts of one login, for the breakdown in the log.
var benchLoginSteps = []string{"authorize+login page", "password", "totp+code", "token exchange"}

// BenchmarkLogin measures whole browser logins: GET authorize (→ the
// login page), POST the password (→ the code page), POST the TOTP code
// (→ authorize again, consent remembered, → the code at redirect_uri),
// then the code exchange with PKCE through golang.org/x/oauth2. Each
// login has its own cookie jar.
func BenchmarkLogin(b *testing.B) { benchEachDatabase(b, benchLogin) }

func benchLogin(b *testing.B, db benchDatabase) {
	var secret string
	var users []*benchUser
	srv := startBenchServer(b, db, func(ctx context.Context, srv *benchServer, store *storage.Store) error {
		secret = srv.addClient(b, benchClientID)
		start := time.Now()
		var err error
		users, err = seedBenchUsers(ctx, store, benchUsers, benchClientID, strings.Fields(benchLoginScope))
		b.Logf("seeded %d users in %.1fs", len(users), time.Since(start).Seconds())
		return err
	})
	conf := &oauth2.Config{
		ClientID: benchClientID, ClientSecret: secret, RedirectURL: benchRedirect,
		Endpoint: oauth2.Endpoint{
			AuthURL: srv.issuer + "/oauth2/auth", TokenURL: srv.issuer + "/oauth2/token",
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		Scopes: strings.Fields(benchLoginScope),
	}
	steps := make([][][]time.Duration, benchClients) // [worker][step][]
	for w := range steps {
		steps[w] = make([][]time.Duration, len(benchLoginSteps))
	}
	var waits atomic.Int64
	res := benchLoad(b, srv, func(ctx context.Context, w, i int) error {
		u := users[i%len(users)]
		step := time.Now().Unix() / 30
		if u.lastStep.Load() >= step {
			// The user already logged in during this step: wait for the
			// next one (it does not happen below benchUsers/30 logins/s).
			waits.Add(1)
			time.Sleep(time.Until(time.Unix((step+1)*30, 0)))
			step++
		}
		u.lastStep.Store(step)
		d, err := srv.login(ctx, conf, u, step)
		for k := range d {
			steps[w][k] = append(steps[w][k], d[k])
		}
		return err
	})
	for k, name := range benchLoginSteps {
		var all []time.Duration
		for w := range steps {
			all = append(all, steps[w][k]...)
		}
		slices.Sort(all)
		b.Logf("%-22s p50 %6.1f ms  p99 %6.1f ms", name, benchMS(benchPercentile(all, 50)), benchMS(benchPercentile(all, 99)))
	}
	b.Logf("%d logins in %.1fs; %d waited for a fresh TOTP step", res.ok, res.elapsed.Seconds(), waits.Load())
}

// login runs one whole login for u with the code of TOTP step, returning
// how long each of benchLoginSteps took.
func (srv *benchServer) login(ctx context.Context, conf *oauth2.Config, u *benchUser, step int64) ([]time.Duration, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := &http.Client{
		Transport: srv.transport,
		Jar:       jar,
		Timeout:   30 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), benchRedirect) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	var d []time.Duration
	t := time.Now()
	lap := func() {
		now := time.Now()
		d = append(d, now.Sub(t))
		t = now
	}

	state, nonce, verifier := randomHex(), randomHex(), oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL(state, oauth2.SetAuthURLParam("nonce", nonce), oauth2.S256ChallengeOption(verifier))
	p, err := benchFetch(ctx, c, http.MethodGet, authURL, nil)
	if err != nil {
		return d, err
	}
	if p.url.Path != "/login" || p.status != http.StatusOK {
		return d, fmt.Errorf("authorize: got %s, want the login page", p)
	}
	lap()

	p, err = benchFetch(ctx, c, http.MethodPost, srv.issuer+"/login", url.Values{
		"csrf_token": {benchCSRF(p.body)}, "username": {u.username}, "password": {benchPassword},
	})
	if err != nil {
		return d, err
	}
	if p.url.Path != "/login/totp" || p.status != http.StatusOK {
		return d, fmt.Errorf("password: got %s, want the code page: %.300s", p, p.body)
	}
	lap()

	code, err := totp.GenerateCodeCustom(u.secret, time.Unix(step*30, 0), totp.ValidateOpts{
		Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return d, err
	}
	p, err = benchFetch(ctx, c, http.MethodPost, srv.issuer+"/login/totp", url.Values{
		"csrf_token": {benchCSRF(p.body)}, "code": {code},
	})
	if err != nil {
		return d, err
	}
	loc, _ := url.Parse(p.header.Get("Location"))
	if (p.status != http.StatusFound && p.status != http.StatusSeeOther) || loc == nil || !strings.HasPrefix(loc.String(), benchRedirect) {
		return d, fmt.Errorf("totp code of %s: got %s (Location %q), want a redirect to the client: %.300s", u.username, p, p.header.Get("Location"), p.body)
	}
	if loc.Query().Get("state") != state || loc.Query().Get("code") == "" {
		return d, fmt.Errorf("redirect to the client: got %s, want a code and state %q", loc, state)
	}
	lap()

	tok, err := conf.Exchange(context.WithValue(ctx, oauth2.HTTPClient, srv.http), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return d, fmt.Errorf("exchange: %w", err)
	}
	if idToken, _ := tok.Extra("id_token").(string); idToken == "" {
		return d, errors.New("token response without id_token")
	}
	lap()
	return d, nil
}

// benchPage is a fetched response with its body read.
type benchPage struct {
	status int
	url    *url.URL
	header http.Header
	body   string
}

func (p benchPage) String() string { return fmt.Sprintf("%d %s", p.status, p.url) }

// benchFetch sends a GET, or a POST of form, following redirects as c does.
func benchFetch(ctx context.Context, c *http.Client, method, u string, form url.Values) (benchPage, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return benchPage{}, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return benchPage{}, err
	}
	b, err := benchDrain(resp)
	if err != nil {
		return benchPage{}, err
	}
	return benchPage{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(b)}, nil
}

// benchCSRF returns the value of the page's csrf_token field, or "".
func benchCSRF(body string) string {
	const field = `name="csrf_token" value="`
	i := strings.Index(body, field)
	if i < 0 {
		return ""
	}
	rest := body[i+len(field):]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}
