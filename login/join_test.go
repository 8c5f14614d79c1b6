package login

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twostep/twostep/mail"
	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// testBaseURL is where the handlers of mail tests say they are reached.
const testBaseURL = "https://id.example.com"

// outbox is a Mailer that keeps what it is given; with fail set it keeps
// nothing and returns fail.
type outbox struct {
	mu   sync.Mutex
	sent []mail.Message
	fail error
}

func (o *outbox) Send(_ context.Context, m mail.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail != nil {
		return o.fail
	}
	o.sent = append(o.sent, m)
	return nil
}

// take returns the messages sent since the last take.
func (o *outbox) take() []mail.Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	sent := o.sent
	o.sent = nil
	return sent
}

// newMailEnv is newEnv with an outbox for a Mailer and registration mode
// reg.
func newMailEnv(t *testing.T, reg Registration, edit ...func(*Config)) (*env, *outbox) {
	t.Helper()
	box := &outbox{}
	e := newEnv(t, append([]func(*Config){func(c *Config) {
		c.Mailer, c.BaseURL, c.Registration = box, testBaseURL, reg
	}}, edit...)...)
	return e, box
}

// mailed waits for the mail sent off the request path and returns what
// was sent since the last call.
func (e *env) mailed(box *outbox) []mail.Message {
	e.h.Wait()
	return box.take()
}

var mailLinkRE = regexp.MustCompile(`https://id\.example\.com/\S+`)

// mailLink returns the one link in a mail's text, as a path and query to
// request from the handler.
func mailLink(t *testing.T, m mail.Message) string {
	t.Helper()
	links := mailLinkRE.FindAllString(m.Text, -1)
	if len(links) != 1 {
		t.Fatalf("mail %q has links %q, want one:\n%s", m.Subject, links, m.Text)
	}
	if !strings.Contains(m.HTML, `href="`+strings.ReplaceAll(links[0], "&", "&amp;")+`"`) {
		t.Errorf("mail %q: the HTML body lacks the text's link %s:\n%s", m.Subject, links[0], m.HTML)
	}
	u, err := url.Parse(links[0])
	if err != nil {
		t.Fatal(err)
	}
	return u.RequestURI()
}

// invite invites email through Invite, as the command line does, and
// returns the link's path and query.
func (e *env) invite(inv Invitation) string {
	e.t.Helper()
	got, err := Invite(context.Background(), e.store, nil, e.h.pages, testBaseURL, inv, e.clock.Now())
	if err != nil {
		e.t.Fatalf("Invite(%+v): %v", inv, err)
	}
	u, err := url.Parse(got.Link)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.RequestURI()
}

// join posts the form of the join page at link with the given
// password (twice) and name.
func (b *browser) join(link, password, name string) page {
	b.e.t.Helper()
	p := b.get(link)
	if p.status != http.StatusOK {
		b.e.t.Fatalf("GET %s: got status %d, want 200:\n%s", link, p.status, p.body)
	}
	u, _ := url.Parse(link)
	return b.post("/join", url.Values{
		"token": {u.Query().Get("token")}, "name": {name}, "password": {password}, "confirm": {password},
	})
}

// joinPassword is a password the policy accepts.
const joinPassword = "correct horse battery staple"

