package templates

import (
	"html/template"
	"net/http"
	"net/http/httptest"
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
		CSRFToken, Username, Issuer string
		Enrol                       bool
		QR, URI                     template.URL
		Secret, Error, CodeError    string
		RememberFor                 string
	}
)

func TestRender(t *testing.T) {
	pages, err := Parse()
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
				pages.Error(w, r, http.StatusBadRequest, `<script>alert(1)</script>`)
			},
			wantStatus: http.StatusBadRequest,
			want:       []string{"&lt;script&gt;", "Request ID: req-1", "<title>Bad Request · twostep</title>"},
			notWant:    []string{"<script>"},
		},
		{
			name:       "unavailable",
			render:     func(w http.ResponseWriter, r *http.Request) { pages.Failure(w, r, true) },
			wantStatus: http.StatusServiceUnavailable,
			want:       []string{UnavailableMessage},
		},
		{
			name:       "internal",
			render:     func(w http.ResponseWriter, r *http.Request) { pages.Failure(w, r, false) },
			wantStatus: http.StatusInternalServerError,
			want:       []string{InternalMessage},
		},
		{
			name: "notice escapes its text and links only to safe URLs",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, http.StatusTooManyRequests, "notice.html", notice{
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
				pages.Render(w, http.StatusOK, "notice.html", notice{
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
				pages.Render(w, http.StatusOK, "notice.html", notice{Title: "Done", Message: "m"})
			},
			wantStatus: http.StatusOK,
			want:       []string{"You can close this page"},
			notWant:    []string{`class="button"`},
		},
		{
			name: "recovery form escapes the username, error and token",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, http.StatusUnprocessableEntity, "recovery.html", struct{ CSRFToken, Username, Error string }{
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
				pages.Render(w, http.StatusOK, "recovery.html", struct{ CSRFToken, Username, Error string }{CSRFToken: "t", Username: "eve"})
			},
			wantStatus: http.StatusOK,
			want:       []string{`name="code" required autocomplete="off"`},
			notWant:    []string{`class="error"`, "aria-invalid"},
		},
		{
			name: "codes page lists escaped codes and keeps the data: download link",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, http.StatusOK, "codes.html", codes{
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
				pages.Render(w, http.StatusOK, "codes.html", codes{Codes: []string{"abcd-efgh-ijkl-mnop"}})
			},
			wantStatus: http.StatusOK,
			want:       []string{"You are signed in"},
			notWant:    []string{`class="button"`},
		},
		{
			name: "codes page refuses a download link given as a plain string",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, http.StatusOK, "codes.html", struct {
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
				pages.Render(w, http.StatusOK, "totp.html", totp{CSRFToken: "t", Username: "eve", Issuer: "twostep", RememberFor: "30 days"})
			},
			wantStatus: http.StatusOK,
			want: []string{
				`<input type="checkbox" id="remember" name="remember" value="1">`,
				"on this browser for 30 days", `<a href="/login/recovery">Use a recovery code</a>`,
			},
		},
		{
			name: "enrolment page offers neither",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, http.StatusOK, "totp.html", totp{CSRFToken: "t", Username: "eve", Issuer: "twostep", Enrol: true})
			},
			wantStatus: http.StatusOK,
			want:       []string{"Set up your authenticator"},
			notWant:    []string{`name="remember"`, "/login/recovery"},
		},
		{
			name: "signed-in page escapes the username and claims no factors",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, http.StatusOK, "signedin.html", struct{ Username string }{"<b>eve</b>"})
			},
			wantStatus: http.StatusOK,
			want:       []string{"<strong>&lt;b&gt;eve&lt;/b&gt;</strong>"},
			notWant:    []string{"<b>eve", "authenticator"},
		},
		{
			name:       "unknown page is a plain 500, not half a page",
			render:     func(w http.ResponseWriter, r *http.Request) { pages.Render(w, http.StatusOK, "nope.html", nil) },
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
}
