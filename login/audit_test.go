package login

import (
	"net/url"
	"slices"
	"testing"
	"time"
)

func TestAuditEvents(t *testing.T) {
	type event struct{ event, outcome, user, client, detail string }
	for _, tc := range []struct {
		name string
		// run drives a login for ar-1 (client "app") with b.
		run  func(e *env, b *browser, secret string, codes []string)
		want []event
	}{
		{"wrong password", func(e *env, b *browser, _ string, _ []string) {
			b.passwordStep("alice", "nope")
		}, []event{{"login.password", "failure", "id-alice", "app", ""}}},
		{"unknown user", func(e *env, b *browser, _ string, _ []string) {
			b.passwordStep("mallory", "nope")
		}, []event{{"login.password", "failure", "", "app", ""}}},
		{"throttled", func(e *env, b *browser, _ string, _ []string) {
			e.failPasswords("alice", 5)
			e.audit.take()
			b.passwordStep("alice", "pw-alice-1")
		}, []event{{"login.password", "throttled", "", "app", ""}}},
		{"password and code", func(e *env, b *browser, secret string, _ []string) {
			b.passwordAndCode(e.t, "alice", "pw-alice-1", codeAt(e.t, secret, e.clock.Now()))
		}, []event{
			{"login.password", "success", "id-alice", "app", ""},
			{"login.totp", "success", "id-alice", "app", ""},
		}},
		{"wrong code", func(e *env, b *browser, secret string, _ []string) {
			b.passwordAndCode(e.t, "alice", "pw-alice-1", wrongCode(e.t, secret, e.clock.Now()))
		}, []event{
			{"login.password", "success", "id-alice", "app", ""},
			{"login.totp", "failure", "id-alice", "app", ""},
		}},
		{"spent login", func(e *env, b *browser, secret string, _ []string) {
			b.mustPass("alice", "pw-alice-1")
			for range 6 {
				b.post("/login/totp", url.Values{"csrf_token": {b.csrf()}, "code": {wrongCode(e.t, secret, e.clock.Now())}})
			}
		}, []event{
			{"login.password", "success", "id-alice", "app", ""},
			{"login.totp", "failure", "id-alice", "app", ""},
			{"login.totp", "failure", "id-alice", "app", ""},
			{"login.totp", "failure", "id-alice", "app", ""},
			{"login.totp", "failure", "id-alice", "app", ""},
			{"login.totp", "failure", "id-alice", "app", ""},
			{"login.totp", "throttled", "id-alice", "app", ""},
		}},
		{"recovery code", func(e *env, b *browser, _ string, codes []string) {
			b.mustPass("alice", "pw-alice-1")
			b.recoveryStep(codes[0])
		}, []event{
			{"login.password", "success", "id-alice", "app", ""},
			{"login.recovery_code", "success", "id-alice", "app", "9 left"},
		}},
		{"remember device, then use it", func(e *env, b *browser, secret string, _ []string) {
			b.mustPass("alice", "pw-alice-1")
			p := b.get("/login/totp")
			b.post("/login/totp", url.Values{"csrf_token": {csrfToken(e.t, p.body)}, "code": {codeAt(e.t, secret, e.clock.Now())}, "remember": {"1"}})
			b.passwordStep("alice", "pw-alice-1")
		}, []event{
			{"login.password", "success", "id-alice", "app", ""},
			{"login.totp", "success", "id-alice", "app", ""},
			{"device.remembered", "success", "id-alice", "app", "DEVICE"},
			{"login.password", "success", "id-alice", "app", ""},
			{"login.device", "success", "id-alice", "app", "DEVICE"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.RememberDevice = time.Hour })
			e.addAuthRequest("ar-1", url.Values{"client_id": {"app"}})
			secret, codes := e.enrol("alice", "pw-alice-1")
			e.audit.take()
			b := e.browser()
			b.ar = "ar-1"
			tc.run(e, b, secret, codes)
			var got []event
			for _, ev := range e.audit.take() {
				got = append(got, event{ev.Event, ev.Outcome, ev.UserID, ev.ClientID, ev.Detail})
			}
			if b.device != "" {
				for i := range tc.want {
					if tc.want[i].detail == "DEVICE" {
						tc.want[i].detail = sessionID(b.device)[:12]
					}
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got events\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}
