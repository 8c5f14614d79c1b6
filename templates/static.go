package templates

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"time"
)

//go:embed twostep.css
var stylesheet []byte

// The paths of the files the pages link to.
const (
	stylesheetPath = "/static/twostep.css"
	logoPath       = "/static/logo"
)

// MaxLogoSize is the largest logo NewLogo accepts, in bytes.
const MaxLogoSize = 256 << 10

// Logo is an image for the top of every page. The zero Logo is none.
type Logo struct {
	data        []byte
	contentType string
}

// NewLogo checks that data is a PNG, JPEG or SVG image of at most
// MaxLogoSize bytes and returns it as a Logo.
func NewLogo(data []byte) (Logo, error) {
	if len(data) > MaxLogoSize {
		return Logo{}, fmt.Errorf("the logo is larger than %d KiB", MaxLogoSize>>10)
	}
	switch ct := http.DetectContentType(data); ct {
	case "image/png", "image/jpeg":
		return Logo{data: data, contentType: ct}, nil
	}
	if isSVG(data) {
		return Logo{data: data, contentType: "image/svg+xml"}, nil
	}
	return Logo{}, errors.New("the logo is not a PNG, JPEG or SVG image")
}

// isSVG reports whether data is XML whose root element is <svg>.
func isSVG(data []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		if el, ok := tok.(xml.StartElement); ok {
			return el.Name.Local == "svg"
		}
	}
}

// asset is a file the pages link to, served from memory.
type asset struct {
	// url is its path with a digest of its content as the query, so that
	// browsers may keep it for good and still see a new one at once; ""
	// when there is no such file.
	url         string
	etag        string
	contentType string
	data        []byte
}

func newAsset(path, contentType string, data []byte) asset {
	if len(data) == 0 {
		return asset{}
	}
	sum := sha256.Sum256(data)
	v := hex.EncodeToString(sum[:8])
	return asset{url: path + "?v=" + v, etag: `"` + v + `"`, contentType: contentType, data: data}
}

// Routes registers the stylesheet and, if the brand has one, the logo on
// mux.
func (p *Pages) Routes(mux *http.ServeMux) {
	mux.Handle("GET "+stylesheetPath, p.stylesheet)
	if p.logo.url != "" {
		mux.Handle("GET "+logoPath, p.logo)
	}
}

// ServeHTTP serves the asset to anyone, cached for a year: its URL changes
// with its content. It sets no cookie. An SVG opened on its own runs no
// script: the sandbox CSP forbids it.
func (a asset) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.data))
}
