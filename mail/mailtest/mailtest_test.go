package mailtest_test

import (
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/twostep/twostep/mail/mailtest"
)

// raw is a message as another mailer might write it: base64 text, a
// quoted-printable HTML part, nested in multipart/mixed, CRLF line ends.
var raw = strings.ReplaceAll(`From: a@example.com
To: b@example.org
Subject: =?UTF-8?B?w4low6kg5pel5pys?=
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: base64

w4low6khIEdvIHRvIGh0dHBzOi8vZXhhbXBsZS5jb20vYT94PTEmeT0yLiBPciAoaHR0cDovL2V4
YW1wbGUuY29tL2IpLCBub3QgZnRwOi8vZXhhbXBsZS5jb20uCuaXpeacrAo=
--inner
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

<p>=C3=89h=C3=A9! a long line that is wrapped with a soft line break right=
 here</p>
--inner--
--outer--
`, "\n", "\r\n")

// send delivers msg from a@example.com to b@ and c@example.org over
// plain SMTP (smtp.SendMail would insist on STARTTLS).
func send(s *mailtest.Server, auth sasl.Client, msg string) error {
	u, err := url.Parse(s.URL())
	if err != nil {
		return err
	}
	c, err := smtp.Dial(u.Host)
	if err != nil {
		return err
	}
	defer c.Close()
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.Mail("a@example.com", nil); err != nil {
		return err
	}
	for _, to := range []string{"b@example.org", "c@example.org"} {
		if err := c.Rcpt(to, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func TestReceived(t *testing.T) {
	s := mailtest.Start(t, "", "")
	if u := s.URL(); !strings.HasPrefix(u, "smtp://127.0.0.1:") {
		t.Errorf("URL() = %q, want smtp://127.0.0.1:port", u)
	}
	errc := make(chan error, 1)
	go func() { errc <- send(s, nil, raw) }()
	got := s.Wait(t, 1)
	if err := <-errc; err != nil {
		t.Fatalf("send: %v", err)
	}

	if got.From != "a@example.com" {
		t.Errorf("From = %q, want a@example.com", got.From)
	}
	if want := []string{"b@example.org", "c@example.org"}; !slices.Equal(got.To, want) {
		t.Errorf("To = %q, want %q", got.To, want)
	}
	if want := "Éhé 日本"; got.Subject != want {
		t.Errorf("Subject = %q, want %q", got.Subject, want)
	}
	if want := "Éhé! Go to https://example.com/a?x=1&y=2. Or (http://example.com/b), not ftp://example.com.\n日本\n"; got.Text != want {
		t.Errorf("Text = %q, want %q", got.Text, want)
	}
	if want := "<p>Éhé! a long line that is wrapped with a soft line break right here</p>"; got.HTML != want {
		t.Errorf("HTML = %q, want %q", got.HTML, want)
	}
	if want := []string{"https://example.com/a?x=1&y=2", "http://example.com/b"}; !slices.Equal(got.Links(), want) {
		t.Errorf("Links() = %q, want %q", got.Links(), want)
	}
	if !strings.HasSuffix(string(got.Raw), "--outer--\r\n") {
		t.Errorf("Raw ends %q, want the whole message", got.Raw[max(0, len(got.Raw)-20):])
	}

	// Messages hands out copies.
	msgs := s.Messages()
	msgs[0].To[0] = "changed@example.org"
	if again := s.Messages(); len(again) != 1 || again[0].To[0] != "b@example.org" {
		t.Errorf("Messages() after changing a copy = %+v, want the original", again)
	}
}

func TestAuth(t *testing.T) {
	s := mailtest.Start(t, "user", "pa ss")
	if want := "smtp://user:pa%20ss@127.0.0.1:"; !strings.HasPrefix(s.URL(), want) {
		t.Errorf("URL() = %q, want prefix %q", s.URL(), want)
	}
	tests := []struct {
		name string
		auth sasl.Client
		ok   bool
	}{
		{"none", nil, false},
		{"wrong password", sasl.NewPlainClient("", "user", "pass"), false},
		{"wrong user", sasl.NewPlainClient("", "admin", "pa ss"), false},
		{"right", sasl.NewPlainClient("", "user", "pa ss"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := send(s, tc.auth, raw)
			if (err == nil) != tc.ok {
				t.Errorf("send error = %v, want success %v", err, tc.ok)
			}
		})
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("received %d messages, want 1", n)
	}
}

func TestRefusesUnparseable(t *testing.T) {
	s := mailtest.Start(t, "", "")
	err := send(s, nil, "Subject: x\r\nContent-Type: multipart/alternative\r\n\r\nno boundary\r\n")
	if err == nil || !strings.Contains(err.Error(), "mailtest") {
		t.Errorf("send error = %v, want the server's parse error", err)
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("received %d messages, want 0", n)
	}
}