func TestInviteRefuses(t *testing.T) {
	e := newEnv(t)
	e.addUser("taken", "pw-taken-1")
	tests := []struct {
		name string
		inv  Invitation
		want string
	}{
		{"no address", Invitation{}, `"" is not an email address`},
		{"not an address", Invitation{Email: "alice"}, `"alice" is not an email address`},
		{"a display name", Invitation{Email: "Alice <alice@example.com>"}, "is not an email address"},
		{"two addresses", Invitation{Email: "a@example.com, b@example.com"}, "is not an email address"},
		{"a line break", Invitation{Email: "a@example.com\r\nBcc: b@example.com"}, "is not an email address"},
		{"an address too long for a username", Invitation{Email: strings.Repeat("a", 60) + "@example.com"}, "give a username"},
		{"a username with a space", Invitation{Email: "a@example.com", Username: "a b"}, "space or control character"},
		{"a group with a comma", Invitation{Email: "a@example.com", Groups: []string{"a,b"}}, `group "a,b" contains a comma`},
		{"too short", Invitation{Email: "a@example.com", Lifetime: 59 * time.Second}, "1m to 720h"},
		{"too long", Invitation{Email: "a@example.com", Lifetime: 31 * 24 * time.Hour}, "1m to 720h"},
		{"negative", Invitation{Email: "a@example.com", Lifetime: -time.Hour}, "1m to 720h"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Invite(context.Background(), e.store, nil, e.h.pages, testBaseURL, tc.inv, e.clock.Now())
			if !errors.Is(err, ErrInvalidInvitation) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrInvalidInvitation saying %q", err, tc.want)
			}
		})
	}
	_, err := Invite(context.Background(), e.store, nil, e.h.pages, testBaseURL, Invitation{Email: "t@example.com", Username: "taken"}, e.clock.Now())
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("taken username: got %v, want storage.ErrAlreadyExists", err)
	}
}

func TestInviteMails(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Registration = RegistrationInvite })
	box := &outbox{}
	got, err := Invite(context.Background(), e.store, box, e.h.pages, testBaseURL+"/", Invitation{
		Email: "alice@example.com", Groups: []string{" staff", "", "admins "}, Lang: templates.French,
	}, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got.Username != "alice@example.com" || !got.Mailed || got.MailError != nil {
		t.Errorf("got %+v, want username alice@example.com, mailed", got)
	}
	if want := t0.Add(DefaultInviteLifetime); !got.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt: got %v, want %v", got.ExpiresAt, want)
	}
	secret, ok := strings.CutPrefix(got.Link, testBaseURL+"/join?token=")
	if !ok || !validToken(secret) {
		t.Fatalf("link: got %q, want %s/join?token= and 43 characters", got.Link, testBaseURL)
	}
	// The database keeps the secret's hash, and the invitation.
	tok, err := e.store.GetAccountToken(context.Background(), storage.PurposeInvite, sessionID(secret))
	if err != nil {
		t.Fatalf("token by the hash of the secret: %v", err)
	}
	if tok.ID == secret || tok.Email != "alice@example.com" || tok.Username != "alice@example.com" ||
		!slices.Equal(tok.Groups, []string{"staff", "admins"}) {
		t.Errorf("stored token: got %+v", tok)
	}
	if _, err := e.store.GetAccountToken(context.Background(), storage.PurposeInvite, secret); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("token by the secret itself: got %v, want ErrNotFound", err)
	}

	sent := box.take()
	if len(sent) != 1 {
		t.Fatalf("got %d mails, want 1", len(sent))
	}
	m := sent[0]
	if m.To != "alice@example.com" || m.Subject != "Votre invitation à twostep" {
		t.Errorf("got To %q Subject %q, want alice@example.com, the French subject", m.To, m.Subject)
	}
	if link := mailLink(t, m); testBaseURL+link != got.Link {
		t.Errorf("mailed link %s, want %s", link, got.Link)
	}
	if !strings.Contains(m.Text, "2025-03-21 09:00 UTC") || !strings.Contains(m.HTML, "2025-03-21 09:00 UTC") {
		t.Errorf("mail does not say the link works until 2025-03-21 09:00 UTC:\n%s", m.Text)
	}

	// Without mail, or when it fails, the link is still made and works.
	got, err = Invite(context.Background(), e.store, nil, e.h.pages, testBaseURL, Invitation{Email: "bob@example.com", Username: "bob", Lifetime: time.Hour}, e.clock.Now())
	if err != nil || got.Mailed || got.MailError != nil || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("without a mailer: got %+v, %v; want a link for an hour, not mailed, no error", got, err)
	}
	box.fail = errors.New("relay down")
	got, err = Invite(context.Background(), e.store, box, e.h.pages, testBaseURL, Invitation{Email: "carol@example.com"}, e.clock.Now())
	if err != nil || got.Mailed || !errors.Is(got.MailError, box.fail) || got.Link == "" {
		t.Fatalf("failing mailer: got %+v, %v; want the link, not mailed, MailError %v", got, err, box.fail)
	}
	u, _ := url.Parse(got.Link)
	if p := e.browser().get(u.RequestURI()); p.status != http.StatusOK {
		t.Errorf("the link of an invitation whose mail failed: got %d, want 200", p.status)
	}
}

