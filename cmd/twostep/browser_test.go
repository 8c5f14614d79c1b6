package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/net/html"
)

// browser is a cookie-jar HTTP client that fills HTML forms like a person
// would and stops at the relying party's redirect_uri.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T, redirectURI string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, client: &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirectURI) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

// page is a fetched response with its body read.
type page struct {
	status int
	url    *url.URL
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(body)}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// submit fills the page's form (the one holding a field named by the first
// key of values, or the first form) and posts it. Hidden fields keep their
// values; a button's name=value is sent when given as values["decision"].
func (b *browser) submit(p page, values map[string]string) page {
	b.t.Helper()
	f := findForm(b.t, p.body, values)
	action, err := p.url.Parse(f.action)
	if err != nil {
		b.t.Fatalf("form action %q: %v", f.action, err)
	}
	form := url.Values{}
	for k, v := range f.fields {
		form.Set(k, v)
	}
	for k, v := range values {
		form.Set(k, v)
	}
	req, err := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

type htmlForm struct {
	action string
	fields map[string]string // hidden and prefilled inputs
	names  map[string]bool   // every input name, buttons included
	autoc  map[string]string // autocomplete token -> input name
}

// findForm parses the forms of body and returns the one that has an input
// for every key in want (the first form when want is empty).
func findForm(t *testing.T, body string, want map[string]string) htmlForm {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var forms []htmlForm
	var walk func(n *html.Node, f *htmlForm)
	walk = func(n *html.Node, f *htmlForm) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				forms = append(forms, htmlForm{action: attr(n, "action"), fields: map[string]string{},
					names: map[string]bool{}, autoc: map[string]string{}})
				f = &forms[len(forms)-1]
			case "input", "button":
				if f != nil && attr(n, "name") != "" {
					name := attr(n, "name")
					f.names[name] = true
					if a := attr(n, "autocomplete"); a != "" {
						f.autoc[a] = name
					}
					if n.Data == "input" && attr(n, "value") != "" {
						f.fields[name] = attr(n, "value")
					}
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, f)
		}
	}
	walk(doc, nil)
	for _, f := range forms {
		ok := true
		for k := range want {
			if !f.names[k] {
				ok = false
			}
		}
		if ok {
			return f
		}
	}
	t.Fatalf("no form with fields %v in page:\n%s", fieldNames(want), body)
	return htmlForm{}
}

func fieldNames(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// otpauthURI returns the otpauth:// link of an enrolment page, or "".
func otpauthURI(body string) string {
	i := strings.Index(body, `href="otpauth://`)
	if i < 0 {
		return ""
	}
	rest := body[i+len(`href="`):]
	return html.UnescapeString(rest[:strings.IndexByte(rest, '"')])
}

// recoveryCodePattern matches one recovery code as the codes page lists it.
var recoveryCodePattern = regexp.MustCompile(`<li>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</li>`)

// continuePattern matches the link on a page that continues the login.
var continuePattern = regexp.MustCompile(`<a class="button" href="([^"]+)"`)

// recoveryCodes reads the page that follows an enrolment: it must list
// ten new recovery codes, which it returns with the page its continue link
// leads to (p itself when the login serves no authorization request).
func (b *browser) recoveryCodes(p page) ([]string, page) {
	b.t.Helper()
	var codes []string
	for _, m := range recoveryCodePattern.FindAllStringSubmatch(p.body, -1) {
		codes = append(codes, m[1])
	}
	if p.status != http.StatusOK || len(codes) != 10 {
		b.t.Fatalf("after enrolment: got %s with %d recovery codes, want the page with 10\n%s", p, len(codes), p.body)
	}
	m := continuePattern.FindStringSubmatch(p.body)
	if m == nil {
		return codes, p
	}
	next, err := p.url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		b.t.Fatalf("continue link %q: %v", m[1], err)
	}
	return codes, b.get(next.String())
}

// codeAt computes the RFC 6238 code of key for the time step holding at.
func codeAt(t *testing.T, key *otp.Key, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(key.Secret(), at, totp.ValidateOpts{
		Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func (p page) String() string { return fmt.Sprintf("%d %s", p.status, p.url) }
