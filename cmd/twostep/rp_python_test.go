package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// systemPython is Debian's interpreter, where python3-authlib installs;
// a pyenv or virtualenv python on PATH would not see those packages.
const systemPython = "/usr/bin/python3"

// needPython skips the test when the system Python cannot import every one
// of modules, except in CI, where a missing dependency must fail loudly.
// Each module comes from Debian's package python3-MODULE.
func needPython(t *testing.T, modules ...string) {
	t.Helper()
	out, err := exec.Command(systemPython, "-c", "import "+strings.Join(modules, ", ")).CombinedOutput()
	if err == nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	packages := make([]string, len(modules))
	for i, m := range modules {
		packages[i] = "python3-" + m
	}
	msg := fmt.Sprintf("%s cannot import %s (%v: %s); install Debian's packages: apt-get install -y %s",
		systemPython, strings.Join(modules, ", "), err, lines[len(lines)-1], strings.Join(packages, " "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// clientCredentials is what `twostep client add --json` prints.
type clientCredentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// addClient registers a confidential client with `client add --json`;
// args are its flags.
func addClient(t *testing.T, in *instance, args ...string) clientCredentials {
	t.Helper()
	out, err := in.cli(t, "", append([]string{"client", "add", "--json"}, args...)...)
	if err != nil {
		t.Fatalf("client add: %v: %s", err, out)
	}
	var creds clientCredentials
	if err := json.Unmarshal([]byte(out), &creds); err != nil || creds.ClientSecret == "" {
		t.Fatalf("client add --json printed %q (%v), want client_id and client_secret", out, err)
	}
	return creds
}

// runPython runs a script of testdata with the system Python and the
// environment env (KEY=VALUE), and fails the test unless it exits 0 having
// printed summary.
func runPython(t *testing.T, in *instance, script, summary string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, systemPython, "testdata/"+script)
	cmd.Env = append(append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1"), env...)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s\nserver log:\n%s", script, err, got, in.stderr)
	}
	if !strings.Contains(string(got), summary) {
		t.Fatalf("%s exited 0 without its summary line %q:\n%s", script, summary, got)
	}
	t.Logf("%s", got)
}

// TestAuthlibRelyingParty runs an independent certified relying-party
// library, Python's Authlib, through the whole flow against `twostep
// serve`: discovery, code + PKCE S256 + nonce, the pages filled by their
// autocomplete attributes, ID token validation, userinfo, refresh rotation,
// and a second login with remembered consent (testdata/rp_authlib.py).
func TestAuthlibRelyingParty(t *testing.T) {
	needPython(t, "authlib", "requests")
	in := startServer(t, "", nil)
	const password = "correct horse battery staple"
	addUser(t, in, "alice", password)
	creds := addClient(t, in, "--id", "authlib-app", "--redirect-uri", testRedirect, "--name", "Authlib App")
	runPython(t, in, "rp_authlib.py", "2 logins ok",
		"ISSUER="+in.issuer,
		"CLIENT_ID="+creds.ClientID,
		"CLIENT_SECRET="+creds.ClientSecret,
		"REDIRECT_URI="+testRedirect,
		"USERNAME=alice",
		"PASSWORD="+password,
	)
}

// TestFlaskOIDCAuth signs users in to a Flask application that registers
// twostep exactly as dash-auth's OIDCAuth does (examples/dash), on Authlib's
// Flask client: client_secret_post, PKCE S256, the groups claim of the ID
// token deciding who sees the admin page, logout at the
// end_session_endpoint, a returning user, and a client registered with
// --no-pkce (testdata/rp_flask_oidcauth.py).
func TestFlaskOIDCAuth(t *testing.T) {
	needPython(t, "authlib", "flask", "requests")
	in := startServer(t, "", nil)
	app := "http://" + freeAddr(t) // the Flask application listens here
	users := []struct{ name, groups string }{{"alice", "staff,admin"}, {"bob", "staff"}}
	for _, u := range users {
		out, err := in.cli(t, "password of "+u.name+"\n", "user", "add", u.name, "--email", u.name+"@example.com",
			"--name", "User "+u.name, "--groups", u.groups, "--password-stdin")
		if err != nil {
			t.Fatalf("user add %s: %v: %s", u.name, err, out)
		}
	}
	pkce := addClient(t, in, "--id", "dash-example", "--name", "Sales dashboard",
		"--redirect-uri", app+"/oidc/twostep/callback", "--post-logout-redirect-uri", app+"/")
	noPKCE := addClient(t, in, "--id", "dash-example-nopkce", "--name", "Sales dashboard without PKCE",
		"--redirect-uri", app+"/oidc/twostep-nopkce/callback", "--no-pkce")
	runPython(t, in, "rp_flask_oidcauth.py", "flask oidcauth relying party: ok",
		"ISSUER="+in.issuer,
		"APP_URL="+app,
		"CLIENT_ID="+pkce.ClientID,
		"CLIENT_SECRET="+pkce.ClientSecret,
		"NOPKCE_CLIENT_ID="+noPKCE.ClientID,
		"NOPKCE_CLIENT_SECRET="+noPKCE.ClientSecret,
		"ADMIN_USERNAME=alice",
		"ADMIN_PASSWORD=password of alice",
		"STAFF_USERNAME=bob",
		"STAFF_PASSWORD=password of bob",
	)
}
