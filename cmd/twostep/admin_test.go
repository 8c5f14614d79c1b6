package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/twostep/twostep/login"
	"github.com/twostep/twostep/storage"
)

const testAdminToken = "admin-token-0123456789abcdefghijklmnopqrstuvwxyz"

// adminClientT calls one admin instance's API.
type adminClientT struct {
	t    *testing.T
	base string
}

// do sends body (JSON, or none when "") with the given token ("" for no
// Authorization header) and returns the status, headers and body.
func (a adminClientT) do(method, path, token, body string) (int, http.Header, []byte) {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// call sends an authorized request, requires want and decodes the answer
// into out (unless nil).
func (a adminClientT) call(method, path, body string, want int, out any) {
	a.t.Helper()
	status, h, b := a.do(method, path, testAdminToken, body)
	if status != want {
		a.t.Fatalf("%s %s: got status %d (%s), want %d", method, path, status, b, want)
	}
	if out == nil {
		return
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		a.t.Errorf("%s %s: got Content-Type %q, want application/json", method, path, ct)
	}
	if err := json.Unmarshal(b, out); err != nil {
		a.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
	}
}

func startAdmin(t *testing.T) (*instance, adminClientT) {
	t.Helper()
	adminAddr := freeAddr(t)
	getenv := func(k string) string {
		if k == "TWOSTEP_ADMIN_TOKEN" {
			return testAdminToken
		}
		return ""
	}
	in := startServer(t, "", getenv, "--admin-addr", adminAddr)
	return in, adminClientT{t: t, base: "http://" + adminAddr}
}

// TestAdminAuth: the admin API answers only its bearer token, and only on
// its own listener.
func TestAdminAuth(t *testing.T) {
	in, api := startAdmin(t)
	tests := []struct {
		name, header string
		want         int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer " + strings.Repeat("x", len(testAdminToken)), http.StatusUnauthorized},
		{"token prefix", "Bearer " + testAdminToken[:len(testAdminToken)-1], http.StatusUnauthorized},
		{"token in another scheme", "Basic " + testAdminToken, http.StatusUnauthorized},
		{"right token", "Bearer " + testAdminToken, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", api.base+"/admin/users", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("got status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want != http.StatusUnauthorized {
				return
			}
			if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("got WWW-Authenticate %q, want a Bearer challenge", got)
			}
			if body["error"] == nil {
				t.Errorf("got body %v, want a JSON error", body)
			}
		})
	}
	// Nothing of the admin API on the public listener.
	req, _ := http.NewRequest("GET", in.issuer+"/admin/users", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /admin/users on the public address: got %d, want 404", resp.StatusCode)
	}
	if strings.Contains(in.stderr.String(), testAdminToken) {
		t.Error("the log holds the admin token")
	}
}

// TestAdminRefusesWeakToken: --admin-addr without a strong token does not
// start.
func TestAdminRefusesWeakToken(t *testing.T) {
	for _, token := range []string{"", "too-short"} {
		getenv := func(k string) string {
			if k == "TWOSTEP_ADMIN_TOKEN" {
				return token
			}
			return ""
		}
		db := "sqlite:" + filepath.Join(t.TempDir(), "twostep.db")
		err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--database", db},
			getenv, strings.NewReader(""), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "TWOSTEP_ADMIN_TOKEN") {
			t.Errorf("serve --admin-addr with token %q: got %v, want an error about TWOSTEP_ADMIN_TOKEN", token, err)
		}
	}
}

