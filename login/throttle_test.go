package login

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/templates"
)

func TestBackoffDelay(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy Backoff
		delays map[int]time.Duration // failures → block
	}{
		{"account default", DefaultAccountThrottle(), map[int]time.Duration{
			0: 0, 1: 0, 4: 0, 5: time.Second, 6: 2 * time.Second, 7: 4 * time.Second,
			14: 512 * time.Second, 15: 15 * time.Minute, 19: 15 * time.Minute, 20: 15 * time.Minute, 1000: 15 * time.Minute,
		}},
		{"address default", DefaultIPThrottle(), map[int]time.Duration{
			0: 0, 19: 0, 20: time.Second, 21: 2 * time.Second, 29: 512 * time.Second,
			30: 15 * time.Minute, 99: 15 * time.Minute, 100: 15 * time.Minute,
		}},
		{"lock before doubling reaches it", Backoff{After: 2, Base: time.Second, LockAfter: 4, Lock: time.Hour}, map[int]time.Duration{
			1: 0, 2: time.Second, 3: 2 * time.Second, 4: time.Hour, 5: time.Hour,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for n, want := range tc.delays {
				if got := tc.policy.delay(n); got != want {
					t.Errorf("delay(%d): got %v, want %v", n, got, want)
				}
			}
		})
	}
}

func TestBackoffValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		policy  Backoff
		wantErr string // "" means valid
	}{
		{"account default", DefaultAccountThrottle(), ""},
		{"address default", DefaultIPThrottle(), ""},
		{"no free attempt", Backoff{After: 0, Base: time.Second, LockAfter: 5, Lock: time.Minute}, "at least 1 failure"},
		{"lock before back-off", Backoff{After: 5, Base: time.Second, LockAfter: 5, Lock: time.Minute}, "must come after"},
		{"no base", Backoff{After: 1, LockAfter: 5, Lock: time.Minute}, "base delay"},
		{"lock shorter than base", Backoff{After: 1, Base: time.Minute, LockAfter: 5, Lock: time.Second}, "base delay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Validate()
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestNewRejectsBadThrottle(t *testing.T) {
	e := newEnv(t)
	bad := Backoff{After: 5, Base: time.Second, LockAfter: 3, Lock: time.Minute}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"account", Config{Store: e.store, Pages: e.h.pages, AccountThrottle: bad}},
		{"address", Config{Store: e.store, Pages: e.h.pages, IPThrottle: bad}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Errorf("got nil error, want one")
			}
		})
	}
}

func TestTooManyAttempts(t *testing.T) {
	for _, tc := range []struct {
		lang templates.Lang
		wait time.Duration
		want string
	}{
		{templates.English, time.Second, "Too many attempts. Wait 1 second, then try again."},
		{templates.English, 45 * time.Second, "Too many attempts. Wait 45 seconds, then try again."},
		{templates.English, time.Minute, "Too many attempts. Wait 60 seconds, then try again."},
		{templates.English, 61 * time.Second, "Too many attempts. Wait 2 minutes, then try again."},
		{templates.English, 15 * time.Minute, "Too many attempts. Wait 15 minutes, then try again."},
		{templates.French, time.Second, "Trop de tentatives. Patientez 1 seconde, puis réessayez."},
		{templates.French, 61 * time.Second, "Trop de tentatives. Patientez 2 minutes, puis réessayez."},
		{templates.German, time.Second, "Zu viele Versuche. Warten Sie 1 Sekunde und versuchen Sie es dann erneut."},
		{templates.German, 15 * time.Minute, "Zu viele Versuche. Warten Sie 15 Minuten und versuchen Sie es dann erneut."},
	} {
		if got := tooManyAttempts(tc.lang, tc.wait); got != tc.want {
			t.Errorf("tooManyAttempts(%s, %v): got %q, want %q", tc.lang, tc.wait, got, tc.want)
		}
	}
}

func TestThrottleKeys(t *testing.T) {
	if usernameKey("Alice") != usernameKey("alice") {
		t.Errorf("usernameKey differs by case; want one key per name")
	}
	if usernameKey("alice") == usernameKey("bob") {
		t.Errorf("usernameKey(alice) == usernameKey(bob)")
	}
	if k := usernameKey("alice"); strings.Contains(k, "alice") {
		t.Errorf("got key %q, want no username in it", k)
	}
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"203.0.113.1", "203.0.113.1", true},
		{"203.0.113.1", "203.0.113.2", false},
		{"2001:db8::1", "2001:db8::ffff:1", true},
		{"2001:db8::1", "2001:db8:0:0:ffff:ffff:ffff:ffff", true},
		{"2001:db8::1", "2001:db8:0:1::1", false},
		{"2001:db8::1%eth0", "2001:db8::2", true},
	} {
		if got := ipKey(tc.a) == ipKey(tc.b); got != tc.same {
			t.Errorf("ipKey(%q) == ipKey(%q): got %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
	for _, tc := range []struct {
		remoteAddr, want string
	}{
		{"203.0.113.1:4711", "203.0.113.1"},
		{"[2001:db8::1]:4711", "2001:db8::1"},
		{"no-port", "no-port"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remoteAddr
		if got := clientIP(r); got != tc.want {
			t.Errorf("clientIP(%q): got %q, want %q", tc.remoteAddr, got, tc.want)
		}
	}
}