func TestJoin(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Registration = RegistrationInvite })
	link := e.invite(Invitation{Email: "alice@example.com", Username: "alice", Groups: []string{"staff", "admins"}})
	token := strings.TrimPrefix(link, "/join?token=")

	// GET shows the form and spends nothing, however often it is fetched
	// (mail scanners prefetch links).
	b := e.browser()
	for range 2 {
		p := b.get(link)
		if p.status != http.StatusOK {
			t.Fatalf("GET %s: got %d, want 200:\n%s", link, p.status, p.body)
		}
		for _, want := range []string{
			`<form method="post" action="/join">`, `name="token" value="` + token + `"`,
			`name="username" value="alice" readonly autocomplete="username"`, "alice@example.com",
			`autocomplete="new-password"`, "At least 12 characters.",
		} {
			if !strings.Contains(p.body, want) {
				t.Errorf("join page lacks %s", want)
			}
		}
		if len(p.cookies) != 0 {
			t.Errorf("GET %s set cookies %v, want none", link, p.cookies)
		}
	}

	// Refused forms change nothing.
	for _, tc := range []struct {
		name        string
		form        url.Values
		field, want string
	}{
		{"breached", url.Values{"password": {"password1234"}, "confirm": {"password1234"}}, "password", en("join.password_breached")},
		{"short", url.Values{"password": {"short pw"}, "confirm": {"short pw"}}, "password", "This password is too short: use at least 12 characters."},
		{"the username", url.Values{"password": {"alice@example.com"}, "confirm": {"alice@example.com"}}, "password", en("join.password_name")},
		{"mismatch", url.Values{"password": {joinPassword}, "confirm": {joinPassword + "!"}}, "confirm", en("join.password_mismatch")},
		{"a name with a line break", url.Values{"password": {joinPassword}, "confirm": {joinPassword}, "name": {"a\nb"}}, "name", en("join.name_invalid")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("token", token)
			p := b.post("/join", tc.form)
			if p.status != http.StatusUnprocessableEntity || fieldError(p.body, tc.field) != tc.want {
				t.Errorf("got %d with %s error %q, want 422 with %q", p.status, tc.field, fieldError(p.body, tc.field), tc.want)
			}
			if b.cookie != "" {
				t.Errorf("a refused form set a session cookie")
			}
		})
	}
	if _, err := e.store.GetUserByUsername(context.Background(), "alice"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after refused forms: got user alice (%v), want none", err)
	}

	p := b.join(link, joinPassword, " Alice Example ")
	if p.status != http.StatusSeeOther || p.location() != "/login/totp" {
		t.Fatalf("POST /join: got %d to %q, want 303 to /login/totp:\n%s", p.status, p.location(), p.body)
	}
	u, err := e.store.GetUserByUsername(context.Background(), "alice")
	if err != nil {
		t.Fatalf("user after join: %v", err)
	}
	if u.Email != "alice@example.com" || !u.EmailVerified || u.Name != "Alice Example" ||
		!slices.Equal(u.Groups, []string{"staff", "admins"}) || u.HasTOTP() || u.Disabled || len(u.ID) != 22 {
		t.Errorf("user after join: got %+v", u)
	}
	if ok, _ := e.hasher.Verify(u.PasswordHash, joinPassword); !ok {
		t.Errorf("the chosen password does not verify")
	}
	ls, err := b.session()
	if err != nil || ls.State != storage.StateTOTP || ls.UserID != u.ID || ls.PasswordAt.IsZero() || ls.AuthRequestID != "" {
		t.Fatalf("session after join: got %+v, %v; want the TOTP step of %s", ls, err, u.ID)
	}
	if got := briefEvents(e.audit.take()); !slices.Equal(got, []string{"user.joined success " + u.ID}) {
		t.Errorf("audit: got %q, want user.joined", got)
	}

	// The TOTP step enrols the authenticator, and the login is complete.
	secret := parseEnrolment(t, b.get("/login/totp").body).uri.Query().Get("secret")
	p = b.codeStep(codeAt(t, secret, e.clock.Now()))
	if codes := recoveryCodes(p.body); p.status != http.StatusOK || len(codes) != recoveryCodeCount {
		t.Fatalf("enrolment after join: got %d with %d recovery codes, want 200 with %d:\n%s", p.status, len(codes), recoveryCodeCount, p.body)
	}
	done, err := e.h.Current(b.request())
	if err != nil || done.UserID != u.ID || !slices.Equal(done.AMR, []string{"pwd", "otp", "mfa"}) {
		t.Errorf("Current after enrolment: got %+v, %v; want %s with pwd otp mfa", done, err, u.ID)
	}

	// The link works once.
	for _, p := range []page{e.browser().get(link), e.browser().postJoin(token, joinPassword)} {
		if p.status != http.StatusNotFound || !strings.Contains(p.body, en("join.link_invalid")) {
			t.Errorf("spent link: got %d, want 404 saying %q", p.status, en("join.link_invalid"))
		}
	}
}

