package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twostep/twostep/storage/storagetest"
)

// tcpProxy forwards TCP connections from a local port to a target, and can
// be cut (every connection dropped, the port closed) and restored on the
// same port: a database that goes away and comes back, without touching
// the real server other tests share.
type tcpProxy struct {
	t      *testing.T
	addr   string // where it listens, the same after a restore
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, addr: ln.Addr().String(), target: target, conns: map[net.Conn]bool{}}
	p.serve(ln)
	t.Cleanup(func() {
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return // closed by cut
			}
			server, err := net.Dial("tcp", p.target)
			if err != nil {
				client.Close()
				continue
			}
			if !p.track(client, server) {
				return
			}
			p.wg.Add(2)
			go p.pipe(client, server)
			go p.pipe(server, client)
		}
	}()
}

// track records an open pair, or closes it when the proxy was cut in the
// meantime.
func (p *tcpProxy) track(a, b net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		a.Close()
		b.Close()
		return false
	}
	p.conns[a], p.conns[b] = true, true
	return true
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// cut closes the port and every open connection.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// restore listens again on the same port.
func (p *tcpProxy) restore() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("restore proxy on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// viaProxy returns the PostgreSQL DSN of a fresh schema rewritten to reach
// the server through a proxy it starts.
func viaProxy(t *testing.T) (string, *tcpProxy) {
	t.Helper()
	dsn := storagetest.PostgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	p := startProxy(t, target)
	u.Host = p.addr
	return u.String(), p
}

// TestDatabaseOutage cuts the database in the middle of a login: the
// pages say so with a 503 (never a 500), /readyz reports it, and once the
// database is back the same login completes with the same code, since the
// failed attempt wrote nothing.
func TestDatabaseOutage(t *testing.T) {
	dsn, proxy := viaProxy(t)
	in := startServer(t, dsn, secretEnv)
	addUser(t, in, "alice", racePassword)
	rp := newRelyingParty(t, in)
	e := enrol(t, rp, "alice")
	alice, key, enrolStep := e.b, e.key, e.step
	c := http.DefaultClient

	b := newBrowser(t, testRedirect)
	ar := rp.newAuthRequest()
	totpPage := b.submit(b.get(ar.url), map[string]string{"username": "alice", "password": racePassword})
	if totpPage.url.Path != "/login/totp" {
		t.Fatalf("after the password: got %s, want /login/totp", totpPage)
	}
	code := laterCode(t, key, enrolStep)
	// A code issued before the outage, for a token request during it.
	other, otherAR := newCode(t, alice, rp)

	proxy.cut()

	p := b.submit(totpPage, map[string]string{"code": code})
	if p.status != http.StatusServiceUnavailable {
		t.Errorf("code submitted during the outage: got %s, want 503\n%s", p, p.body)
	}
	if ct := p.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(p.body, "temporarily unavailable") {
		t.Errorf("code submitted during the outage: got Content-Type %q and body\n%s\nwant an HTML page saying the service is temporarily unavailable", ct, p.body)
	}
	if got := getStatus(t, c, in.issuer+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: got %d, want 503", got)
	}
	if got := getStatus(t, c, in.issuer+"/healthz"); got != http.StatusOK {
		t.Errorf("/healthz during the outage: got %d, want 200 (the process is up)", got)
	}
	// The token endpoint says so in OAuth terms (RFC 6749 §4.1.2.1's
	// temporarily_unavailable), not server_error, nor invalid_client,
	// which would tell the client its credentials are wrong.
	tok := postOAuth(c, tokenURL(in.issuer), rp.config.ClientID, rp.config.ClientSecret, codeGrant(other, otherAR))
	if tok.status != http.StatusServiceUnavailable || tok.field("error") != "temporarily_unavailable" {
		t.Errorf("token request during the outage: got %s, want 503 temporarily_unavailable", tok)
	}
	// A new login starts at the authorization endpoint.
	if p := newBrowser(t, testRedirect).get(rp.newAuthRequest().url); p.status != http.StatusServiceUnavailable {
		t.Errorf("authorization request during the outage: got %s (Location %q), want 503\n%s", p, p.header.Get("Location"), p.body)
	}

	proxy.restore()

	if got := getStatus(t, c, in.issuer+"/readyz"); got != http.StatusOK {
		t.Errorf("/readyz after the database is back: got %d, want 200", got)
	}
	// The same code on the same page: the failed attempt consumed neither
	// the time step nor the login step.
	p = b.submit(totpPage, map[string]string{"code": code})
	got, ok := codeFrom(t, p, ar)
	if !ok {
		t.Fatalf("the same code after the database is back: got %s (Location %q), want a code\n%s", p, p.header.Get("Location"), p.body)
	}
	if res := postOAuth(c, tokenURL(in.issuer), rp.config.ClientID, rp.config.ClientSecret, codeGrant(got, ar)); res.status != http.StatusOK {
		t.Errorf("exchange after the database is back: got %s, want tokens", res)
	}
	if res := postOAuth(c, tokenURL(in.issuer), rp.config.ClientID, rp.config.ClientSecret, codeGrant(other, otherAR)); res.status != http.StatusOK {
		t.Errorf("exchange of the code refused during the outage: got %s, want tokens", res)
	}
}

func getStatus(t *testing.T, c *http.Client, u string) int {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestUnreachableDatabaseAtStartup: serve with a database it cannot reach
// returns, soon and without serving, one clear line that names the
// database and not its password.
func TestUnreachableDatabaseAtStartup(t *testing.T) {
	// A port that accepts connections and never answers, like a database
	// behind a firewall that drops packets.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()

	tests := []struct {
		name string
		dsn  string
	}{
		{"connection refused", "postgres://postgres:hunter2-secret@127.0.0.1:1/x?sslmode=disable"},
		{"no answer", "postgres://postgres:hunter2-secret@" + silent.Addr().String() + "/x?sslmode=disable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := freeAddr(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				defer func() {
					if v := recover(); v != nil {
						done <- errors.New("panic: " + strings.TrimSpace(strings.ReplaceAll(toString(v), "\n", " ")))
					}
				}()
				done <- run(ctx, []string{"serve", "--addr", addr, "--issuer", "http://" + addr, "--database", tc.dsn},
					secretEnv, strings.NewReader(""), io.Discard, io.Discard)
			}()
			// Every database call is bounded by the store's 10 s query
			// timeout; twice that means serve hangs.
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Errorf("serve with an unreachable database: still starting after 20 s, want an error within the 10 s query timeout")
				return
			}
			if err == nil {
				t.Fatal("serve with an unreachable database: got nil error")
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			if strings.HasPrefix(msg, "panic: ") {
				t.Errorf("serve panicked: %s", msg)
			}
			if strings.Contains(msg, "\n") || !strings.Contains(strings.ToLower(msg), "database") {
				t.Errorf("error: got %q, want one line that mentions the database", msg)
			}
			if strings.Contains(msg, "hunter2-secret") {
				t.Errorf("error: got %q, which shows the password", msg)
			}
			if conn, err := net.Dial("tcp", addr); err == nil {
				conn.Close()
				t.Errorf("something listens on %s after serve failed to start", addr)
			}
		})
	}
}

func toString(v any) string {
	if err, ok := v.(error); ok {
		return err.Error()
	}
	if s, ok := v.(string); ok {
		return s
	}
	return "non-string panic value"
}
