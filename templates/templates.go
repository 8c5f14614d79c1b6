package templates

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
)

//go:embed *.html
var files embed.FS

// ContentSecurityPolicy forbids scripts and framing; images may be inline
// data (the enrolment QR code) and styles come from the page's <style>.
// There is no form-action directive: browsers apply it to the redirect
// chain after a form post, which ends at the client's redirect_uri.
const ContentSecurityPolicy = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"

// Pages is the parsed set of pages.
type Pages struct {
	t *template.Template
}

// Parse parses the embedded pages. Each page defines a template named after
// its file ("login.html") that calls {{template "layout" .}}-style blocks
// from layout.html.
func Parse() (*Pages, error) {
	t, err := template.New("").Funcs(template.FuncMap{
		"join": strings.Join,
	}).ParseFS(files, "*.html")
	if err != nil {
		return nil, fmt.Errorf("parse templates: %w", err)
	}
	return &Pages{t: t}, nil
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

// Render writes the page `name` with status and data. The page is rendered
// into a buffer first, so a template error yields a plain 500, not half a
// page.
func (p *Pages) Render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := p.t.ExecuteTemplate(&buf, name, data); err != nil {
		SetHeaders(w.Header())
		http.Error(w, "internal error rendering page", http.StatusInternalServerError)
		return
	}
	SetHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	buf.WriteTo(w)
}

// ErrorPage is the data of error.html.
type ErrorPage struct {
	Title   string
	Message string
	// RequestID lets a user quote the failure to an operator.
	RequestID string
}

// Error renders the generic error page with a plain message; details
// belong in the log, not on the page.
func (p *Pages) Error(w http.ResponseWriter, r *http.Request, status int, message string) {
	p.Render(w, status, "error.html", ErrorPage{
		Title:     http.StatusText(status),
		Message:   message,
		RequestID: w.Header().Get("X-Request-Id"),
	})
}

// The messages of the failure pages.
const (
	UnavailableMessage = "The service is temporarily unavailable. Please try again in a moment."
	InternalMessage    = "Something went wrong on our side. Please try again."
)

// Failure renders the page for a request twostep could not serve: 503
// (with Retry-After) when its database is unreachable, 500 otherwise. The
// detail belongs in the caller's log, never on the page.
func (p *Pages) Failure(w http.ResponseWriter, r *http.Request, unavailable bool) {
	if unavailable {
		w.Header().Set("Retry-After", "5")
		p.Error(w, r, http.StatusServiceUnavailable, UnavailableMessage)
		return
	}
	p.Error(w, r, http.StatusInternalServerError, InternalMessage)
}