// postJoin posts the join form without fetching the page first.
func (b *browser) postJoin(token, password string) page {
	b.e.t.Helper()
	return b.post("/join", url.Values{"token": {token}, "password": {password}, "confirm": {password}})
}

func TestJoinRefused(t *testing.T) {
	ctx := context.Background()
	t.Run("closed", func(t *testing.T) {
		e := newEnv(t)
		link := e.invite(Invitation{Email: "a@example.com"})
		for _, p := range []page{e.browser().get(link), e.browser().postJoin(strings.TrimPrefix(link, "/join?token="), joinPassword)} {
			if p.status != http.StatusForbidden || !strings.Contains(p.body, en("join.closed")) {
				t.Errorf("join with registration closed: got %d, want 403 saying %q", p.status, en("join.closed"))
			}
		}
	})
	t.Run("registration link while only invitations work", func(t *testing.T) {
		e, _ := newMailEnv(t, RegistrationInvite)
		l, err := e.h.link(ctx, "/join", storage.AccountToken{Purpose: storage.PurposeRegister, Email: "a@example.com", Username: "a@example.com"}, registerLifetime)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(l)
		if p := e.browser().get(u.RequestURI()); p.status != http.StatusForbidden {
			t.Errorf("registration link in invite mode: got %d, want 403", p.status)
		}
		if p := e.browser().postJoin(u.Query().Get("token"), joinPassword); p.status != http.StatusForbidden {
			t.Errorf("registration link in invite mode: POST got %d, want 403", p.status)
		}
		if users, _ := e.store.UsersByEmail(ctx, "a@example.com"); len(users) != 0 {
			t.Errorf("got users %v, want none", users)
		}
	})
	t.Run("expired", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Registration = RegistrationOpen; c.Mailer = &outbox{}; c.BaseURL = testBaseURL })
		link := e.invite(Invitation{Email: "a@example.com", Lifetime: time.Hour})
		e.clock.Add(time.Hour)
		if p := e.browser().get(link); p.status != http.StatusNotFound || !strings.Contains(p.body, en("join.link_invalid")) {
			t.Errorf("expired link: got %d, want 404 saying the link expired", p.status)
		}
	})
	t.Run("unknown and malformed", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Registration = RegistrationInvite })
		for _, tok := range []string{"", "x", strings.Repeat("A", 43), strings.Repeat("A", 43) + "'"} {
			if p := e.browser().get("/join?token=" + url.QueryEscape(tok)); p.status != http.StatusNotFound {
				t.Errorf("token %q: got %d, want 404", tok, p.status)
			}
			if p := e.browser().postJoin(tok, joinPassword); p.status != http.StatusNotFound {
				t.Errorf("token %q: POST got %d, want 404", tok, p.status)
			}
		}
	})
	t.Run("username taken since", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Registration = RegistrationInvite })
		link := e.invite(Invitation{Email: "a@example.com", Username: "alice"})
		e.addUser("alice", "pw-alice-1")
		token := strings.TrimPrefix(link, "/join?token=")
		p := e.browser().postJoin(token, joinPassword)
		if p.status != http.StatusConflict || !strings.Contains(p.body, "The username alice is taken") {
			t.Errorf("taken username: got %d, want 409 saying so:\n%s", p.status, p.body)
		}
		if _, err := e.store.GetAccountToken(ctx, storage.PurposeInvite, sessionID(token)); err != nil {
			t.Errorf("after a taken username the link is spent (%v), want it unspent", err)
		}
	})
	t.Run("oversized form", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Registration = RegistrationInvite })
		p := e.browser().post("/join", url.Values{"token": {strings.Repeat("a", maxFormBytes)}})
		if p.status != http.StatusBadRequest {
			t.Errorf("oversized form: got %d, want 400", p.status)
		}
	})
}

