package main

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTrustedProxies(t *testing.T) {
	trusted, err := parseTrustedProxies(" 10.0.0.0/8, 192.0.2.7,2001:db8::/32 ,::ffff:172.16.0.0/108")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		proxies trustedProxies
		peer    string
		xff     []string
		want    string
	}{
		{"no proxies configured", nil, "10.0.0.1:1234", []string{"198.51.100.1"}, "10.0.0.1:1234"},
		{"untrusted peer", trusted, "203.0.113.5:1234", []string{"198.51.100.1"}, "203.0.113.5:1234"},
		{"trusted peer, no header", trusted, "10.0.0.1:1234", nil, "10.0.0.1:1234"},
		{"trusted peer", trusted, "10.0.0.1:1234", []string{"198.51.100.1"}, "198.51.100.1:0"},
		{"single trusted address", trusted, "192.0.2.7:80", []string{"198.51.100.1"}, "198.51.100.1:0"},
		{"neighbour of a trusted address", trusted, "192.0.2.8:80", []string{"198.51.100.1"}, "192.0.2.8:80"},
		{"spoofed entries left of the client", trusted, "10.0.0.1:1234", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1:0"},
		{"two proxies", trusted, "10.0.0.1:1234", []string{"198.51.100.1, 10.2.2.2"}, "198.51.100.1:0"},
		{"several headers", trusted, "10.0.0.1:1234", []string{"6.6.6.6", "198.51.100.1, 10.2.2.2"}, "198.51.100.1:0"},
		{"only proxies", trusted, "10.0.0.1:1234", []string{"10.3.3.3, 10.2.2.2"}, "10.3.3.3:0"},
		{"garbage from the client", trusted, "10.0.0.1:1234", []string{"garbage, 10.2.2.2"}, "10.2.2.2:0"},
		{"garbage from the proxy", trusted, "10.0.0.1:1234", []string{"198.51.100.1, garbage"}, "10.0.0.1:1234"},
		{"empty header", trusted, "10.0.0.1:1234", []string{""}, "10.0.0.1:1234"},
		{"address with a port", trusted, "10.0.0.1:1234", []string{"198.51.100.1:4711"}, "198.51.100.1:0"},
		{"IPv6 client", trusted, "10.0.0.1:1234", []string{"2001:db9::1"}, "[2001:db9::1]:0"},
		{"IPv6 client with a port", trusted, "10.0.0.1:1234", []string{"[2001:db9::1]:4711"}, "[2001:db9::1]:0"},
		{"IPv6 proxy", trusted, "[2001:db8::5]:443", []string{"198.51.100.1"}, "198.51.100.1:0"},
		{"IPv4-mapped peer", trusted, "[::ffff:10.0.0.1]:443", []string{"198.51.100.1"}, "198.51.100.1:0"},
		{"IPv4-mapped prefix", trusted, "172.16.5.5:443", []string{"198.51.100.1"}, "198.51.100.1:0"},
		{"IPv4-mapped client", trusted, "10.0.0.1:1234", []string{"::ffff:198.51.100.1"}, "198.51.100.1:0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tc.proxies.clientAddr(r); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseTrustedProxiesErrors(t *testing.T) {
	for _, in := range []string{"10.0.0.0/33", "proxy.example", "10.0.0.1/8/8", "10.0.0.256"} {
		_, err := parseTrustedProxies("10.0.0.0/8," + in)
		if err == nil || !strings.Contains(err.Error(), "--trusted-proxies") || !strings.Contains(err.Error(), in) {
			t.Errorf("%q: got error %v, want one naming --trusted-proxies and the entry", in, err)
		}
	}
	if p, err := parseTrustedProxies(""); err != nil || len(p) != 0 {
		t.Errorf("empty: got %v, %v; want no proxies", p, err)
	}
}

// TestServeFlagErrors: a bad throttle, proxy, device or logo flag stops
// serve with one clear line before it opens anything.
func TestServeFlagErrors(t *testing.T) {
	dir := t.TempDir()
	gif := filepath.Join(dir, "logo.gif")
	big := filepath.Join(dir, "big.svg")
	if err := os.WriteFile(gif, []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, []byte("<svg>"+strings.Repeat(" ", 300<<10)+"</svg>"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.png")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"lock before back-off", []string{"--login-backoff-after", "5", "--login-lock-after", "3"},
			"--login-backoff-after 5, --login-lock-after 3, --login-lock-for 15m0s: throttle: the lock (after 3 failures) must come after"},
		{"no back-off", []string{"--ip-backoff-after", "0"}, "--ip-backoff-after 0, --ip-lock-after 100"},
		{"ip lock before back-off", []string{"--ip-backoff-after", "20", "--ip-lock-after", "20"}, "--ip-lock-after 20"},
		{"no lock", []string{"--login-lock-for", "0s"}, "--login-lock-for 0s"},
		{"bad proxy", []string{"--trusted-proxies", "10.0.0.0/8,nonsense"}, `--trusted-proxies: "nonsense"`},
		{"negative remember", []string{"--remember-device", "-1h"}, "--remember-device must not be negative"},
		{"no back-channel interval", []string{"--backchannel-interval", "0s"}, "--backchannel-interval must be positive"},
		{"logo not an image", []string{"--brand-logo", gif}, "--brand-logo " + gif + ": the logo is not a PNG, JPEG or SVG image"},
		{"logo too large", []string{"--brand-logo", big}, "--brand-logo " + big + ": the logo is larger than 256 KiB"},
		{"no logo file", []string{"--brand-logo", missing}, "--brand-logo " + missing + ": open " + missing},
		{"unknown registration", []string{"--registration", "anyone"}, `--registration: registration mode "anyone": want closed, invite or open`},
		{"open registration without mail", []string{"--registration", "open"}, "--registration open needs mail to verify addresses"},
		{"smtp without from", []string{"--smtp-url", "smtp://mail.example.com"}, "--smtp-url needs --mail-from"},
		{"from without smtp", []string{"--mail-from", "login@example.com"}, "--mail-from needs --smtp-url"},
		{"smtp not a url", []string{"--smtp-url", "mail.example.com:587", "--mail-from", "login@example.com"},
			"--smtp-url, --mail-from: mail: SMTP URL must start with smtp:// or smtps://"},
		{"smtp password kept out", []string{"--smtp-url", "http://u:hunter2-secret@mail.example.com", "--mail-from", "login@example.com"},
			"--smtp-url, --mail-from: mail:"},
		{"short passwords", []string{"--min-password-length", "6"}, "--min-password-length 6: want 8 to 128"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "flags.db")
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--database", "sqlite:" + db}, tc.args...)
			err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is more than one line", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q quotes the SMTP password", err)
			}
			if _, err := os.Stat(db + ".key"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("serve created the key file before checking its flags")
			}
		})
	}
}
