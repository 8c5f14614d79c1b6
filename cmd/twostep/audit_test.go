package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// openTestStore opens (creating) the SQLite database of in, as the
// commands do.
func openTestStore(t *testing.T, in *instance) *storage.Store {
	t.Helper()
	f := dbFlags{database: in.database}
	store, _, err := f.open(context.Background(), env{getenv: in.getenv, stderr: io.Discard}, storage.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// cliInstance is a database for command-line tests: no server.
func cliInstance(t *testing.T) *instance {
	return &instance{database: "sqlite:" + filepath.Join(t.TempDir(), "cli.db"), getenv: func(string) string { return "" }}
}

// runCLI runs one command against in's database and returns both outputs.
func runCLI(in *instance, stdin string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(context.Background(), append(args, "--database", in.database), in.getenv, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

func mustCLI(t *testing.T, in *instance, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := runCLI(in, stdin, args...)
	if err != nil {
		t.Fatalf("twostep %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// logLines decodes the JSON log lines with the given message.
func logLines(t *testing.T, log string, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestAuditRecorder: what login, oidc and consent report reaches the audit
// table, the log (with the request's ID and address) and the metrics.
func TestAuditRecorder(t *testing.T) {
	in := cliInstance(t)
	store := openTestStore(t, in)
	pages, err := templates.Parse(templates.Brand{})
	if err != nil {
		t.Fatal(err)
	}
	logBuf := newSyncBuffer()
	logger := slog.New(slog.NewJSONHandler(logBuf, nil))
	m := newMetrics(store)
	a := &auditor{store: store, log: logger, metrics: m, now: time.Now}
	events := []storage.AuditEvent{
		{Event: "login.totp", Outcome: "replayed", UserID: "u1", ClientID: "app"},
		{Event: "login.password", Outcome: "success", UserID: "u1", ClientID: "app"},
		{Event: "login.password", Outcome: "something new", UserID: "u1"},
		{Event: "login.device", Outcome: "success", UserID: "u1", Detail: "abcdef012345"},
		{Event: "token.issued", Outcome: "success", ClientID: "app", Detail: "refresh_token"},
		{Event: "token.issued", Outcome: "success", ClientID: "app", Detail: "password"},
		{Event: "consent.granted", Outcome: "success", UserID: "u1", ClientID: "app"},
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, ev := range events {
			a.record(r, ev)
		}
	})
	proxies, err := parseTrustedProxies("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	h := middleware(handler, middlewareConfig{log: logger, pages: pages, m: m, https: true, proxies: proxies})
	req := httptest.NewRequest(http.MethodPost, "/login/totp", nil)
	req.RemoteAddr = "10.0.0.2:5555"
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	req.Header.Set("User-Agent", "test-agent/1.0")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	requestID := rec.Header().Get("X-Request-Id")
	if requestID == "" {
		t.Fatal("no X-Request-Id")
	}

	stored, err := store.ListAuditEvents(context.Background(), storage.AuditFilter{Since: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(events) {
		t.Fatalf("stored %d events, want %d", len(stored), len(events))
	}
	for i, ev := range stored {
		if ev.Event != events[i].Event || ev.IP != "198.51.100.7" || ev.UserAgent != "test-agent/1.0" ||
			time.Since(ev.Time) > time.Minute || ev.UserID != events[i].UserID || ev.Detail != events[i].Detail {
			t.Errorf("stored event %d: got %+v, want %s from 198.51.100.7, test-agent/1.0, now", i, ev, events[i].Event)
		}
	}

	logged := logLines(t, logBuf.String(), "audit")
	if len(logged) != len(events) {
		t.Fatalf("logged %d audit lines, want %d:\n%s", len(logged), len(events), logBuf.String())
	}
	for _, key := range []string{"event", "outcome", "user_id", "client_id", "ip", "request_id"} {
		if _, ok := logged[0][key]; !ok {
			t.Errorf("audit log line lacks %q: %v", key, logged[0])
		}
	}
	if logged[0]["request_id"] != requestID || logged[0]["ip"] != "198.51.100.7" || logged[0]["event"] != "login.totp" {
		t.Errorf("audit log line: got %v, want request_id %s, ip 198.51.100.7, event login.totp", logged[0], requestID)
	}
	if req := logLines(t, logBuf.String(), "request"); len(req) != 1 || req[0]["ip"] != "198.51.100.7" {
		t.Errorf("request log: got %v, want one line with the client's ip", req)
	}

	metricsRec := httptest.NewRecorder()
	m.Handler().ServeHTTP(metricsRec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`twostep_login_attempts_total{outcome="replayed",step="totp"} 1`,
		`twostep_login_attempts_total{outcome="success",step="password"} 1`,
		`twostep_login_attempts_total{outcome="other",step="password"} 1`,
		`twostep_login_attempts_total{outcome="success",step="device"} 1`,
		`twostep_tokens_issued_total{grant_type="refresh_token"} 1`,
		`twostep_tokens_issued_total{grant_type="other"} 1`,
	} {
		if !strings.Contains(metricsRec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metricsRec.Body.String(), "consent") {
		t.Errorf("/metrics counts a consent event as a login or a token")
	}

	// A failure to store the event is logged, and the request goes on.
	store.Close()
	rec = httptest.NewRecorder()
	events = events[:1]
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("after a failed audit write: got status %d, want 200", rec.Code)
	}
	if failed := logLines(t, logBuf.String(), "audit: record event"); len(failed) != 1 || failed[0]["level"] != "ERROR" {
		t.Errorf("failed audit write: got log lines %v, want one error", failed)
	}
}

// TestHSTS: an https issuer's every response asks for https; an http one's
// does not.
func TestHSTS(t *testing.T) {
	pages, err := templates.Parse(templates.Brand{})
	if err != nil {
		t.Fatal(err)
	}
	in := cliInstance(t)
	m := newMetrics(openTestStore(t, in))
	for _, https := range []bool{true, false} {
		h := middleware(http.NotFoundHandler(), middlewareConfig{log: slog.New(slog.DiscardHandler), pages: pages, m: m, https: https})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/nope", nil))
		got := rec.Header().Get("Strict-Transport-Security")
		want := ""
		if https {
			want = "max-age=31536000; includeSubDomains"
		}
		if got != want {
			t.Errorf("https %t: got Strict-Transport-Security %q, want %q", https, got, want)
		}
	}
}

// TestAuditCLI: `twostep audit` prints the events oldest first, one per
// line, with usernames, and filters by user, age and count.
func TestAuditCLI(t *testing.T) {
	in := cliInstance(t)
	mustCLI(t, in, "a long enough password\n", "user", "add", "alice", "--password-stdin")
	mustCLI(t, in, "a long enough password\n", "user", "add", "bob", "--password-stdin")
	mustCLI(t, in, "", "client", "add", "--id", "app", "--redirect-uri", "https://app.example/cb")
	store := openTestStore(t, in)
	ctx := context.Background()
	alice, err := store.GetUserByUsername(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []storage.AuditEvent{
		{Time: time.Now().Add(-48 * time.Hour), Event: "login.password", Outcome: "failure", UserID: alice.ID, IP: "192.0.2.2"},
		{Event: "login.totp", Outcome: "success", UserID: alice.ID, ClientID: "app", IP: "192.0.2.1",
			UserAgent: "Mozilla/5.0\tevil\x1b[2J\u2028agent"},
		{Event: "login.password", Outcome: "failure", UserID: "deleted-user-id", IP: "192.0.2.3"},
	} {
		if err := store.RecordAudit(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}

	out := mustCLI(t, in, "", "audit")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("audit: got %d lines, want a header and 5 events:\n%s", len(lines), out)
	}
	wantOrder := []string{"admin.user.add", "admin.user.add", "admin.client.add", "login.totp", "login.password"}
	for i, want := range wantOrder {
		if f := strings.Fields(lines[i+1]); len(f) < 2 || f[1] != want {
			t.Errorf("audit line %d: got %q, want event %s", i+1, lines[i+1], want)
		}
		if _, err := time.Parse(time.RFC3339, strings.Fields(lines[i+1])[0]); err != nil {
			t.Errorf("audit line %d: time is not RFC 3339: %v", i+1, err)
		}
	}
	for _, want := range []string{"alice", "bob", "cli", "success", "192.0.2.1", "deleted-user-id"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit output lacks %q:\n%s", want, out)
		}
	}
	if strings.ContainsAny(out, "\t\x1b\u2028") || !strings.Contains(out, "Mozilla/5.0?evil?[2J?agent") {
		t.Errorf("audit output passes control characters through:\n%q", out)
	}
	if strings.Contains(out, alice.ID) {
		t.Errorf("audit output shows alice's ID instead of her username:\n%s", out)
	}

	if out := mustCLI(t, in, "", "audit", "--since", "72h"); !strings.Contains(out, "192.0.2.2") {
		t.Errorf("audit --since 72h lacks the event of two days ago:\n%s", out)
	}

	out = mustCLI(t, in, "", "audit", "--user", "alice", "--json")
	var got []auditLine
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var l auditLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("audit --json line %q: %v", line, err)
		}
		got = append(got, l)
	}
	if len(got) != 2 || got[0].Event != "admin.user.add" || got[1].Event != "login.totp" {
		t.Fatalf("audit --user alice --json: got %+v, want admin.user.add then login.totp", got)
	}
	if got[0].Username != "alice" || got[0].UserID != alice.ID || got[0].UserAgent != "cli" || got[0].IP != "" || got[0].Outcome != "success" {
		t.Errorf("audit --json admin.user.add: got %+v", got[0])
	}
	if got[1].ClientID != "app" || got[1].IP != "192.0.2.1" || got[1].UserAgent != "Mozilla/5.0\tevil\x1b[2J\u2028agent" {
		t.Errorf("audit --json login.totp: got %+v", got[1])
	}
	if _, err := time.Parse(time.RFC3339, got[1].Time); err != nil {
		t.Errorf("audit --json time %q: %v", got[1].Time, err)
	}

	out, errOut, err := runCLI(in, "", "audit", "--limit", "2")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 ||
		!strings.Contains(lines[1], "login.totp") || !strings.Contains(lines[2], "deleted-user-id") {
		t.Errorf("audit --limit 2: got\n%s\nwant the newest two, oldest first", out)
	}
	if !strings.Contains(errOut, "raise --limit") {
		t.Errorf("audit --limit 2: stderr %q, want a note that more events exist", errOut)
	}

	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"audit", "--user", "nobody"}, `no user "nobody"`},
		{[]string{"audit", "--since", "-1h"}, "--since must be a positive duration"},
		{[]string{"audit", "--limit", "0"}, "--limit must be positive"},
		{[]string{"audit", "extra"}, `unexpected argument "extra"`},
	} {
		if _, _, err := runCLI(in, "", tc.args...); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%v: got error %v, want one containing %q", tc.args, err, tc.wantErr)
		}
	}
}

// TestAdminActionsAudited: every administrator's command leaves one event,
// from "cli", with the user or client it acted on, and no secret.
func TestAdminActionsAudited(t *testing.T) {
	in := cliInstance(t)
	addOut := mustCLI(t, in, "", "user", "add", "carol")
	mustCLI(t, in, "new password 123\n", "user", "passwd", "carol", "--password-stdin")
	mustCLI(t, in, "", "user", "reset-totp", "carol")
	mustCLI(t, in, "", "user", "unlock", "carol")
	mustCLI(t, in, "", "user", "disable", "carol")
	clientOut := mustCLI(t, in, "", "client", "add", "--id", "svc", "--redirect-uri", "https://svc.example/cb", "--json")
	mustCLI(t, in, "", "client", "remove", "svc")
	mustCLI(t, in, "", "keys", "rotate")
	mustCLI(t, in, "", "keys", "rotate-secrets")

	out := mustCLI(t, in, "", "audit", "--json")
	var events []auditLine
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var l auditLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("audit --json line %q: %v", line, err)
		}
		events = append(events, l)
	}
	want := []struct{ event, user, client string }{
		{"admin.user.add", "carol", ""},
		{"admin.user.passwd", "carol", ""},
		{"admin.user.reset_totp", "carol", ""},
		{"admin.user.unlock", "carol", ""},
		{"admin.user.disable", "carol", ""},
		{"admin.client.add", "", "svc"},
		{"admin.client.remove", "", "svc"},
		{"admin.keys.rotate", "", ""}, // RS256
		{"admin.keys.rotate", "", ""}, // ES256
		{"admin.keys.rotate_secrets", "", ""},
	}
	if len(events) != len(want) {
		t.Fatalf("got %d events, want %d:\n%s", len(events), len(want), out)
	}
	for i, w := range want {
		ev := events[i]
		if ev.Event != w.event || ev.Username != w.user || ev.ClientID != w.client || ev.Outcome != "success" ||
			ev.UserAgent != "cli" || ev.IP != "" {
			t.Errorf("event %d: got %+v, want %s by cli on user %q client %q", i, ev, w.event, w.user, w.client)
		}
	}
	var creds struct {
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(clientOut), &creds); err != nil || creds.ClientSecret == "" {
		t.Fatalf("client add --json: %q, %v", clientOut, err)
	}
	_, password, _ := strings.Cut(addOut, "password: ")
	password, _, _ = strings.Cut(password, "\n")
	for _, secret := range []string{creds.ClientSecret, password, "new password 123"} {
		if secret == "" || strings.Contains(out, secret) {
			t.Errorf("the audit log holds a secret (or the test found none to look for): %q", secret)
		}
	}
}
