package login

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
)

const rememberFor = 30 * 24 * time.Hour

// remember signs username in with a TOTP code, ticking "remember this
// device", and returns the device cookie the browser got.
func (e *env) remember(username, password, secret string) string {
	e.t.Helper()
	b := e.browser()
	b.mustPass(username, password)
	csrf := csrfToken(e.t, b.get("/login/totp").body)
	p := b.post("/login/totp", url.Values{"csrf_token": {csrf}, "code": {codeAt(e.t, secret, e.clock.Now())}, "remember": {"1"}})
	if !p.signedIn() || b.device == "" {
		e.t.Fatalf("code with remember ticked: got %d to %q and device cookie %q, want 303 to %s and a cookie", p.status, p.location(), b.device, accountPath)
	}
	return b.device
}

// restart replaces e's handler with one whose RememberDevice is remember.
func (e *env) restart(remember time.Duration) {
	e.t.Helper()
	h, err := New(Config{Store: e.store, Pages: e.h.pages, Hasher: e.hasher, Now: e.clock.Now, Audit: e.audit.record, RememberDevice: remember})
	if err != nil {
		e.t.Fatal(err)
	}
	e.h, e.mux = h, http.NewServeMux()
	h.Routes(e.mux)
}

func TestRememberCheckbox(t *testing.T) {
	for _, tc := range []struct {
		name     string
		remember time.Duration
		want     string // "" means no checkbox
	}{
		{"off", 0, ""},
		{"negative is off", -time.Hour, ""},
		{"30 days", rememberFor, "for 30 days"},
		{"36 hours, rounded up", 36 * time.Hour, "for 2 days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.RememberDevice = tc.remember })
			e.addEnrolledUser("alice", "pw-alice-1")
			b := e.browser()
			b.mustPass("alice", "pw-alice-1")
			body := b.get("/login/totp").body
			has := strings.Contains(body, `<input type="checkbox" id="remember" name="remember" value="1">`)
			if has != (tc.want != "") {
				t.Errorf("got checkbox %v, want %v", has, tc.want != "")
			}
			if tc.want != "" && !strings.Contains(html.UnescapeString(body), "Don't ask for a code on this browser "+tc.want) {
				t.Errorf("page lacks %q:\n%s", tc.want, body)
			}
		})
	}
}

func TestRememberDeviceCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[secure], func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.RememberDevice = rememberFor; c.SecureCookie = secure })
			alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
			b := e.browser()
			b.mustPass("alice", "pw-alice-1")
			csrf := csrfToken(t, b.get("/login/totp").body)
			e.audit.take()
			req := url.Values{"csrf_token": {csrf}, "code": {codeAt(t, secret, e.clock.Now())}, "remember": {"1"}}
			p := b.post("/login/totp", req)
			var c *http.Cookie
			for _, pc := range p.cookies {
				if pc.Name == DeviceCookieName {
					c = pc
				}
			}
			if c == nil {
				t.Fatalf("got cookies %v, want %s", p.cookies, DeviceCookieName)
			}
			if c.Path != "/login" || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure != secure {
				t.Errorf("got Path %q HttpOnly %v SameSite %v Secure %v, want /login true Strict %v", c.Path, c.HttpOnly, c.SameSite, c.Secure, secure)
			}
			if c.MaxAge != int(rememberFor.Seconds()) || !c.Expires.Equal(t0.Add(rememberFor).Truncate(time.Second)) {
				t.Errorf("got MaxAge %d Expires %v, want %d and %v", c.MaxAge, c.Expires, int(rememberFor.Seconds()), t0.Add(rememberFor))
			}
			if !validToken(c.Value) {
				t.Errorf("got value %q, want 256 random bits in base64url", c.Value)
			}
			ds, err := e.store.ListDevices(context.Background(), alice.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 1 || ds[0].ID != sessionID(c.Value) || !ds[0].ExpiresAt.Equal(t0.Add(rememberFor)) || ds[0].IP != "192.0.2.1" {
				t.Fatalf("got devices %+v, want one keyed by the hash of the cookie, expiring %v, from 192.0.2.1", ds, t0.Add(rememberFor))
			}
			evs := e.audit.take()
			if got, want := briefEvents(evs), []string{"login.totp success id-alice", "device.remembered success id-alice"}; !slices.Equal(got, want) {
				t.Errorf("got events %q, want %q", got, want)
			}
			if got := evs[len(evs)-1].Detail; got != ds[0].ID[:12] || strings.Contains(got, c.Value) {
				t.Errorf("got event detail %q, want the device ID's prefix %q", got, ds[0].ID[:12])
			}
		})
	}
}

