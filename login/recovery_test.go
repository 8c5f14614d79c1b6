package login

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
)

var (
	recoveryCodeRE = regexp.MustCompile(`^[a-z2-7]{4}(-[a-z2-7]{4}){3}$`)
	downloadRE     = regexp.MustCompile(`<a href="(data:text/plain;charset=utf-8,[^"]+)" download="recovery-codes.txt">`)
)

// codesLeft returns how many unused recovery codes the user has.
func (e *env) codesLeft(userID string) int {
	e.t.Helper()
	n, err := e.store.RecoveryCodesLeft(context.Background(), userID)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestRecoveryCodesShownOnceAtEnrolment(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", "pw-alice-1")
	b := e.browser()
	b.mustPass("alice", "pw-alice-1")
	p := b.get("/login/totp")
	if strings.Contains(p.body, "/login/recovery") {
		t.Errorf("enrolment page links to recovery codes; want no link before there are any")
	}
	secret := parseEnrolment(t, p.body).uri.Query().Get("secret")
	csrf := csrfToken(t, p.body)
	totpCookie := b.cookie
	p = b.post("/login/totp", url.Values{"csrf_token": {csrf}, "code": {codeAt(t, secret, e.clock.Now())}})
	if p.status != http.StatusOK {
		t.Fatalf("got status %d, want 200", p.status)
	}
	codes := recoveryCodes(p.body)
	if len(codes) != 10 {
		t.Fatalf("got %d codes, want 10:\n%s", len(codes), p.body)
	}
	for i, c := range codes {
		if !recoveryCodeRE.MatchString(c) {
			t.Errorf("code %d: got %q, want xxxx-xxxx-xxxx-xxxx in lower-case base32", i, c)
		}
		if slices.Index(codes, c) != i {
			t.Errorf("code %d: %q appears twice", i, c)
		}
	}
	m := downloadRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no download link in codes page:\n%s", p.body)
	}
	text, err := url.PathUnescape(strings.TrimPrefix(html.UnescapeString(m[1]), "data:text/plain;charset=utf-8,"))
	if err != nil {
		t.Fatalf("download link: %v", err)
	}
	for _, want := range append([]string{"twostep recovery codes for alice"}, codes...) {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("downloaded text lacks the line %q:\n%s", want, text)
		}
	}
	if !strings.Contains(p.body, `<a class="button" href="/account">`) {
		t.Errorf("codes page without an authorization request: want a continue link to /account:\n%s", p.body)
	}

	// The store keeps hashes only.
	if got := e.codesLeft(alice.ID); got != 10 {
		t.Errorf("got %d codes stored, want 10", got)
	}
	rows, err := e.store.DB().Query(`SELECT code_hash FROM recovery_codes`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		for _, c := range codes {
			if strings.Contains(h, c) || strings.Contains(h, strings.ReplaceAll(c, "-", "")) {
				t.Errorf("stored %q holds the code %q", h, c)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	// Never shown again: not on a resubmission (the session moved on, and
	// the cookie with it), nor on the next login.
	for _, tc := range []struct {
		name       string
		cookie     string
		wantStatus int
	}{
		{"resubmitted with the new cookie", b.cookie, http.StatusForbidden},
		{"resubmitted with the old cookie", totpCookie, http.StatusBadRequest},
	} {
		re := &browser{e: e, cookie: tc.cookie}
		p := re.post("/login/totp", url.Values{"csrf_token": {csrf}, "code": {codeAt(t, secret, e.clock.Now())}})
		if p.status != tc.wantStatus || len(recoveryCodes(p.body)) != 0 {
			t.Errorf("%s: got %d with %d codes, want %d with none", tc.name, p.status, len(recoveryCodes(p.body)), tc.wantStatus)
		}
	}
	e.clock.Add(30 * time.Second)
	next := e.browser()
	next.mustPass("alice", "pw-alice-1")
	p = next.get("/login/totp")
	if len(recoveryCodes(p.body)) != 0 || !strings.Contains(p.body, `<a href="/login/recovery">`) {
		t.Errorf("next login's code page: want a link to /login/recovery and no codes:\n%s", p.body)
	}
	p = next.codeStep(codeAt(t, secret, e.clock.Now()))
	if !p.signedIn() || len(recoveryCodes(p.body)) != 0 {
		t.Errorf("next login: got %d to %q with %d codes, want 303 to %s and none", p.status, p.location(), len(recoveryCodes(p.body)), accountPath)
	}
}

func TestRecoveryCodeLogin(t *testing.T) {
	e := newEnv(t)
	e.addAuthRequest("ar-1", url.Values{"client_id": {"app"}})
	_, codes := e.enrol("alice", "pw-alice-1")
	const warning = "Ask your administrator to reset your authenticator before you run out."
	for i, tc := range []struct {
		name     string
		typed    func(code string) string
		wantLeft int
	}{
		{"as shown", func(c string) string { return c }, 9},
		{"upper case", strings.ToUpper, 8},
		{"without dashes", func(c string) string { return strings.ReplaceAll(c, "-", "") }, 7},
		{"with spaces", func(c string) string { return " " + strings.ReplaceAll(c, "-", " ") + " " }, 6},
		{"5th", func(c string) string { return c }, 5},
		{"6th", func(c string) string { return c }, 4},
		{"7th", func(c string) string { return c }, 3},
		{"8th", func(c string) string { return c }, 2},
		{"9th", func(c string) string { return c }, 1},
		{"last", func(c string) string { return c }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.audit.take()
			b := e.browser()
			b.ar = "ar-1"
			b.mustPass("alice", "pw-alice-1")
			totpCookie := b.cookie
			p := b.recoveryStep(tc.typed(codes[i]))
			if p.status != http.StatusOK {
				t.Fatalf("got status %d, want 200; body:\n%s", p.status, p.body)
			}
			want := fmt.Sprintf("You have %d recovery codes left.", tc.wantLeft)
			if tc.wantLeft == 1 {
				want = "You have 1 recovery code left."
			}
			if !strings.Contains(p.body, want) {
				t.Errorf("notice lacks %q:\n%s", want, p.body)
			}
			if got := strings.Contains(p.body, warning); got != (tc.wantLeft <= 3) {
				t.Errorf("got warning %v, want %v with %d codes left", got, tc.wantLeft <= 3, tc.wantLeft)
			}
			if want := `<a class="button" href="/oauth2/auth?auth_request=ar-1">Continue</a>`; !strings.Contains(p.body, want) {
				t.Errorf("notice lacks %s", want)
			}
			if b.cookie == totpCookie || b.cookie == "" {
				t.Errorf("cookie after the recovery code: got %q, want a new value", b.cookie)
			}
			cur, err := e.h.Current(b.request())
			if err != nil {
				t.Fatalf("Current: %v", err)
			}
			if got := strings.Join(cur.AMR, " "); got != "pwd mfa" || cur.ACR != storage.ACRRecoveryCode {
				t.Errorf("got AMR %q, ACR %q; want %q, %q", got, cur.ACR, "pwd mfa", storage.ACRRecoveryCode)
			}
			evs := e.audit.take()
			last := evs[len(evs)-1]
			if last.Event != "login.recovery_code" || last.Outcome != "success" || last.UserID != "id-alice" ||
				last.ClientID != "app" || last.Detail != fmt.Sprintf("%d left", tc.wantLeft) {
				t.Errorf("got event %+v, want login.recovery_code success of id-alice for app, %d left", last, tc.wantLeft)
			}
		})
	}

	t.Run("each code works once", func(t *testing.T) {
		for i, c := range codes {
			b := e.browser()
			b.mustPass("alice", "pw-alice-1")
			p := b.recoveryStep(c)
			if p.status != http.StatusUnprocessableEntity || fieldError(p.body, "code") != en("recovery.bad_code") {
				t.Errorf("code %d again: got %d %q, want 422 %q", i, p.status, fieldError(p.body, "code"), en("recovery.bad_code"))
			}
		}
	})
}

func TestRecoveryCodeRejected(t *testing.T) {
	e := newEnv(t)
	secret, codes := e.enrol("alice", "pw-alice-1")
	alice := e.user("id-alice")
	_, bobCodes := e.enrol("bob", "pw-bob-1")
	for _, tc := range []struct {
		name        string
		code        string
		wantMsg     string
		wantCounted bool
	}{
		{"empty", "", en("recovery.format"), false},
		{"too short", codes[0][:14], en("recovery.format"), false},
		{"too long", codes[0] + "a", en("recovery.format"), false},
		{"not base32", "abcd-efgh-ijkl-mno1", en("recovery.format"), false},
		{"a TOTP code", codeAt(t, secret, e.clock.Now()), en("recovery.format"), false},
		{"well formed, wrong", "aaaa-bbbb-cccc-dddd", en("recovery.bad_code"), true},
		{"another user's code", bobCodes[0], en("recovery.bad_code"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.store.UnlockUser(context.Background(), alice.ID); err != nil {
				t.Fatal(err)
			}
			b := e.browser()
			b.mustPass("alice", "pw-alice-1")
			e.audit.take()
			p := b.recoveryStep(tc.code)
			if p.status != http.StatusUnprocessableEntity || fieldError(p.body, "code") != tc.wantMsg {
				t.Errorf("got %d %q, want 422 %q", p.status, fieldError(p.body, "code"), tc.wantMsg)
			}
			if !strings.Contains(p.body, `action="/login/recovery"`) {
				t.Errorf("page lacks the recovery form:\n%s", p.body)
			}
			wantCount := 0
			if tc.wantCounted {
				wantCount = 1
			}
			ls, err := b.session()
			if err != nil || ls.State != storage.StateTOTP || ls.FailedCodes != wantCount {
				t.Errorf("got session state %q with %d failed codes, %v; want totp, %d", ls.State, ls.FailedCodes, err, wantCount)
			}
			if got := e.user(alice.ID).FailedCodes; got != wantCount {
				t.Errorf("got %d failed codes on the account, want %d", got, wantCount)
			}
			wantEvents := []string(nil)
			if tc.wantCounted {
				wantEvents = []string{"login.recovery_code failure id-alice"}
			}
			if got := briefEvents(e.audit.take()); !slices.Equal(got, wantEvents) {
				t.Errorf("got events %q, want %q", got, wantEvents)
			}
		})
	}
	if got := e.codesLeft(alice.ID); got != 10 {
		t.Errorf("got %d codes left, want 10", got)
	}
	if got := e.codesLeft("id-bob"); got != 10 {
		t.Errorf("bob: got %d codes left, want 10", got)
	}
}

// TestCodesShareTheSessionLimit checks that TOTP and recovery codes count
// against one limit per login.
func TestCodesShareTheSessionLimit(t *testing.T) {
	e := newEnv(t)
	secret, codes := e.enrol("alice", "pw-alice-1")
	alice := e.user("id-alice")
	b := e.browser()
	b.mustPass("alice", "pw-alice-1")
	for i := range 3 {
		if p := b.codeStep(wrongCode(t, secret, e.clock.Now())); p.status != http.StatusUnprocessableEntity {
			t.Fatalf("wrong TOTP code %d: got status %d, want 422", i+1, p.status)
		}
	}
	for _, tc := range []struct {
		name       string
		code       string
		wantStatus int
		wantMsg    string
	}{
		{"4th: wrong recovery code", "aaaa-bbbb-cccc-dddd", http.StatusUnprocessableEntity, en("recovery.bad_code")},
		{"5th: wrong recovery code", "aaaa-bbbb-cccc-eeee", http.StatusTooManyRequests, en("totp.spent")},
		{"6th: right recovery code", codes[0], http.StatusTooManyRequests, en("totp.spent")},
	} {
		p := b.post("/login/recovery", url.Values{"csrf_token": {b.csrf()}, "code": {tc.code}})
		if p.status != tc.wantStatus || !strings.Contains(p.body, html.EscapeString(tc.wantMsg)) {
			t.Errorf("%s: got %d, want %d with %q:\n%s", tc.name, p.status, tc.wantStatus, tc.wantMsg, p.body)
		}
	}
	if p := b.get("/login/recovery"); p.status != http.StatusTooManyRequests || !strings.Contains(p.body, html.EscapeString(en("totp.spent"))) {
		t.Errorf("GET /login/recovery: got %d, want 429 with %q", p.status, en("totp.spent"))
	}
	if got := e.codesLeft(alice.ID); got != 10 {
		t.Errorf("got %d codes left, want 10 (the 6th attempt was not checked)", got)
	}
	if got := e.user(alice.ID).FailedCodes; got != 5 {
		t.Errorf("got %d failed codes on the account, want 5", got)
	}
}

func TestRecoveryUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup leaves b somewhere other than a TOTP step of a user with
		// recovery codes, and returns the CSRF token it would post.
		setup        func(e *env, b *browser, secret string) string
		wantGet      int
		wantLocation string
		wantPost     int
		wantPostLoc  string
	}{
		{"no cookie", func(*env, *browser, string) string { return "x" },
			http.StatusSeeOther, "/login", http.StatusBadRequest, ""},
		{"before the password", func(e *env, b *browser, _ string) string {
			return csrfToken(e.t, b.get("/login?auth_request=ar-1").body)
		}, http.StatusSeeOther, "/login?auth_request=ar-1", http.StatusForbidden, ""},
		{"after a wrong password", func(e *env, b *browser, _ string) string {
			p := b.passwordStep("alice", "nope")
			return csrfToken(e.t, p.body)
		}, http.StatusSeeOther, "/login", http.StatusForbidden, ""},
		{"during enrolment", func(e *env, b *browser, _ string) string {
			b.mustPass("bob", "pw-bob-1")
			return csrfToken(e.t, b.get("/login/totp").body)
		}, http.StatusSeeOther, "/login/totp", http.StatusSeeOther, "/login/totp"},
		{"already done", func(e *env, b *browser, secret string) string {
			b.mustPass("alice", "pw-alice-1")
			b.codeStep(codeAt(e.t, secret, e.clock.Now()))
			ls, err := b.session()
			if err != nil {
				e.t.Fatal(err)
			}
			return ls.CSRFToken
		}, http.StatusSeeOther, "/login", http.StatusForbidden, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addAuthRequest("ar-1", url.Values{})
			secret, codes := e.enrol("alice", "pw-alice-1")
			e.addUser("bob", "pw-bob-1")
			b := e.browser()
			csrf := tc.setup(e, b, secret)
			before, beforeErr := b.session()
			e.audit.take()

			p := b.get("/login/recovery")
			if p.status != tc.wantGet || p.location() != tc.wantLocation {
				t.Errorf("GET: got %d to %q, want %d to %q", p.status, p.location(), tc.wantGet, tc.wantLocation)
			}
			p = b.post("/login/recovery", url.Values{"csrf_token": {csrf}, "code": {codes[0]}})
			if p.status != tc.wantPost || p.location() != tc.wantPostLoc {
				t.Errorf("POST: got %d to %q, want %d to %q", p.status, p.location(), tc.wantPost, tc.wantPostLoc)
			}
			if len(p.cookies) != 0 {
				t.Errorf("POST: got cookies %v, want none", p.cookies)
			}
			after, afterErr := b.session()
			if (beforeErr == nil) != (afterErr == nil) || before.State != after.State || before.FailedCodes != after.FailedCodes {
				t.Errorf("session changed: before %+v (%v), after %+v (%v)", before, beforeErr, after, afterErr)
			}
			if got := e.codesLeft("id-alice"); got != 10 {
				t.Errorf("got %d codes left, want 10", got)
			}
			for _, id := range []string{"id-alice", "id-bob"} {
				if got := e.user(id).FailedCodes; got != 0 {
					t.Errorf("%s: got %d failed codes, want 0", id, got)
				}
			}
			if got := e.audit.take(); len(got) != 0 {
				t.Errorf("got events %q, want none", briefEvents(got))
			}
		})
	}
}

