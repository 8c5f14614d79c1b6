package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBrandAndStylesheet starts serve with a brand name and logo: every
// page shows them, and the stylesheet and logo the pages link to are served
// cacheable, without cookies, while the pages keep a CSP that allows no
// inline style.
func TestBrandAndStylesheet(t *testing.T) {
	const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 4 4"><rect width="4" height="4"/></svg>`
	logo := filepath.Join(t.TempDir(), "logo.svg")
	if err := os.WriteFile(logo, []byte(svg), 0o600); err != nil {
		t.Fatal(err)
	}
	in := startServer(t, "", nil, "--brand-name", "Acme Login", "--brand-logo", logo)
	b := newBrowser(t, "unused://")
	req, err := http.NewRequest(http.MethodGet, in.issuer+"/login", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Language", "fr-FR,fr;q=0.9,en;q=0.8")
	p := b.do(req)
	for _, want := range []string{`<html lang="fr">`, "<title>Se connecter · Acme Login</title>", `alt="Acme Login"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("login page lacks %s:\n%s", want, p.body)
		}
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "style-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy: got %q, want style-src 'self' and nothing inline", csp)
	}
	for _, tc := range []struct {
		re, contentType, body string
	}{
		{`<link rel="stylesheet" href="([^"]+)">`, "text/css; charset=utf-8", "prefers-color-scheme: dark"},
		{`<img src="([^"]+)" alt="Acme Login">`, "image/svg+xml", svg},
	} {
		m := regexp.MustCompile(tc.re).FindStringSubmatch(p.body)
		if m == nil {
			t.Errorf("login page has no %s", tc.re)
			continue
		}
		resp, err := http.Get(in.issuer + m[1])
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tc.body) {
			t.Errorf("GET %s: got %d, want 200 with %q", m[1], resp.StatusCode, tc.body)
		}
		if got := resp.Header.Get("Content-Type"); got != tc.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", m[1], got, tc.contentType)
		}
		if got := resp.Header.Get("Cache-Control"); !strings.Contains(got, "max-age=31536000") {
			t.Errorf("GET %s: Cache-Control %q, want a long max-age", m[1], got)
		}
		if c := resp.Header.Values("Set-Cookie"); len(c) != 0 {
			t.Errorf("GET %s: sets cookies %q, want none", m[1], c)
		}
	}
}
