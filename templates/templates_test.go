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
		Intro    string
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
		Forgot                                                           string
		Register                                                         bool
	}
	join struct {
		Token, Username, Email, Name                  string
		MinLength                                     int
		Error, NameError, PasswordError, ConfirmError string
	}
	register struct{ Email, Error, EmailError string }
	forgot   struct {
		NoMail                                      bool
		Email, AuthRequest, Back, Error, EmailError string
	}
	reset struct {
		Token, Username                               string
		MinLength                                     int
		Error, PasswordError, ConfirmError, CodeError string
	}
	account struct {
		CSRFToken, Username, Notice, Error string
		Profile                            accountProfile
		Password                           accountPassword
		MinPassword                        int
		TOTPSince                          string
		CodesLeft                          int
		Devices                            []accountDevice
		Apps                               []accountApp
		Sessions                           []accountSession
	}
	accountProfile struct {
		Name, Email               string
		Verified, MailOff, Resend bool
		NameError, EmailError     string
	}
	accountPassword struct{ Error, CurrentError, CodeError, NewError, ConfirmError string }
	accountDevice   struct{ ID, Browser, UserAgent, IP, Since, LastUsed string }
	accountApp      struct{ ClientID, Name, Scopes, Since string }
	accountSession  struct {
		SID, Browser, Started, IP, UserAgent string
		Current                              bool
	}
	verifyEmail struct{ Token, Email string }
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
			notWant: []string{"<script>"},
		},
		{
			name: "codes page with its own introduction",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "codes.html", codes{Intro: "New codes <b>", Codes: []string{"abcd-efgh-ijkl-mnop"}, Next: "/account"})
			},
			wantStatus: http.StatusOK,
			want:       []string{"<p>New codes &lt;b&gt; <strong>", `<a class="button" href="/account">`},
			notWant:    []string{English.T("codes.intro")},
		},
		{
			name: "codes page refuses a download link given as a plain string",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "codes.html", struct {
					Intro          string
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
			name: "login page links to the forgotten-password page, and to registration when open",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "login.html", password{CSRFToken: "t", Forgot: "/login/forgot?auth_request=a%26b", Register: true})
			},
			wantStatus: http.StatusOK,
			want:       []string{`<a href="/login/forgot?auth_request=a%26b">Forgot your password?</a>`, `<a href="/register">Create an account</a>`},
		},
		{
			name: "login page without registration",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "login.html", password{CSRFToken: "t", Forgot: "/login/forgot"})
			},
			wantStatus: http.StatusOK,
			want:       []string{`<a href="/login/forgot">Forgot your password?</a>`},
			notWant:    []string{`href="/register"`},
		},
		{
			name: "join form escapes its data and asks for a new password twice",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusUnprocessableEntity, "join.html", join{
					Token: `"><script>`, Username: "<b>eve</b>", Email: "eve@example.com", Name: "<i>Eve</i>", MinLength: 12,
					NameError: "n", PasswordError: "<p>", ConfirmError: "c",
				})
			},
			wantStatus: http.StatusUnprocessableEntity,
			want: []string{
				`<form method="post" action="/join">`,
				`<input type="hidden" name="token" value="&#34;&gt;&lt;script&gt;">`,
				`name="username" value="&lt;b&gt;eve&lt;/b&gt;" readonly autocomplete="username"`,
				"Your email address: eve@example.com",
				`name="name" value="&lt;i&gt;Eve&lt;/i&gt;"`,
				`name="password" required minlength="12"`, `autocomplete="new-password"`,
				`name="confirm" required autocomplete="new-password"`,
				`<p class="error" id="password-error" role="alert">&lt;p&gt;</p>`,
				`<p class="error" id="confirm-error" role="alert">c</p>`,
				`<p class="error" id="name-error" role="alert">n</p>`,
				"At least 12 characters.",
			},
			notWant: []string{"<script>", "<b>eve", "<i>Eve"},
		},
		{
			name: "register form",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "register.html", register{Email: "<x>", EmailError: "bad"})
			},
			wantStatus: http.StatusOK,
			want: []string{
				`<form method="post" action="/register">`, `type="email" id="email" name="email" value="&lt;x&gt;"`,
				`autocomplete="email"`, `<p class="error" id="email-error" role="alert">bad</p>`,
			},
		},
		{
			name: "forgot form keeps the authorization request",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "forgot.html", forgot{AuthRequest: "a1", Back: "/login?auth_request=a1"})
			},
			wantStatus: http.StatusOK,
			want: []string{
				`<form method="post" action="/login/forgot">`, `<input type="hidden" name="auth_request" value="a1">`,
				`<a href="/login?auth_request=a1">Back to sign in</a>`,
			},
		},
		{
			name: "forgot page without mail",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "forgot.html", forgot{NoMail: true, Back: "/login"})
			},
			wantStatus: http.StatusOK,
			want:       []string{"Resetting a password by mail is not available here. Ask your administrator"},
			notWant:    []string{"<form"},
		},
		{
			name: "reset form asks for a new password and a code",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "reset.html", reset{Token: "tok", Username: "<b>eve</b>", MinLength: 12, CodeError: "wrong"})
			},
			wantStatus: http.StatusOK,
			want: []string{
				`<form method="post" action="/login/reset">`, `<input type="hidden" name="token" value="tok">`,
				"Choose a new password for &lt;b&gt;eve&lt;/b&gt;.", `name="password" required minlength="12"`,
				`name="code" required maxlength="64" autocomplete="one-time-code"`,
				`<p class="error" id="code-error" role="alert">wrong</p>`,
			},
			notWant: []string{"<b>eve"},
		},
		{
			name: "account page escapes what users and browsers wrote, and revokes only other sessions",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "account.html", account{
					CSRFToken: "tok", Username: "<b>eve</b>", MinPassword: 12, CodesLeft: 1,
					Profile:  accountProfile{Name: "Eve <i>", Email: "eve@example.com", Verified: true},
					Devices:  []accountDevice{{ID: "dev1", Browser: "Firefox <x>", UserAgent: `Mozilla"><script>`, IP: "192.0.2.1"}},
					Apps:     []accountApp{{ClientID: "sales", Name: "Sales <app>", Scopes: "openid email"}},
					Sessions: []accountSession{{SID: "sid-mine", Browser: "Chrome", Current: true}, {SID: "sid-other", Browser: "Safari"}},
				})
			},
			wantStatus: http.StatusOK,
			want: []string{
				"Signed in as &lt;b&gt;eve&lt;/b&gt;.", `value="Eve &lt;i&gt;"`, "Firefox &lt;x&gt;", "Sales &lt;app&gt;",
				`title="Mozilla&#34;&gt;&lt;script&gt;"`, "This address is verified.", "You have 1 unused recovery code.",
				`<input type="hidden" name="device" value="dev1">`, `<input type="hidden" name="client_id" value="sales">`,
				`<input type="hidden" name="sid" value="sid-other">`, `<span class="tag">This browser</span>`,
				`<form method="post" action="/account/sessions/revoke-all">`, "At least 12 characters.",
			},
			notWant: []string{"<b>eve", "<i>", `value="sid-mine"`, English.T("account.mail_off"), `action="/account/email"`},
		},
		{
			name: "account page without mail says addresses cannot be verified",
			render: func(w http.ResponseWriter, r *http.Request) {
				pages.Render(w, English, http.StatusOK, "account.html", account{
					CSRFToken: "tok", Username: "eve", Profile: accountProfile{Email: "eve@example.com", MailOff: true},
				})
			},
			wantStatus: http.StatusOK,
			want:       []string{English.T("account.mail_off"), English.T("account.email_unverified"), English.T("account.no_devices"), English.T("account.no_apps")},
			notWant:    []string{English.T("account.email_verified")},
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