func TestRecoveryFormCSRF(t *testing.T) {
	for _, tc := range []struct {
		name  string
		token func(e *env, real string) string
	}{
		{"missing", func(*env, string) string { return "" }},
		{"wrong", func(_ *env, real string) string { return forge(real) }},
		{"of another session", func(e *env, _ string) string { return csrfToken(e.t, e.browser().get("/login").body) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, codes := e.enrol("alice", "pw-alice-1")
			e.audit.take()
			b := e.browser()
			b.mustPass("alice", "pw-alice-1")
			cookie := b.cookie
			real := csrfToken(t, b.get("/login/recovery").body)
			p := b.post("/login/recovery", url.Values{"csrf_token": {tc.token(e, real)}, "code": {codes[0]}})
			if p.status != http.StatusForbidden || !strings.Contains(p.body, html.EscapeString(en("login.bad_csrf"))) {
				t.Errorf("got %d, want 403 with %q", p.status, en("login.bad_csrf"))
			}
			if len(p.cookies) != 0 || b.cookie != cookie {
				t.Errorf("got cookies %v, want none", p.cookies)
			}
			if ls, err := b.session(); err != nil || ls.State != storage.StateTOTP || ls.FailedCodes != 0 {
				t.Errorf("got session %+v, %v; want it unchanged in state totp", ls, err)
			}
			if got := e.codesLeft("id-alice"); got != 10 {
				t.Errorf("got %d codes left, want 10 (code not spent)", got)
			}
			if got := e.user("id-alice").FailedCodes; got != 0 {
				t.Errorf("got %d failed codes, want 0", got)
			}
			if got := briefEvents(e.audit.take()); !slices.Equal(got, []string{"login.password success id-alice"}) {
				t.Errorf("got events %q, want only the password's", got)
			}
			// The code still works with the right token.
			if p := b.post("/login/recovery", url.Values{"csrf_token": {real}, "code": {codes[0]}}); p.status != http.StatusOK {
				t.Errorf("with the right token: got status %d, want 200", p.status)
			}
		})
	}
}

