package templates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
)

//go:embed *.html mail
var files embed.FS

// ContentSecurityPolicy forbids scripts and framing; images come from
// twostep itself (the logo) or inline data (the enrolment QR code), styles
// only from its stylesheet. There is no form-action directive: browsers
// apply it to the redirect chain after a form post, which ends at the
// client's redirect_uri.
const ContentSecurityPolicy = "default-src 'none'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; base-uri 'none'"

// defaultBrandName is the name the pages show when Brand.Name is empty.
const defaultBrandName = "twostep"

// Brand is how the pages present the service that runs twostep.
type Brand struct {
	// Name is shown in every page's title, and in its header when there
	// is no logo; "twostep" when empty.
	Name string
	// Logo, if set, is shown at the top of every page.
	Logo Logo
}

// Pages is the parsed set of pages, in every language, for one Brand.
type Pages struct {
	sets map[Lang]*template.Template
	// mail is the mail templates per language; brand the brand's name.
	mail  map[Lang]mailSet
	brand string
	// stylesheet and logo are served by Routes.
	stylesheet asset
	logo       asset
}

// Parse parses the embedded pages for brand. Each page defines a template
// named after its file ("login.html") that calls the "header" and "footer"
// templates of layout.html. Besides the page's data, templates have:
//
//	t KEY [NAME VALUE]...  the message KEY in the page's language (Lang.T)
//	tn KEY N [NAME VALUE]...  the counted message KEY (Lang.N)
//	lang                   the page's language
//	brand                  the brand's name
//	stylesheet, logo       the URLs of the stylesheet and the logo ("" if none)
func Parse(brand Brand) (*Pages, error) {
	name := brand.Name
	if name == "" {
		name = defaultBrandName
	}
	p := &Pages{
		sets:       map[Lang]*template.Template{},
		mail:       map[Lang]mailSet{},
		brand:      name,
		stylesheet: newAsset(stylesheetPath, "text/css; charset=utf-8", stylesheet),
		logo:       newAsset(logoPath, brand.Logo.contentType, brand.Logo.data),
	}
	for _, l := range Langs() {
		t, err := template.New("").Funcs(template.FuncMap{
			"t":          l.T,
			"tn":         l.N,
			"lang":       func() Lang { return l },
			"brand":      func() string { return name },
			"stylesheet": func() string { return p.stylesheet.url },
			"logo":       func() string { return p.logo.url },
		}).ParseFS(files, "*.html")
		if err != nil {
			return nil, fmt.Errorf("parse templates: %w", err)
		}
		p.sets[l] = t
		if p.mail[l], err = parseMail(l, name); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// SetHeaders sets the security headers every twostep response that a
// browser renders must carry.
func SetHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// Render writes the page `name` in language l with status and data. The
// page is rendered into a buffer first, so a template error yields a plain
// 500, not half a page.
func (p *Pages) Render(w http.ResponseWriter, l Lang, status int, name string, data any) {
	p.render(w, l, status, name, data, ContentSecurityPolicy)
}

// render is Render with the page's Content-Security-Policy.
func (p *Pages) render(w http.ResponseWriter, l Lang, status int, name string, data any, csp string) {
	t, ok := p.sets[l]
	if !ok {
		t = p.sets[English]
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		SetHeaders(w.Header())
		http.Error(w, "internal error rendering page", http.StatusInternalServerError)
		return
	}
	SetHeaders(w.Header())
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	buf.WriteTo(w)
}

// FormPost is an authorization response carried to the client by the
// browser (OAuth 2.0 Form Post Response Mode §2): a form that posts
// Fields to Action.
type FormPost struct {
	// Action is the client's redirect_uri. The caller vouches for it (it
	// is registered for the client): it is used whatever its scheme, as a
	// native application's may be.
	Action string
	// Fields are the response's parameters, posted as hidden fields.
	Fields url.Values
}

// formPostScript submits the form of formpost.html as soon as it loads.
const formPostScript = "document.forms[0].submit();"

// FormPostCSP is the Content-Security-Policy of the form_post page:
// ContentSecurityPolicy, plus the page's one script, allowed by its
// SHA-256 (CSP Level 2 hash-source) and nothing else. Like every page's,
// it has no form-action directive, so the form may post to any client.
func FormPostCSP() string {
	sum := sha256.Sum256([]byte(formPostScript))
	return ContentSecurityPolicy + "; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// FormPost writes formpost.html in language l: the form with resp's
// fields, submitted by a script FormPostCSP allows, or by the user with
// a button when scripts are off.
func (p *Pages) FormPost(w http.ResponseWriter, l Lang, resp FormPost) {
	p.render(w, l, http.StatusOK, "formpost.html", struct {
		Action template.URL
		Fields url.Values
		Script template.JS
	}{template.URL(resp.Action), resp.Fields, template.JS(formPostScript)}, FormPostCSP())
}

// ErrorPage is the data of error.html.
type ErrorPage struct {
	Title   string
	Message string
	// RequestID lets a user quote the failure to an operator.
	RequestID string
}

// Error renders the generic error page in language l with a plain
// message, already in l; details belong in the log, not on the page.
func (p *Pages) Error(w http.ResponseWriter, l Lang, status int, message string) {
	title := l.T("error.title.bad_request")
	switch {
	case status == http.StatusForbidden:
		title = l.T("error.title.forbidden")
	case status == http.StatusServiceUnavailable:
		title = l.T("error.title.unavailable")
	case status >= 500:
		title = l.T("error.title.internal")
	}
	p.Render(w, l, status, "error.html", ErrorPage{
		Title:     title,
		Message:   message,
		RequestID: w.Header().Get("X-Request-Id"),
	})
}

// Failure renders the page for a request twostep could not serve: 503
// (with Retry-After) when its database is unreachable, 500 otherwise, in
// the language r's browser prefers (the authorization request, if any, may
// be out of reach). The detail belongs in the caller's log, never on the
// page.
func (p *Pages) Failure(w http.ResponseWriter, r *http.Request, unavailable bool) {
	l := PickLang(r, "")
	if unavailable {
		w.Header().Set("Retry-After", "5")
		p.Error(w, l, http.StatusServiceUnavailable, l.T("error.unavailable"))
		return
	}
	p.Error(w, l, http.StatusInternalServerError, l.T("error.internal"))
}
