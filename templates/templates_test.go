package templates

import (
	"html/template"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// The data of the login package's pages, which this package cannot
// import: the same field names and types.
type (
	notice struct{ Title, Message, Next, Action string }
	codes  struct {
		Codes    []string
		Download template.URL
		Next     string
	}
	totp struct {
		CSRFToken, Client, Username, Issuer string
		Enrol                               bool
		QR, URI                             template.URL
		Secret, Error, CodeError            string
		RememberDays                        int
	}
	password struct {
		CSRFToken, Client, Username, Error, UsernameError, PasswordError string
	}
)

func TestRender(t *testing.T) {
	pages, err := Parse(Brand{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		render     func(w http.ResponseWriter, r *http.Request)
		wantStatus int
		want       []string
		notWant    []string
	}{
		{
			name: "error page escapes its message",
			render: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Request-Id", "req-1")
				pages.Error(w, English, http.StatusBadRequest, `<script>alert(1)</script>`)
			},
			wantStatus: http.StatusBadRequest,
			want:       []string{"&lt;script&gt;", "Request ID: req-1", "<title>Bad request · twostep</title>"},
			notWant:    []string{"<script>"},
		},
		{
			name:       "unavailable",
			render:     func(w http.ResponseWriter, r *http.Request) { pages.Failure(w, r, true) },
			wantStatus: http.StatusServiceUnavailable,
			want:       []string{English.T("error.unavailable"), "<title>Temporarily unavailable · twostep</title>"},
		},
		{
			name:       "internal",
			render:     func(w http.ResponseWriter, r *http.Request) { pages.Failure(w, r, false) },
			wantStatus: http.StatusInternalServerError,
			want:       []string{English.T("error.internal"), "<title>Something went wrong · twostep</title>"},
		},
		{
			name: "notice escapes its text and links only to safe URLs",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusTooManyRequests, "notice.html", notice{
					Title: `<i>Too many</i>`, Message: `<script>alert(1)</script>`, Next: "javascript:alert(1)", Action: `<b>Go</b>`,
				})
			},
			wantStatus: http.StatusTooManyRequests,
			want: []string{
				"<title>&lt;i&gt;Too many&lt;/i&gt; · twostep</title>", "<h1>&lt;i&gt;Too many&lt;/i&gt;</h1>",
				"<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>", `href="#ZgotmplZ">&lt;b&gt;Go&lt;/b&gt;</a>`,
			},
			notWant: []string{"<script>", "<i>", "javascript:"},
		},
		{
			name: "notice links on",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "notice.html", notice{
					Title: "Recovery code used", Message: "You have 9 recovery codes left.", Next: "/oauth2/auth?auth_request=a&b=c", Action: "Continue",
				})
			},
			wantStatus: http.StatusOK,
			want:       []string{`<a class="button" href="/oauth2/auth?auth_request=a&amp;b=c">Continue</a>`},
			notWant:    []string{"You can close this page"},
		},
		{
			name: "notice without a next step",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "notice.html", notice{Title: "Done", Message: "m"})
			},
			wantStatus: http.StatusOK,
			want:       []string{"You can close this page"},
			notWant:    []string{`class="button"`},
		},
		{
			name: "recovery form escapes the username, error and token",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusUnprocessableEntity, "recovery.html", struct{ CSRFToken, Username, Error string }{
					CSRFToken: `"><script>x</script>`, Username: "<b>eve</b>", Error: "<i>wrong</i>",
				})
			},
			wantStatus: http.StatusUnprocessableEntity,
			want: []string{
				`<form method="post" action="/login/recovery">`,
				`<input type="hidden" name="csrf_token" value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;">`,
				"for &lt;b&gt;eve&lt;/b&gt;.",
				`<p class="error" id="code-error" role="alert">&lt;i&gt;wrong&lt;/i&gt;</p>`,
				`aria-invalid="true" aria-describedby="code-error"`,
				`<a href="/login/totp">`,
			},
			notWant: []string{"<script>", "<b>eve", "<i>wrong"},
		},
		{
			name: "recovery form without an error",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "recovery.html", struct{ CSRFToken, Username, Error string }{CSRFToken: "t", Username: "eve"})
			},
			wantStatus: http.StatusOK,
			want:       []string{`name="code" required autocomplete="off"`},
			notWant:    []string{`class="error"`, "aria-invalid"},
		},
		{
			name: "codes page lists escaped codes and keeps the data: download link",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "codes.html", codes{
					Codes:    []string{"abcd-efgh-ijkl-mnop", "<script>"},
					Download: template.URL("data:text/plain;charset=utf-8,abcd-efgh-ijkl-mnop%0A%3Cscript%3E"),
					Next:     "/oauth2/auth?auth_request=a1",
				})
			},
			wantStatus: http.StatusOK,
			want: []string{
				`<ol class="codes"><li>abcd-efgh-ijkl-mnop</li><li>&lt;script&gt;</li></ol>`,
				`<a href="data:text/plain;charset=utf-8,abcd-efgh-ijkl-mnop%0A%3Cscript%3E" download="recovery-codes.txt">`,
				`<a class="button" href="/oauth2/auth?auth_request=a1">`,
				"shown only this once",
			},
			notWant: []string{"<script>", "You are signed in"},
		},
		{
			name: "codes page without an authorization request",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "codes.html", codes{Codes: []string{"abcd-efgh-ijkl-mnop"}})
			},
			wantStatus: http.StatusOK,
			want:       []string{"You are signed in"},
			notWant:    []string{`class="button"`},
		},
		{
			name: "codes page refuses a download link given as a plain string",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "codes.html", struct {
					Codes          []string
					Download, Next string
				}{Download: "data:text/html,<script>alert(1)</script>"})
			},
			wantStatus: http.StatusOK,
			want:       []string{`<a href="#ZgotmplZ" download`},
			notWant:    []string{"data:text/html"},
		},
		{
			name: "code page offers to remember the device and a recovery code",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "totp.html", totp{CSRFToken: "t", Username: "eve", Issuer: "twostep", RememberDays: 30})
			},
			wantStatus: http.StatusOK,
			want: []string{
				`<input type="checkbox" id="remember" name="remember" value="1">`,
				"on this browser for 30 days", `<a href="/login/recovery">Use a recovery code</a>`,
			},
			notWant: []string{"You are signing in to"},
		},
		{
			name: "remembering for one day",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "totp.html", totp{CSRFToken: "t", Username: "eve", Issuer: "twostep", RememberDays: 1})
			},
			wantStatus: http.StatusOK,
			want:       []string{"on this browser for 1 day</label>"},
		},
		{
			name: "code field takes a code typed with spaces",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "totp.html", totp{CSRFToken: "t", Username: "eve", Issuer: "twostep"})
			},
			wantStatus: http.StatusOK,
			want:       []string{`name="code" required autocomplete="one-time-code" inputmode="numeric"`},
			notWant:    []string{"pattern=", "maxlength=", `name="remember"`},
		},
		{
			name: "code page names the client, escaped",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "totp.html", totp{CSRFToken: "t", Client: "<i>Sales</i>", Username: "eve", Issuer: "twostep"})
			},
			wantStatus: http.StatusOK,
			want:       []string{"<h1>Enter your code</h1>", "You are signing in to &lt;i&gt;Sales&lt;/i&gt;."},
			notWant:    []string{"<i>Sales"},
		},
		{
			name: "enrolment page: a large crisp QR code and a copyable secret, and neither option",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "totp.html", totp{
					CSRFToken: "t", Client: "Sales dashboard", Username: "eve", Issuer: "twostep", Enrol: true,
					QR: "data:image/png;base64,AAAA", URI: "otpauth://totp/twostep:eve?secret=ABCD", Secret: "ABCD EFGH",
				})
			},
			wantStatus: http.StatusOK,
			want: []string{
				"<h1>Set up your authenticator</h1>", "You are signing in to Sales dashboard.",
				`<img class="qr" src="data:image/png;base64,AAAA" width="288" height="288" alt="QR code that adds twostep (eve) to an authenticator app">`,
				`<a href="otpauth://totp/twostep:eve?secret=ABCD">`,
				`<code class="secret" id="secret">ABCD EFGH</code>`,
			},
			notWant: []string{`name="remember"`, "/login/recovery"},
		},
		{
			name: "login page names the client, escaped",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "login.html", password{CSRFToken: "t", Client: "Sales <dashboard>"})
			},
			wantStatus: http.StatusOK,
			want: []string{
				"<title>Sign in to Sales &lt;dashboard&gt; · twostep</title>",
				"<h1>Sign in to Sales &lt;dashboard&gt;</h1>",
			},
			notWant: []string{"<dashboard>"},
		},
		{
			name: "login page without a client",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "login.html", password{CSRFToken: "t"})
			},
			wantStatus: http.StatusOK,
			want:       []string{"<title>Sign in · twostep</title>", "<h1>Sign in</h1>"},
		},
		{
			name: "login page in German",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, German, http.StatusOK, "login.html", password{CSRFToken: "t", Client: "Vertrieb"})
			},
			wantStatus: http.StatusOK,
			want:       []string{`<html lang="de">`, "<h1>Bei Vertrieb anmelden</h1>", "Benutzername", "Passwort"},
		},
		{
			name: "signed-in page escapes the username and claims no factors",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "signedin.html", struct{ Username string }{"<b>eve</b>"})
			},
			wantStatus: http.StatusOK,
			want:       []string{"You are signed in as &lt;b&gt;eve&lt;/b&gt;."},
			notWant:    []string{"<b>eve", "authenticator"},
		},
		{
			name: "an unknown language is English",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, Lang("xx"), http.StatusOK, "signedout.html", nil)
			},
			wantStatus: http.StatusOK,
			want:       []string{`<html lang="en">`, "You are signed out"},
		},
		{
			name: "unknown page is a plain 500, not half a page",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "nope.html", nil)
			},
			wantStatus: http.StatusInternalServerError,
			notWant:    []string{"<html"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tc.render(w, httptest.NewRequest(http.MethodGet, "/", nil))
			if w.Code != tc.wantStatus {
				t.Errorf("status: got %d, want %d", w.Code, tc.wantStatus)
			}
			for h, want := range map[string]string{
				"Content-Security-Policy": ContentSecurityPolicy,
				"Cache-Control":           "no-store",
				"X-Frame-Options":         "DENY",
				"X-Content-Type-Options":  "nosniff",
			} {
				if got := w.Header().Get(h); got != want {
					t.Errorf("%s: got %q, want %q", h, got, want)
				}
			}
			body := w.Body.String()
			if strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
				checkPage(t, body)
			}
			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q:\n%s", s, body)
				}
			}
			for _, s := range tc.notWant {
				if strings.Contains(body, s) {
					t.Errorf("body has %q:\n%s", s, body)
				}
			}
		})
	}
	w := httptest.NewRecorder()
	pages.Failure(w, httptest.NewRequest(http.MethodGet, "/", nil), true)
	if got := w.Header().Get("Retry-After"); got == "" {
		t.Errorf("503 page: no Retry-After header")
	}
}

