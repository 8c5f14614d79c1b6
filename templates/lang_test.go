package templates

import (
	"go/ast"
	"go/parser"
	"go/token"
	"html/template"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestPickLang(t *testing.T) {
	tests := []struct {
		name, uiLocales, accept string
		want                    Lang
	}{
		{"nothing asked", "", "", English},
		{"accept-language", "", "de", German},
		{"region ignored", "", "fr-CA", French},
		{"case ignored", "", "DE-at", German},
		{"first of equals", "", "de, fr", German},
		{"highest weight wins", "", "en;q=0.3, fr;q=0.9, de;q=0.5", French},
		{"weight before order", "", "en;q=0.5, de", German},
		{"Q in capitals", "", "en;Q=0.1, de;Q=0.2", German},
		{"unsupported skipped", "", "pt-BR, es;q=0.9, de;q=0.1", German},
		{"only unsupported", "", "pt-BR, ja", English},
		{"q=0 refuses", "", "fr;q=0", English},
		{"malformed weight skipped", "", "fr;q=abc, de;q=0.5", German},
		{"wildcard", "", "*", English},
		{"junk", "", ";;,,--;q=", English},
		{"ui_locales beats accept-language", "fr", "de", French},
		{"first supported ui_locale wins", "ja fr-FR de", "en", French},
		{"unsupported ui_locales fall back to accept-language", "ja es", "de", German},
		{"ui_locales with extra spaces", "  de  ", "", German},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.accept != "" {
				r.Header.Set("Accept-Language", tc.accept)
			}
			if got := PickLang(r, tc.uiLocales); got != tc.want {
				t.Errorf("PickLang(ui_locales %q, Accept-Language %q): got %q, want %q", tc.uiLocales, tc.accept, got, tc.want)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"plain", English.T("login.title"), "Sign in"},
		{"a value", French.T("login.title_client", "client", "Ventes"), "Se connecter à Ventes"},
		{"values are not placeholders", English.T("account.signed_in_as", "user", "{user}"), "Signed in as {user}."},
		{"a missing key is the key", German.T("no.such.key"), "no.such.key"},
		{"English one", English.N("time.seconds", 1), "1 second"},
		{"English zero", English.N("time.seconds", 0), "0 seconds"},
		{"French zero is one", French.N("time.seconds", 0), "0 seconde"},
		{"French one", French.N("time.seconds", 1), "1 seconde"},
		{"French many", French.N("time.seconds", 2), "2 secondes"},
		{"German one", German.N("time.minutes", 1), "1 Minute"},
		{"German zero", German.N("time.minutes", 0), "0 Minuten"},
		{"German many", German.N("totp.remember", 30), "In diesem Browser 30 Tage lang nicht nach einem Code fragen"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

var catalogPlaceholderRE = regexp.MustCompile(`\{[a-z]+\}`)

// TestCatalogueComplete checks that every language has every message, with
// the same placeholders, and every counted message both its forms.
func TestCatalogueComplete(t *testing.T) {
	if len(catalogue) != len(Langs()) {
		t.Errorf("catalogue has %d languages, want %d: %v", len(catalogue), len(Langs()), Langs())
	}
	for _, l := range Langs() {
		for key, msg := range catalogue[l] {
			if strings.TrimSpace(msg) == "" {
				t.Errorf("%s %q: empty", l, key)
			}
			en, ok := english[key]
			if !ok {
				t.Errorf("%s %q: not in English", l, key)
				continue
			}
			got := slices.Sorted(slices.Values(catalogPlaceholderRE.FindAllString(msg, -1)))
			want := slices.Sorted(slices.Values(catalogPlaceholderRE.FindAllString(en, -1)))
			if !slices.Equal(got, want) {
				t.Errorf("%s %q: got placeholders %v, want English's %v", l, key, got, want)
			}
		}
		for key := range english {
			if _, ok := catalogue[l][key]; !ok {
				t.Errorf("%s: no %q", l, key)
			}
		}
	}
	for key := range english {
		if base, ok := strings.CutSuffix(key, ".one"); ok {
			if _, ok := english[base+".other"]; !ok {
				t.Errorf("%q has no .other form", base)
			}
		}
		if base, ok := strings.CutSuffix(key, ".other"); ok {
			if _, ok := english[base+".one"]; !ok {
				t.Errorf("%q has no .one form", base)
			}
		}
	}
}

// actionRE is a template action; keyCallRE a call of t or tn in one, with
// its first argument.
var (
	actionRE  = regexp.MustCompile(`\{\{.*?\}\}`)
	keyCallRE = regexp.MustCompile(`\b(t|tn)\s+([^\s)}]+)`)
)

// TestCatalogueCoversEveryKey checks that every message the pages and the
// module's Go code ask for is in the catalogue, and every message in the
// catalogue is asked for somewhere. Keys must be literal strings, so that
// this test sees them all.
func TestCatalogueCoversEveryKey(t *testing.T) {
	used := map[string]bool{} // counted messages by their base key
	use := func(where, fn, key string) {
		want := []string{key}
		if fn == "tn" || fn == "N" {
			want = []string{key + ".one", key + ".other"}
		}
		for _, k := range want {
			if _, ok := english[k]; !ok {
				t.Errorf("%s: %s %q: not in the catalogue", where, fn, k)
			}
			used[k] = true
		}
	}

	pages, err := fs.Glob(files, "*.html")
	if err != nil {
		t.Fatal(err)
	}
	mails, err := fs.Glob(files, "mail/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range mails {
		// Pages.Mail asks for each mail's subject by a key it builds.
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(name, "mail/"), ".txt"), ".html")
		use(name, "t", "mail."+base+".subject")
	}
	for _, name := range append(pages, mails...) {
		src, err := fs.ReadFile(files, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, action := range actionRE.FindAllString(string(src), -1) {
			for _, m := range keyCallRE.FindAllStringSubmatch(action, -1) {
				key, err := strconv.Unquote(m[2])
				if err != nil {
					t.Errorf("%s: %s: the key %s is not a literal string", name, action, m[2])
					continue
				}
				use(name, m[1], key)
			}
		}
	}

	// Every non-test Go file of the module: calls of a method T or N.
	fset := token.NewFileSet()
	err = filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != ".." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "T" && sel.Sel.Name != "N") {
				return true
			}
			where := fset.Position(call.Pos()).String()
			if _, built := call.Args[0].(*ast.BinaryExpr); built && filepath.Base(path) == "mail.go" && filepath.Base(filepath.Dir(path)) == "templates" {
				return true // a mail's subject key: counted with the mail templates above
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: %s with a key that is not a literal string", where, sel.Sel.Name)
				return true
			}
			key, _ := strconv.Unquote(lit.Value)
			use(where, sel.Sel.Name, key)
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for key := range english {
		if !used[key] {
			t.Errorf("%q is in the catalogue but nothing uses it", key)
		}
	}
}

// TestEveryPageInEveryLanguage renders every page, in its variants, in
// every language: each must come out complete (see checkPage) and in its
// language.
func TestEveryPageInEveryLanguage(t *testing.T) {
	pages, err := Parse(Brand{})
	if err != nil {
		t.Fatal(err)
	}
	type demo struct{ Claims, UserInfo, Logout, Error string }
	type consent struct {
		ClientName, ClientID     string
		Scopes                   []string
		AuthRequestID, CSRFToken string
	}
	type render struct {
		page string
		data any
	}
	cases := []render{
		{"codes.html", codes{Codes: []string{"abcd-efgh-ijkl-mnop"}, Next: "/oauth2/auth?auth_request=a"}},
		{"codes.html", codes{Intro: "i", Codes: []string{"abcd-efgh-ijkl-mnop"}, Next: "/account"}},
		{"consent.html", consent{ClientName: "Sales", ClientID: "sales", Scopes: []string{"x"}, AuthRequestID: "a", CSRFToken: "t"}},
		{"demo.html", demo{}},
		{"demo.html", demo{Claims: "{}", UserInfo: "{}", Logout: "/oauth2/logout"}},
		{"demo.html", demo{Error: "nonce mismatch"}},
		{"error.html", ErrorPage{Title: "T", Message: "M", RequestID: "r"}},
		{"login.html", password{CSRFToken: "t", Client: "Sales", Error: "e", UsernameError: "u", PasswordError: "p"}},
		{"login.html", password{CSRFToken: "t"}},
		{"logout.html", struct{ Form url.Values }{url.Values{"csrf_token": {"t"}}}},
		{"notice.html", notice{Title: "T", Message: "M"}},
		{"recovery.html", struct{ CSRFToken, Username, Error string }{"t", "eve", "e"}},
		{"signedout.html", nil},
		{"totp.html", totp{CSRFToken: "t", Client: "Sales", Username: "eve", Issuer: "twostep", Enrol: true,
			QR: template.URL("data:image/png;base64,AAAA"), URI: template.URL("otpauth://totp/x"), Secret: "ABCD", CodeError: "c"}},
		{"totp.html", totp{CSRFToken: "t", Username: "eve", Issuer: "twostep", RememberDays: 30, Error: "e"}},
		{"login.html", password{CSRFToken: "t", Forgot: "/login/forgot", Register: true}},
		{"join.html", join{Token: "t", Username: "eve", Email: "eve@example.com", MinLength: 12,
			Error: "e", NameError: "n", PasswordError: "p", ConfirmError: "c"}},
		{"register.html", register{Email: "eve@example.com", Error: "e", EmailError: "m"}},
		{"forgot.html", forgot{Back: "/login", Email: "eve@example.com", Error: "e", EmailError: "m"}},
		{"forgot.html", forgot{NoMail: true, Back: "/login"}},
		{"account.html", account{CSRFToken: "t", Username: "eve", Notice: "n", Error: "e", MinPassword: 12, TOTPSince: "2025-03-14 09:00 UTC", CodesLeft: 10,
			Profile:  accountProfile{Name: "Eve", Email: "eve@example.com", Resend: true, NameError: "n", EmailError: "m"},
			Password: accountPassword{Error: "e", CurrentError: "c", CodeError: "x", NewError: "n", ConfirmError: "c"},
			Devices:  []accountDevice{{ID: "d", Browser: "Firefox", IP: "192.0.2.1", Since: "2025-03-14 09:00 UTC", LastUsed: "2025-03-14 09:00 UTC"}},
			Apps:     []accountApp{{ClientID: "sales", Name: "Sales", Scopes: "openid", Since: "2025-03-14 09:00 UTC"}},
			Sessions: []accountSession{{SID: "s", Browser: "Firefox", Started: "2025-03-14 09:00 UTC", Current: true}, {SID: "o", Browser: "Safari"}}}},
		{"account.html", account{CSRFToken: "t", Username: "eve", Profile: accountProfile{MailOff: true}}},
		{"account_authenticator.html", totp{CSRFToken: "t", Username: "eve", Issuer: "twostep", Enrol: true,
			QR: template.URL("data:image/png;base64,AAAA"), URI: template.URL("otpauth://totp/x"), Secret: "ABCD", CodeError: "c"}},
		{"account_verify.html", verifyEmail{Token: "t", Email: "eve@example.com"}},
		{"reset.html", reset{Token: "t", Username: "eve", MinLength: 12, Error: "e", PasswordError: "p", ConfirmError: "c", CodeError: "x"}},
	}
	names, err := fs.Glob(files, "*.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		// formpost.html has its own test (TestFormPost): it is the one page
		// with a script.
		if name != "layout.html" && name != "formpost.html" && !slices.ContainsFunc(cases, func(c render) bool { return c.page == name }) {
			t.Errorf("%s is not rendered by this test", name)
		}
	}
	for _, l := range Langs() {
		for _, tc := range cases {
			t.Run(string(l)+"/"+tc.page, func(t *testing.T) {
				w := httptest.NewRecorder()
				pages.Render(w, l, http.StatusOK, tc.page, tc.data)
				if w.Code != http.StatusOK {
					t.Fatalf("got status %d, want 200: %s", w.Code, w.Body)
				}
				body := w.Body.String()
				checkPage(t, body)
				if want := `<html lang="` + string(l) + `">`; !strings.Contains(body, want) {
					t.Errorf("page lacks %s", want)
				}
			})
		}
	}
}

// TestEveryMailInEveryLanguage renders every mail in every language: each
// has its subject, both bodies with the absolute link, and nothing
// untranslated.
func TestEveryMailInEveryLanguage(t *testing.T) {
	pages, err := Parse(Brand{Name: "Acme <login>"})
	if err != nil {
		t.Fatal(err)
	}
	type linkMail struct{ Link, Expires, Username string }
	data := linkMail{Link: "https://id.example.com/join?token=a_b-c", Expires: "2025-03-21 09:00 UTC", Username: "eve<x>"}
	names, err := fs.Glob(files, "mail/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 4 {
		t.Fatalf("got mails %v, want at least invite, register, register-exists and reset", names)
	}
	for _, l := range Langs() {
		for _, name := range names {
			name = strings.TrimSuffix(strings.TrimPrefix(name, "mail/"), ".txt")
			t.Run(string(l)+"/"+name, func(t *testing.T) {
				m, err := pages.Mail(l, name, data)
				if err != nil {
					t.Fatal(err)
				}
				if want := l.T("mail."+name+".subject", "brand", "Acme <login>"); m.Subject != want || strings.HasPrefix(m.Subject, "mail.") {
					t.Errorf("subject: got %q, want %q", m.Subject, want)
				}
				if !strings.Contains(m.Text, "\n"+data.Link+"\n") {
					t.Errorf("text body lacks the link on a line of its own:\n%s", m.Text)
				}
				if !strings.Contains(m.HTML, `<a href="https://id.example.com/join?token=a_b-c">`) {
					t.Errorf("HTML body lacks the link:\n%s", m.HTML)
				}
				if want := `<html lang="` + string(l) + `">`; !strings.Contains(m.HTML, want) {
					t.Errorf("HTML body lacks %s", want)
				}
				if strings.Contains(m.HTML, "<login>") || strings.Contains(m.HTML, "eve<x>") {
					t.Errorf("HTML body does not escape the brand or the username:\n%s", m.HTML)
				}
				for _, body := range []string{m.Subject, m.Text, m.HTML} {
					if p := placeholderRE.FindString(body); p != "" {
						t.Errorf("mail has the placeholder %s:\n%s", p, body)
					}
					for key := range english {
						if strings.Contains(body, key) {
							t.Errorf("mail has the message key %q:\n%s", key, body)
						}
					}
				}
			})
		}
	}
}
