package templates

import (
	"bytes"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func encodeImage(t *testing.T, encode func(*bytes.Buffer, image.Image) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := encode(&buf, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func testPNG(t *testing.T) []byte {
	return encodeImage(t, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })
}

func TestNewLogo(t *testing.T) {
	const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10"/></svg>`
	tests := []struct {
		name     string
		data     []byte
		wantType string // "" means refused
	}{
		{"png", testPNG(t), "image/png"},
		{"jpeg", encodeImage(t, func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) }), "image/jpeg"},
		{"svg", []byte(svg), "image/svg+xml"},
		{"svg with a prolog, comment and doctype", []byte(`<?xml version="1.0"?>
<!-- logo -->
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
` + svg), "image/svg+xml"},
		{"gif", encodeImage(t, func(b *bytes.Buffer, m image.Image) error { return gif.Encode(b, m, nil) }), ""},
		{"html", []byte(`<html><body><svg></svg></body></html>`), ""},
		{"other xml", []byte(`<?xml version="1.0"?><feed/>`), ""},
		{"text", []byte("logo"), ""},
		{"empty", nil, ""},
		{"too large", append([]byte(svg), bytes.Repeat([]byte(" "), MaxLogoSize)...), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logo, err := NewLogo(tc.data)
			if tc.wantType == "" {
				if err == nil {
					t.Errorf("got a %s logo, want an error", logo.contentType)
				}
				return
			}
			if err != nil || logo.contentType != tc.wantType {
				t.Errorf("got %q, %v; want %s", logo.contentType, err, tc.wantType)
			}
		})
	}
}

// get serves one GET of path through the pages' routes.
func get(t *testing.T, p *Pages, path string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	mux := http.NewServeMux()
	p.Routes(mux)
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	return w
}

// linked returns the URL of the page's element matched by re.
func linked(t *testing.T, p *Pages, re *regexp.Regexp) string {
	t.Helper()
	w := httptest.NewRecorder()
	p.Render(w, English, http.StatusOK, "signedout.html", nil)
	m := re.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("page has no %s:\n%s", re, w.Body)
	}
	return m[1]
}

var (
	stylesheetRE = regexp.MustCompile(`<link rel="stylesheet" href="([^"]+)">`)
	logoRE       = regexp.MustCompile(`<header class="brand"><img src="([^"]+)" alt="[^"]*"></header>`)
)

func TestStylesheet(t *testing.T) {
	pages, err := Parse(Brand{})
	if err != nil {
		t.Fatal(err)
	}
	href := linked(t, pages, stylesheetRE)
	w := get(t, pages, href, nil)
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), stylesheet) {
		t.Fatalf("GET %s: got %d with %d bytes, want 200 and the stylesheet", href, w.Code, w.Body.Len())
	}
	for h, want := range map[string]string{
		"Content-Type":           "text/css; charset=utf-8",
		"Cache-Control":          "public, max-age=31536000, immutable",
		"X-Content-Type-Options": "nosniff",
		"Set-Cookie":             "",
	} {
		if got := w.Header().Get(h); got != want {
			t.Errorf("%s: got %q, want %q", h, got, want)
		}
	}
	// The URL changes with the content.
	if want := "/static/twostep.css?v=" + strings.Trim(w.Header().Get("ETag"), `"`); href != want {
		t.Errorf("stylesheet URL: got %q, want %q", href, want)
	}
	if again := get(t, pages, href, http.Header{"If-None-Match": {w.Header().Get("ETag")}}); again.Code != http.StatusNotModified {
		t.Errorf("conditional GET: got %d, want 304", again.Code)
	}
	// What the pages promise: dark mode, visible focus, a sharp QR code and
	// a secret selected with one click.
	for _, want := range []string{
		"@media (prefers-color-scheme: dark)", ":focus-visible", "image-rendering: pixelated", "user-select: all",
		"max-width: 100%",
	} {
		if !bytes.Contains(stylesheet, []byte(want)) {
			t.Errorf("stylesheet lacks %q", want)
		}
	}
	if w := get(t, pages, "/static/logo", nil); w.Code != http.StatusNotFound {
		t.Errorf("GET /static/logo without a logo: got %d, want 404", w.Code)
	}
}

func TestBrand(t *testing.T) {
	data := testPNG(t)
	logo, err := NewLogo(data)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := Parse(Brand{Name: "Acme <Corp>", Logo: logo})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	pages.Render(w, English, http.StatusOK, "signedout.html", nil)
	body := w.Body.String()
	for _, want := range []string{
		"<title>Signed out · Acme &lt;Corp&gt;</title>",
		`alt="Acme &lt;Corp&gt;"`,
		"Your Acme &lt;Corp&gt; session has ended.",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "· twostep") || strings.Contains(body, "<Corp>") {
		t.Errorf("page names twostep, or the brand unescaped:\n%s", body)
	}
	src := linked(t, pages, logoRE)
	if !strings.HasPrefix(src, "/static/logo?v=") {
		t.Errorf("logo URL: got %q, want /static/logo?v=...", src)
	}
	w = get(t, pages, src, nil)
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), data) {
		t.Fatalf("GET %s: got %d with %d bytes, want 200 and the logo", src, w.Code, w.Body.Len())
	}
	if got := w.Header().Get("Content-Type"); got != "image/png" {
		t.Errorf("Content-Type: got %q, want image/png", got)
	}
	if got := w.Header().Get("Content-Security-Policy"); !strings.Contains(got, "sandbox") {
		t.Errorf("Content-Security-Policy: got %q, want a sandbox (an SVG opened on its own runs no script)", got)
	}

	// Without a logo, the header shows the name.
	plain, err := Parse(Brand{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	w = httptest.NewRecorder()
	plain.Render(w, English, http.StatusOK, "signedout.html", nil)
	if want := `<header class="brand">Acme</header>`; !strings.Contains(w.Body.String(), want) {
		t.Errorf("page lacks %s:\n%s", want, w.Body)
	}
}