func TestRememberDeviceNotAsked(t *testing.T) {
	for _, tc := range []struct {
		name     string
		remember time.Duration
		form     url.Values
	}{
		{"not ticked", rememberFor, url.Values{}},
		{"feature off, ticked anyway", 0, url.Values{"remember": {"1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.RememberDevice = tc.remember })
			alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
			b := e.browser()
			b.mustPass("alice", "pw-alice-1")
			tc.form.Set("csrf_token", csrfToken(t, b.get("/login/totp").body))
			tc.form.Set("code", codeAt(t, secret, e.clock.Now()))
			if p := b.post("/login/totp", tc.form); !p.signedIn() {
				t.Fatalf("got %d to %q, want 303 to %s", p.status, p.location(), accountPath)
			}
			if b.device != "" {
				t.Errorf("got device cookie %q, want none", b.device)
			}
			if ds, err := e.store.ListDevices(context.Background(), alice.ID); err != nil || len(ds) != 0 {
				t.Errorf("got devices %+v, %v; want none", ds, err)
			}
		})
	}
}

func TestRememberedDevice(t *testing.T) {
	const skip, ask, enrol = "skip", "ask for a code", "enrol"
	for _, tc := range []struct {
		name string
		form url.Values // of the authorization request
		// setup runs after alice's device was remembered an hour ago; it
		// may change the browser's device cookie, the user or the clock.
		setup    func(e *env, b *browser)
		username string
		password string
		want     string
	}{
		{name: "no conditions", want: skip},
		{name: "acr_values of other classes", form: url.Values{"acr_values": {"urn:example:weak " + storage.ACRRememberedDevice}}, want: skip},
		{name: "max_age longer than the device's age", form: url.Values{"max_age": {"3601"}}, want: skip},
		{name: "prompt=login", form: url.Values{"prompt": {"login"}}, want: ask},
		{name: "prompt=consent login", form: url.Values{"prompt": {"consent login"}}, want: ask},
		{name: "acr_values naming the TOTP class", form: url.Values{"acr_values": {"urn:example:weak " + storage.ACRTOTP}}, want: ask},
		{name: "max_age shorter than the device's age", form: url.Values{"max_age": {"3599"}}, want: ask},
		{name: "max_age zero", form: url.Values{"max_age": {"0"}}, want: ask},
		{name: "max_age malformed", form: url.Values{"max_age": {"an hour"}}, want: ask},
		{name: "another user's device", username: "bob", password: "pw-bob-1", want: ask},
		{name: "expired device", setup: func(e *env, _ *browser) { e.clock.Add(rememberFor) }, want: ask},
		{name: "tampered cookie", setup: func(_ *env, b *browser) { b.device = forge(b.device) }, want: ask},
		{name: "after ResetTOTP", setup: func(e *env, _ *browser) {
			if err := e.store.ResetTOTP(context.Background(), "id-alice"); err != nil {
				e.t.Fatal(err)
			}
		}, want: enrol},
		{name: "after a password change", password: "pw-alice-2", setup: func(e *env, _ *browser) {
			hash, err := e.hasher.Hash("pw-alice-2")
			if err != nil {
				e.t.Fatal(err)
			}
			if err := e.store.SetPasswordHash(context.Background(), "id-alice", hash, ""); err != nil {
				e.t.Fatal(err)
			}
		}, want: ask},
		{name: "feature turned off since", setup: func(e *env, _ *browser) { e.restart(0) }, want: ask},
		{name: "shorter than the device's age since", setup: func(e *env, _ *browser) { e.restart(time.Hour) }, want: ask},
		{name: "still longer than the device's age", setup: func(e *env, _ *browser) { e.restart(time.Hour + time.Second) }, want: skip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.RememberDevice = rememberFor })
			form := url.Values{"client_id": {"app"}}
			for k, v := range tc.form {
				form[k] = v
			}
			_, secret := e.addEnrolledUser("alice", "pw-alice-1")
			e.addEnrolledUser("bob", "pw-bob-1")
			device := e.remember("alice", "pw-alice-1", secret)
			e.clock.Add(time.Hour)
			b := e.browser()
			b.device, b.ar = device, "ar-1"
			if tc.setup != nil {
				tc.setup(e, b)
			}
			e.addAuthRequest("ar-1", form)
			username, password := "alice", "pw-alice-1"
			if tc.username != "" {
				username = tc.username
			}
			if tc.password != "" {
				password = tc.password
			}
			lastStep := e.user("id-" + username).TOTPLastStep
			e.audit.take()

			b.get("/login?auth_request=ar-1")
			passwordCookie := b.cookie
			p := b.post("/login", url.Values{"csrf_token": {b.csrf()}, "username": {username}, "password": {password}})
			evs := briefEvents(e.audit.take())
			if tc.want != skip {
				if p.status != http.StatusSeeOther || p.location() != "/login/totp" {
					t.Fatalf("got %d to %q, want 303 to /login/totp", p.status, p.location())
				}
				totp := b.get("/login/totp")
				if enrolling := strings.Contains(totp.body, "otpauth://"); enrolling != (tc.want == enrol) {
					t.Errorf("got enrolment page %v, want %v", enrolling, tc.want == enrol)
				}
				if want := []string{"login.password success id-" + username}; !slices.Equal(evs, want) {
					t.Errorf("got events %q, want %q", evs, want)
				}
				if _, err := e.h.Current(b.request()); err == nil {
					t.Errorf("Current: got a done session, want none before the code")
				}
				return
			}
			if want := "/oauth2/auth?auth_request=ar-1"; p.status != http.StatusSeeOther || p.location() != want {
				t.Fatalf("got %d to %q, want 303 to %q", p.status, p.location(), want)
			}
			if b.cookie == passwordCookie || b.cookie == "" {
				t.Errorf("cookie: got %q, want a new value", b.cookie)
			}
			cur, err := e.h.Current(b.request())
			if err != nil {
				t.Fatalf("Current: %v", err)
			}
			if got := strings.Join(cur.AMR, " "); got != "pwd" || cur.ACR != storage.ACRRememberedDevice || !cur.AuthTime.Equal(e.clock.Now()) {
				t.Errorf("got AMR %q ACR %q AuthTime %v, want pwd, %q, %v", got, cur.ACR, cur.AuthTime, storage.ACRRememberedDevice, e.clock.Now())
			}
			if want := []string{"login.password success id-alice", "login.device success id-alice"}; !slices.Equal(evs, want) {
				t.Errorf("got events %q, want %q", evs, want)
			}
			if got := e.user("id-alice").TOTPLastStep; got != lastStep {
				t.Errorf("got last TOTP step %d, want %d (no code used)", got, lastStep)
			}
		})
	}
}

func TestRememberedDeviceWithoutAuthRequest(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RememberDevice = rememberFor })
	_, secret := e.addEnrolledUser("alice", "pw-alice-1")
	device := e.remember("alice", "pw-alice-1", secret)
	e.clock.Add(time.Hour)
	b := e.browser()
	b.device = device
	// The login leads to the account page, which wants a code in every
	// login: the remembered browser is asked for one all the same.
	p := b.passwordStep("alice", "pw-alice-1")
	if p.status != http.StatusSeeOther || p.location() != "/login/totp" {
		t.Fatalf("got %d to %q, want 303 to /login/totp", p.status, p.location())
	}
	if _, err := e.h.Current(b.request()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Current before the code: got %v, want ErrNotFound", err)
	}
	if p := b.codeStep(codeAt(t, secret, e.clock.Now())); !p.signedIn() {
		t.Fatalf("code: got %d to %q, want 303 to %s", p.status, p.location(), accountPath)
	}
	if ls, err := e.h.Current(b.request()); err != nil || ls.ACR != storage.ACRTOTP {
		t.Errorf("Current: got ACR %q, %v; want the done session with %q", ls.ACR, err, storage.ACRTOTP)
	}
}
