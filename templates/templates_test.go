package templates

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
