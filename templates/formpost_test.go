package templates

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// scriptRE finds a script element and its text.
var scriptRE = regexp.MustCompile(`(?s)<script([^>]*)>(.*?)</script>`)

// TestFormPost: the form_post page posts the response's fields to the
// client in every language, escaped; the one script that submits it is
// the only thing its CSP allows beyond the usual policy, by hash; without
// scripts a button does it.
func TestFormPost(t *testing.T) {
	pages, err := Parse(Brand{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		resp       FormPost
		wantAction string
		wantFields []string
	}{
		{
			name: "code",
			resp: FormPost{Action: "https://app.example.com/cb?tenant=a&x=1", Fields: url.Values{
				"code": {"c0de"}, "state": {`s"><script>alert(1)</script>`}, "iss": {"https://id.example.com"},
			}},
			wantAction: `action="https://app.example.com/cb?tenant=a&amp;x=1"`,
			wantFields: []string{
				`<input type="hidden" name="code" value="c0de">`,
				`<input type="hidden" name="iss" value="https://id.example.com">`,
				`<input type="hidden" name="state" value="s&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">`,
			},
		},
		{
			name: "error",
			resp: FormPost{Action: "https://app.example.com/cb", Fields: url.Values{
				"error": {"access_denied"}, "error_description": {"The user said no."}, "iss": {"https://id.example.com"},
			}},
			wantAction: `action="https://app.example.com/cb"`,
			wantFields: []string{
				`<input type="hidden" name="error" value="access_denied">`,
				`<input type="hidden" name="error_description" value="The user said no.">`,
			},
		},
		{
			// html/template would turn an unknown scheme into #ZgotmplZ.
			name:       "native application's scheme",
			resp:       FormPost{Action: "com.example.app:/cb", Fields: url.Values{"code": {"c"}}},
			wantAction: `action="com.example.app:/cb"`,
			wantFields: []string{`<input type="hidden" name="code" value="c">`},
		},
	}
	for _, l := range Langs() {
		for _, tc := range tests {
			t.Run(string(l)+"/"+tc.name, func(t *testing.T) {
				w := httptest.NewRecorder()
				pages.FormPost(w, l, tc.resp)
				if w.Code != http.StatusOK {
					t.Fatalf("status: got %d, want 200", w.Code)
				}
				for h, want := range map[string]string{
					"Content-Security-Policy": FormPostCSP(),
					"Content-Type":            "text/html; charset=utf-8",
					"Cache-Control":           "no-store",
					"X-Frame-Options":         "DENY",
					"X-Content-Type-Options":  "nosniff",
				} {
					if got := w.Header().Get(h); got != want {
						t.Errorf("%s: got %q, want %q", h, got, want)
					}
				}
				body := w.Body.String()
				scripts := scriptRE.FindAllStringSubmatch(body, -1)
				if len(scripts) != 1 {
					t.Fatalf("got %d scripts, want 1:\n%s", len(scripts), body)
				}
				sum := sha256.Sum256([]byte(scripts[0][2]))
				hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
				if want := ContentSecurityPolicy + "; script-src " + hash; FormPostCSP() != want {
					t.Errorf("CSP: got %q, want %q (the page's script by its hash, nothing else)", FormPostCSP(), want)
				}
				// Everything else is as on every page.
				checkPage(t, scriptRE.ReplaceAllString(body, ""))
				for _, want := range append([]string{
					`<form method="post" ` + tc.wantAction + `>`,
					"<noscript>", `<button type="submit">` + l.T("button.continue") + `</button>`,
					`<html lang="` + string(l) + `">`,
				}, tc.wantFields...) {
					if !strings.Contains(body, want) {
						t.Errorf("page lacks %s:\n%s", want, body)
					}
				}
				if n := strings.Count(body, `<input type="hidden"`); n != len(tc.resp.Fields) {
					t.Errorf("got %d hidden fields, want %d:\n%s", n, len(tc.resp.Fields), body)
				}
			})
		}
	}
}

// TestFormPostCSP: the form_post page's policy adds a script hash and
// nothing that would weaken the others: no inline scripts in general, no
// eval, and no form-action (which would stop the post to the client).
func TestFormPostCSP(t *testing.T) {
	csp := FormPostCSP()
	if !strings.HasPrefix(csp, ContentSecurityPolicy+"; ") {
		t.Errorf("CSP %q does not extend %q", csp, ContentSecurityPolicy)
	}
	if got := strings.Count(csp, "script-src"); got != 1 {
		t.Errorf("CSP %q: got %d script-src, want 1", csp, got)
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "form-action", "*"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP %q has %s", csp, bad)
		}
	}
}