func TestJoinRace(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Registration = RegistrationInvite })
	token := strings.TrimPrefix(e.invite(Invitation{Email: "a@example.com", Username: "alice"}), "/join?token=")
	const racers = 8
	statuses := make([]int, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = e.browser().postJoin(token, joinPassword).status
		}()
	}
	wg.Wait()
	won := 0
	for _, s := range statuses {
		switch s {
		case http.StatusSeeOther:
			won++
		case http.StatusNotFound:
		default:
			t.Errorf("racer got %d, want 303 or 404", s)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d racers created the account, want 1 (statuses %v)", won, racers, statuses)
	}
}

func TestRegister(t *testing.T) {
	ctx := context.Background()
	e, box := newMailEnv(t, RegistrationOpen)
	e.addUser("bob", "pw-bob-1")
	if err := e.store.UpdateProfile(ctx, "id-bob", "Bob", "bob@example.com"); err != nil {
		t.Fatal(err)
	}

	p := e.browser().get("/register")
	if p.status != http.StatusOK || !strings.Contains(p.body, `<form method="post" action="/register">`) {
		t.Fatalf("GET /register: got %d, want the form:\n%s", p.status, p.body)
	}
	if p := e.browser().get("/login"); !strings.Contains(p.body, `<a href="/register">`) {
		t.Errorf("login page with open registration lacks the link to /register")
	}

	// The same answer for a new address and one with an account.
	newAddr := e.sameAnswer("/register", "carol@example.com", "BOB@example.com")
	if !strings.Contains(newAddr.body, "If carol@example.com can be used for a new account") {
		t.Errorf("answer page:\n%s", newAddr.body)
	}
	sent := e.mailed(box)
	if len(sent) != 2 {
		t.Fatalf("got %d mails, want 2", len(sent))
	}
	slices.SortFunc(sent, func(a, b mail.Message) int { return strings.Compare(a.To, b.To) })
	exists, reg := sent[0], sent[1]
	if exists.To != "BOB@example.com" || exists.Subject != "Your twostep account" || mailLink(t, exists) != "/login/forgot" {
		t.Errorf("mail to an address with an account: got To %q Subject %q:\n%s", exists.To, exists.Subject, exists.Text)
	}
	if reg.To != "carol@example.com" || reg.Subject != "Create your twostep account" {
		t.Errorf("registration mail: got To %q Subject %q", reg.To, reg.Subject)
	}
	if !strings.Contains(reg.Text, "2025-03-15 09:00 UTC") {
		t.Errorf("registration mail does not say the link works for 24 hours:\n%s", reg.Text)
	}
	// Nothing exists until the link is followed and the form completed.
	if users, err := e.store.UsersByEmail(ctx, "carol@example.com"); err != nil || len(users) != 0 {
		t.Fatalf("before the link is followed: got users %v, %v; want none", users, err)
	}
	b := e.browser()
	link := mailLink(t, reg)
	if !strings.HasPrefix(link, "/join?token=") {
		t.Fatalf("registration link %s, want /join?token=", link)
	}
	if p := b.join(link, joinPassword, ""); p.status != http.StatusSeeOther || p.location() != "/login/totp" {
		t.Fatalf("join from a registration: got %d to %q:\n%s", p.status, p.location(), p.body)
	}
	u, err := e.store.GetUserByUsername(ctx, "carol@example.com")
	if err != nil || u.Email != "carol@example.com" || !u.EmailVerified || len(u.Groups) != 0 {
		t.Errorf("registered user: got %+v, %v", u, err)
	}
	secret := parseEnrolment(t, b.get("/login/totp").body).uri.Query().Get("secret")
	if p := b.codeStep(codeAt(t, secret, e.clock.Now())); len(recoveryCodes(p.body)) != recoveryCodeCount {
		t.Errorf("enrolment after registration: got %d:\n%s", p.status, p.body)
	}
}

