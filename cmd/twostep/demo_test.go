package main

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
)

// TestDemo runs `twostep demo` as the README says and signs in to the demo
// application with the password it prints: the application must end up
// showing ID token claims that say both factors were checked.
func TestDemo(t *testing.T) {
	issuer, password, stdout := startDemo(t)
	if !strings.Contains(stdout.String(), issuer+"/demo/") {
		t.Errorf("demo output does not say where to go:\n%s", stdout)
	}

	b := newBrowser(t, "unused://")
	p := b.get(issuer + "/demo/")
	if !strings.Contains(p.body, `href="/demo/login"`) {
		t.Fatalf("demo start page: got %s\n%s", p, p.body)
	}
	p = b.get(issuer + "/demo/login")
	p = b.submit(p, map[string]string{"username": demoUser, "password": password})
	key, err := otp.NewKeyFromURL(otpauthURI(p.body))
	if err != nil {
		t.Fatalf("demo enrolment page: %v\n%s", err, p.body)
	}
	p = b.submit(p, map[string]string{"code": codeAt(t, key, time.Now())})
	_, p = b.recoveryCodes(p)
	p = b.submit(p, map[string]string{"decision": "allow"})
	if p.status != http.StatusOK || p.url.Path != "/demo/callback" {
		t.Fatalf("after consent: got %s\n%s", p, p.body)
	}
	for _, want := range []string{"ID token claims", "&#34;amr&#34;", "&#34;otp&#34;", "demo@example.com", "Sign out"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("demo result page lacks %q:\n%s", want, p.body)
		}
	}
}

// startDemo runs `twostep demo` on a free port and returns its issuer, the
// demo user's password, read from what it prints, and all it prints.
func startDemo(t *testing.T) (issuer, password string, stdout *syncBuffer) {
	t.Helper()
	addr := freeAddr(t)
	issuer = "http://" + addr
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--addr", addr, "--issuer", issuer,
			"--database", "sqlite:" + filepath.Join(t.TempDir(), "demo.db")},
			func(string) string { return "" }, strings.NewReader(""), stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo returned %v", err)
		}
	})
	re := regexp.MustCompile(`Password +(\S+)`)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			return issuer, m[1], stdout
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo printed no password:\n%s\n%s", stdout, stderr)
		}
	}
}