func TestResetTOTPVoidsRecoveryCodes(t *testing.T) {
	e := newEnv(t)
	_, old := e.enrol("alice", "pw-alice-1")
	if err := e.store.ResetTOTP(context.Background(), "id-alice"); err != nil {
		t.Fatal(err)
	}
	if got := e.codesLeft("id-alice"); got != 0 {
		t.Errorf("after ResetTOTP: got %d codes left, want 0", got)
	}
	b := e.browser()
	b.mustPass("alice", "pw-alice-1")
	if p := b.get("/login/recovery"); p.status != http.StatusSeeOther || p.location() != "/login/totp" {
		t.Errorf("GET /login/recovery while enrolling again: got %d to %q, want 303 to /login/totp", p.status, p.location())
	}
	secret := parseEnrolment(t, b.get("/login/totp").body).uri.Query().Get("secret")
	codes := recoveryCodes(b.codeStep(codeAt(t, secret, e.clock.Now())).body)
	if len(codes) != 10 {
		t.Fatalf("re-enrolment: got %d codes, want 10", len(codes))
	}
	for _, c := range old {
		if slices.Contains(codes, c) {
			t.Errorf("re-enrolment showed the old code %q again", c)
		}
	}
	for _, tc := range []struct {
		name       string
		code       string
		wantStatus int
	}{
		{"old code", old[0], http.StatusUnprocessableEntity},
		{"new code", codes[0], http.StatusOK},
	} {
		b := e.browser()
		b.mustPass("alice", "pw-alice-1")
		if p := b.recoveryStep(tc.code); p.status != tc.wantStatus {
			t.Errorf("%s: got status %d, want %d", tc.name, p.status, tc.wantStatus)
		}
	}
}
