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
		{"values are not placeholders", English.T("signedin.as", "user", "{user}"), "You are signed in as {user}."},
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
	for _, name := range pages {
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
		{"codes.html", codes{Codes: []string{"abcd-efgh-ijkl-mnop"}}},
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
		{"signedin.html", struct{ Username string }{"eve"}},
		{"signedout.html", nil},
		{"totp.html", totp{CSRFToken: "t", Client: "Sales", Username: "eve", Issuer: "twostep", Enrol: true,
			QR: template.URL("data:image/png;base64,AAAA"), URI: template.URL("otpauth://totp/x"), Secret: "ABCD", CodeError: "c"}},
		{"totp.html", totp{CSRFToken: "t", Username: "eve", Issuer: "twostep", RememberDays: 30, Error: "e"}},
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