// TestAdminUsers drives every user action of the admin API.
func TestAdminUsers(t *testing.T) {
	in, api := startAdmin(t)
	var created adminUser
	api.call("POST", "/admin/users", `{"username":"alice","email":"alice@example.com","name":"Alice","groups":["staff"]}`,
		http.StatusCreated, &created)
	if created.Username != "alice" || created.Password == "" || created.ID == "" || !slices.Equal(created.Groups, []string{"staff"}) {
		t.Fatalf("created user: got %+v, want alice in staff with a generated password", created)
	}
	var bob adminUser
	api.call("POST", "/admin/users", `{"username":"bob","password":"Plenty-long-Passphrase-42"}`, http.StatusCreated, &bob)
	if bob.Password != "" {
		t.Errorf("user with a given password: got password %q in the answer, want none", bob.Password)
	}
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"duplicate", `{"username":"alice"}`, http.StatusConflict},
		{"unknown field", `{"username":"carol","admin":true}`, http.StatusBadRequest},
		{"bad JSON", `{"username":`, http.StatusBadRequest},
		{"two objects", `{"username":"carol"}{}`, http.StatusBadRequest},
		{"bad email", `{"username":"carol","email":"nope"}`, http.StatusBadRequest},
		{"short password", `{"username":"carol","password":"short"}`, http.StatusBadRequest},
		{"space in username", `{"username":"car ol"}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, b := api.do("POST", "/admin/users", testAdminToken, tc.body)
			var e map[string]string
			if status != tc.want || json.Unmarshal(b, &e) != nil || e["error"] == "" {
				t.Errorf("got %d %s, want %d with a JSON error", status, b, tc.want)
			}
		})
	}

	// Give alice an authenticator, and lock her with wrong codes.
	store := openTestStore(t, in)
	ctx := context.Background()
	if err := store.ConfirmTOTP(ctx, created.ID, "JBSWY3DPEHPK3PXP", 1, nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		_, err := store.CountCodeFailure(ctx, created.ID, login.MaxAccountCodes)
		if errors.Is(err, storage.ErrConflict) {
			break
		}
		if err != nil || i > login.MaxAccountCodes {
			t.Fatalf("count code failure %d: %v", i, err)
		}
	}
	var users []adminUser
	api.call("GET", "/admin/users", "", http.StatusOK, &users)
	if len(users) != 2 || users[0].Username != "alice" || !users[0].Locked || !users[0].HasTOTP || users[0].Disabled {
		t.Fatalf("user list: got %+v, want alice (locked, with an authenticator) and bob", users)
	}

	steps := []struct {
		action string
		check  func(u adminUser) bool
	}{
		{"unlock", func(u adminUser) bool { return !u.Locked }},
		{"reset-totp", func(u adminUser) bool { return !u.HasTOTP }},
		{"disable", func(u adminUser) bool { return u.Disabled }},
		{"enable", func(u adminUser) bool { return !u.Disabled }},
	}
	for _, s := range steps {
		var u adminUser
		api.call("POST", "/admin/users/alice/"+s.action, "", http.StatusOK, &u)
		if !s.check(u) {
			t.Errorf("after %s: got %+v", s.action, u)
		}
	}
	if stored, err := store.GetUser(ctx, created.ID); err != nil || stored.HasTOTP() || stored.FailedCodes != 0 || stored.Disabled {
		t.Errorf("stored alice: got %+v, %v, want unlocked, enabled, no authenticator", stored, err)
	}
	api.call("POST", "/admin/users/nobody/disable", "", http.StatusNotFound, nil)

	var events []auditLine
	api.call("GET", "/admin/audit?user=alice&since=1h", "", http.StatusOK, &events)
	var got []string
	for _, ev := range events {
		if ev.Username != "alice" || ev.UserAgent != "admin-api" || ev.IP != "127.0.0.1" || ev.Outcome != "success" {
			t.Errorf("audit event %+v: want alice's, from admin-api at 127.0.0.1, a success", ev)
		}
		got = append(got, ev.Event)
	}
	want := []string{"admin.user.add", "admin.user.unlock", "admin.user.reset_totp", "admin.user.disable", "admin.user.enable"}
	if !slices.Equal(got, want) {
		t.Errorf("audit of alice: got %q, want %q", got, want)
	}
	api.call("GET", "/admin/audit?limit=1", "", http.StatusOK, &events)
	if len(events) != 1 || events[0].Event != "admin.user.enable" {
		t.Errorf("audit?limit=1: got %+v, want the newest event only", events)
	}
	api.call("GET", "/admin/audit?since=soon", "", http.StatusBadRequest, nil)
	api.call("GET", "/admin/audit?limit=0", "", http.StatusBadRequest, nil)
	api.call("GET", "/admin/audit?user=nobody", "", http.StatusNotFound, nil)
}

// TestAdminClients registers, lists, updates and deletes a client through
// the admin API; the client it registers can get tokens.
func TestAdminClients(t *testing.T) {
	in, api := startAdmin(t)
	var created adminClient
	api.call("POST", "/admin/clients", `{"id":"svc","name":"Service","redirect_uris":["https://svc.example/cb"]}`,
		http.StatusCreated, &created)
	if created.ID != "svc" || created.ClientSecret == "" || created.Public || !created.RequirePKCE || created.IDTokenAlg != "RS256" {
		t.Fatalf("created client: got %+v, want confidential svc with a secret, PKCE and RS256", created)
	}
	cc := clientcredentials.Config{ClientID: "svc", ClientSecret: created.ClientSecret, TokenURL: in.issuer + "/oauth2/token"}
	if tok, err := cc.Token(context.Background()); err != nil || tok.AccessToken == "" {
		t.Fatalf("client_credentials grant with the returned secret: got %v, %v", tok, err)
	}
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"duplicate", `{"id":"svc","redirect_uris":["https://svc.example/cb"]}`, http.StatusConflict},
		{"no redirect", `{"id":"x"}`, http.StatusBadRequest},
		{"http redirect", `{"id":"x","redirect_uris":["http://example.com/cb"]}`, http.StatusBadRequest},
		{"bad alg", `{"id":"x","redirect_uris":["https://a/cb"],"id_token_alg":"none"}`, http.StatusBadRequest},
		{"unknown field", `{"id":"x","redirect_uris":["https://a/cb"],"secret":"mine"}`, http.StatusBadRequest},
		{"bad JSON", `[`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, b := api.do("POST", "/admin/clients", testAdminToken, tc.body)
			if status != tc.want {
				t.Errorf("got %d %s, want %d", status, b, tc.want)
			}
		})
	}
	var pub adminClient
	api.call("POST", "/admin/clients", `{"id":"spa","redirect_uris":["http://localhost:3000/cb"],"public":true}`, http.StatusCreated, &pub)
	if pub.ClientSecret != "" || !pub.Public {
		t.Errorf("public client: got %+v, want no secret", pub)
	}

	var updated adminClient
	api.call("PUT", "/admin/clients/svc", `{"name":"Renamed","redirect_uris":["https://new.example/cb"],"skip_consent":true,"require_par":true}`,
		http.StatusOK, &updated)
	if updated.Name != "Renamed" || !slices.Equal(updated.RedirectURIs, []string{"https://new.example/cb"}) ||
		!updated.SkipConsent || !updated.RequirePAR || updated.Public {
		t.Errorf("updated client: got %+v", updated)
	}
	api.call("PUT", "/admin/clients/svc", `{"redirect_uris":[]}`, http.StatusBadRequest, nil)
	api.call("PUT", "/admin/clients/svc", `{"backchannel_logout_uri":"http://example.com/logout"}`, http.StatusBadRequest, nil)
	api.call("PUT", "/admin/clients/svc", `{"public":true}`, http.StatusBadRequest, nil)
	api.call("PUT", "/admin/clients/nobody", `{"name":"x"}`, http.StatusNotFound, nil)
	var clients []adminClient
	api.call("GET", "/admin/clients", "", http.StatusOK, &clients)
	if len(clients) != 2 || clients[0].ID != "spa" || clients[1].Name != "Renamed" || clients[1].ClientSecret != "" {
		t.Fatalf("client list: got %+v, want spa and the renamed svc, no secrets", clients)
	}
	// The secret still works after the update.
	if _, err := cc.Token(context.Background()); err != nil {
		t.Errorf("client_credentials grant after the update: %v", err)
	}

	api.call("DELETE", "/admin/clients/svc", "", http.StatusNoContent, nil)
	api.call("DELETE", "/admin/clients/svc", "", http.StatusNotFound, nil)
	if _, err := cc.Token(context.Background()); err == nil {
		t.Error("client_credentials grant of a deleted client: got a token, want an error")
	}

	var events []auditLine
	api.call("GET", "/admin/audit", "", http.StatusOK, &events)
	var got []string
	for _, ev := range events {
		if strings.HasPrefix(ev.Event, "admin.") {
			got = append(got, ev.Event+" "+ev.ClientID)
		}
	}
	want := []string{"admin.client.add svc", "admin.client.add spa", "admin.client.update svc", "admin.client.remove svc"}
	if !slices.Equal(got, want) {
		t.Errorf("admin events: got %q, want %q", got, want)
	}
}