func TestCSPForbidsScriptsAndFraming(t *testing.T) {
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(ContentSecurityPolicy, want) {
			t.Errorf("CSP %q lacks %q", ContentSecurityPolicy, want)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "script-src") {
		t.Errorf("CSP %q allows scripts", ContentSecurityPolicy)
	}
	// Styles come from the stylesheet alone; images from twostep or
	// inline data (the QR code).
	for _, want := range []string{"style-src 'self';", "img-src 'self' data:;"} {
		if !strings.Contains(ContentSecurityPolicy, want) {
			t.Errorf("CSP %q lacks %q", ContentSecurityPolicy, want)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe-inline") {
		t.Errorf("CSP %q allows inline styles", ContentSecurityPolicy)
	}
}

// inlineRE finds what the CSP forbids and twostep's pages therefore must
// not have: inline styles and scripts, and style elements.
var inlineRE = regexp.MustCompile(`(?i)<style|<script|\sstyle=|\son[a-z]+=`)

// placeholderRE finds a catalogue placeholder left in a page.
var placeholderRE = regexp.MustCompile(`\{[a-z]+\}`)

// checkPage checks what every rendered page must be: a language, the
// stylesheet, nothing inline that the CSP would block, and no message
// key or placeholder left untranslated.
func checkPage(t *testing.T, body string) {
	t.Helper()
	if m := inlineRE.FindString(body); m != "" {
		t.Errorf("page has %q, which the CSP forbids:\n%s", m, body)
	}
	if !regexp.MustCompile(`<html lang="(en|fr|de)">`).MatchString(body) {
		t.Errorf("page has no <html lang>:\n%s", body)
	}
	if !strings.Contains(body, `<link rel="stylesheet" href="/static/twostep.css?v=`) {
		t.Errorf("page does not link the stylesheet:\n%s", body)
	}
	if m := placeholderRE.FindString(body); m != "" {
		t.Errorf("page has the placeholder %s:\n%s", m, body)
	}
	for key := range english {
		if strings.Contains(body, key) {
			t.Errorf("page has the message key %q:\n%s", key, body)
		}
	}
}