func TestRegisterRefused(t *testing.T) {
	for _, reg := range []Registration{RegistrationClosed, RegistrationInvite} {
		t.Run(string(reg), func(t *testing.T) {
			e, box := newMailEnv(t, reg)
			for _, p := range []page{e.browser().get("/register"), e.browser().post("/register", url.Values{"email": {"a@example.com"}})} {
				if p.status != http.StatusNotFound || !strings.Contains(p.body, en("register.closed")) {
					t.Errorf("got %d, want 404 saying %q", p.status, en("register.closed"))
				}
			}
			if sent := e.mailed(box); len(sent) != 0 {
				t.Errorf("got %d mails, want none", len(sent))
			}
			if p := e.browser().get("/login"); strings.Contains(p.body, `href="/register"`) {
				t.Errorf("login page links to /register with registration %s", reg)
			}
		})
	}
	t.Run("bad address", func(t *testing.T) {
		e, box := newMailEnv(t, RegistrationOpen)
		for _, addr := range []string{"", "alice", "Alice <a@example.com>", "a@example.com\nb@example.com", strings.Repeat("a", 60) + "@example.com"} {
			p := e.browser().post("/register", url.Values{"email": {addr}})
			if p.status != http.StatusUnprocessableEntity || fieldError(p.body, "email") != en("register.bad_email") {
				t.Errorf("address %q: got %d with %q, want 422 with %q", addr, p.status, fieldError(p.body, "email"), en("register.bad_email"))
			}
		}
		if sent := e.mailed(box); len(sent) != 0 {
			t.Errorf("got %d mails, want none", len(sent))
		}
	})
}

// TestMailThrottle: the forms that mail links answer 429, mailing
// nothing, once an address has had its requests, whether or not it has an
// account, and the two forms share the count.
func TestMailThrottle(t *testing.T) {
	e, box := newMailEnv(t, RegistrationOpen)
	for i, path := range []string{"/register", "/login/forgot", "/register"} {
		if p := e.browser().post(path, url.Values{"email": {"a@example.com"}}); p.status != http.StatusOK {
			t.Fatalf("request %d: got %d, want 200", i+1, p.status)
		}
	}
	for _, path := range []string{"/register", "/login/forgot"} {
		p := e.browser().post(path, url.Values{"email": {"A@example.com"}})
		if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") != "60" || formError(p.body) != "Too many attempts. Wait 60 seconds, then try again." {
			t.Errorf("%s after 3 requests: got %d, Retry-After %q, error %q; want 429 for 60 s", path, p.status, p.header.Get("Retry-After"), formError(p.body))
		}
	}
	// Another address is not blocked.
	if p := e.browser().post("/register", url.Values{"email": {"b@example.com"}}); p.status != http.StatusOK {
		t.Errorf("another address: got %d, want 200", p.status)
	}
	if sent := e.mailed(box); len(sent) != 3 {
		t.Errorf("got %d mails, want 3 (the unknown address gets no reset mail)", len(sent))
	}
	e.clock.Add(time.Minute)
	if p := e.browser().post("/register", url.Values{"email": {"a@example.com"}}); p.status != http.StatusOK {
		t.Errorf("after the wait: got %d, want 200", p.status)
	}
}

// sameAnswer posts the address a, then b, to the form at path, each from
// a new browser, and fails the test unless both get 200 and the same page
// but for the address. It returns a's page.
func (e *env) sameAnswer(path, a, b string) page {
	e.t.Helper()
	pa := e.browser().post(path, url.Values{"email": {a}})
	pb := e.browser().post(path, url.Values{"email": {b}})
	if pa.status != http.StatusOK || pb.status != pa.status || strings.ReplaceAll(pb.body, b, a) != pa.body {
		e.t.Errorf("answers to %s differ: %d\n%s\nand %d\n%s", path, pa.status, pa.body, pb.status, pb.body)
	}
	return pa
}
