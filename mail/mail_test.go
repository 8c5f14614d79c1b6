package mail

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	netmail "net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/twostep/twostep/mail/mailtest"
)

// secret is the password in every test URL; no error may contain it.
const secret = "s3cr%t-P@ss"

// secretURL is secret as it appears, percent-encoded, in a URL.
const secretURL = "s3cr%25t-P%40ss"

func TestNewRejects(t *testing.T) {
	const from = "twostep <login@example.com>"
	tests := []struct {
		name, url, from, want string
	}{
		{"empty URL", "", from, "URL is empty"},
		{"no scheme", "user:" + secretURL + "@mail.example.com:587", from, "must start with smtp:// or smtps://"},
		{"http", "http://user:" + secretURL + "@mail.example.com", from, `scheme "http" is not supported`},
		{"smtp without slashes", "smtp:mail.example.com", from, "must start with smtp:// or smtps://"},
		{"no host", "smtp://user:" + secretURL + "@:587", from, "no host"},
		{"port out of range", "smtp://user:" + secretURL + "@mail.example.com:70000", from, "port 70000 is out of range"},
		{"port zero", "smtps://mail.example.com:0", from, "port 0 is out of range"},
		{"bad port", "smtp://mail.example.com:abc", from, "malformed"},
		{"bad escape in password", "smtp://user:s3cr%zzt@mail.example.com", from, "percent-encode"},
		{"slash in password", "smtp://user:s3cr/t-P@ss@mail.example.com", from, "malformed"},
		{"query", "smtp://user:" + secretURL + "@mail.example.com?tls=false", from, "must not have a path, query"},
		{"path", "smtp://mail.example.com/relay", from, "must not have a path, query"},
		{"password without user", "smtp://:" + secretURL + "@mail.example.com", from, "no user name"},
		{"no From", "smtp://user:" + secretURL + "@mail.example.com", "", "From address is required"},
		{"bad From", "smtp://user:" + secretURL + "@mail.example.com", "twostep", "From address \"twostep\" is invalid"},
		{"two From", "smtp://mail.example.com", "a@example.com, b@example.com", "is invalid"},
		{"From with line break", "smtp://mail.example.com", "a@example.com\r\nBcc: x@example.net", "line break"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(Config{URL: tc.url, From: tc.from})
			if err == nil {
				t.Fatalf("New = %v, want an error containing %q", m, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New error = %q, want it to contain %q", err, tc.want)
			}
			for _, leak := range []string{secret, secretURL, "s3cr"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("New error = %q, contains the password (%q)", err, leak)
				}
			}
		})
	}
}

func TestNewAccepts(t *testing.T) {
	tests := []struct {
		url, wantString string
		wantLoopback    bool
	}{
		{"smtp://user:" + secretURL + "@mail.example.com", "smtp://user@mail.example.com:587", false},
		{"smtp://mail.example.com:25/", "smtp://mail.example.com:25", false},
		{"smtps://us%40er:" + secretURL + "@mail.example.com", "smtps://us%40er@mail.example.com:465", false},
		{"smtps://mail.example.com:2465", "smtps://mail.example.com:2465", false},
		{"smtp://127.0.0.1:2525", "smtp://127.0.0.1:2525", true},
		{"smtp://127.0.0.2", "smtp://127.0.0.2:587", true},
		{"smtp://[::1]:25", "smtp://[::1]:25", true},
		{"smtp://LocalHost:25", "smtp://LocalHost:25", true},
		{"smtp://localhost.example.com:25", "smtp://localhost.example.com:25", false},
		{"smtp://10.0.0.1:25", "smtp://10.0.0.1:25", false},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			m, err := New(Config{URL: tc.url, From: "login@example.com"})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := m.String(); got != tc.wantString {
				t.Errorf("String() = %q, want %q", got, tc.wantString)
			}
			if m.loopback != tc.wantLoopback {
				t.Errorf("loopback = %v, want %v", m.loopback, tc.wantLoopback)
			}
		})
	}

	m, err := New(Config{URL: "smtp://us%40er:" + secretURL + "@mail.example.com", From: "login@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if m.user != "us@er" || m.pass != secret {
		t.Errorf("user, password = %q, %q; want them percent-decoded: %q, %q", m.user, m.pass, "us@er", secret)
	}
}

// send is a message with non-ASCII text everywhere it may be, and a text
// line long enough to need quoted-printable soft line breaks.
var send = Message{
	To:      "Zoë Müller <zoe@example.org>",
	Subject: "Bestätigen Sie Ihre Adresse – 日本",
	Text: "Grüß dich, Zoë!\n\nOpen https://login.example.com/verify?token=abc123&next=%2F to confirm; " +
		"this line goes on well past seventy-six characters so that it must be wrapped.\n" +
		"Ignore this mail if you did not ask for it: https://login.example.com/help.\n日本語\n",
	HTML: "<p>Grüß dich, Zoë!</p>\n<p><a href=\"https://login.example.com/verify?token=abc123&amp;next=%2F\">Confirm</a> – 日本語</p>\n",
}

func TestSend(t *testing.T) {
	srv := mailtest.Start(t, "mailer", secret)
	m, err := New(Config{URL: srv.URL(), From: "Twostep Lögin <login@example.com>"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), send); err != nil {
		t.Fatalf("Send: %v", err)
	}

	got := srv.Wait(t, 1)
	if got.From != "login@example.com" {
		t.Errorf("MAIL FROM = %q, want %q", got.From, "login@example.com")
	}
	if want := []string{"zoe@example.org"}; !slices.Equal(got.To, want) {
		t.Errorf("RCPT TO = %q, want %q", got.To, want)
	}
	if got.Subject != send.Subject {
		t.Errorf("Subject = %q, want %q", got.Subject, send.Subject)
	}
	if got.Text != send.Text {
		t.Errorf("Text = %q, want %q", got.Text, send.Text)
	}
	if got.HTML != send.HTML {
		t.Errorf("HTML = %q, want %q", got.HTML, send.HTML)
	}
	wantLinks := []string{"https://login.example.com/verify?token=abc123&next=%2F", "https://login.example.com/help"}
	if links := got.Links(); !slices.Equal(links, wantLinks) {
		t.Errorf("Links() = %q, want %q", links, wantLinks)
	}

	hdr, err := netmail.ReadMessage(strings.NewReader(string(got.Raw)))
	if err != nil {
		t.Fatalf("read raw message: %v", err)
	}
	for _, h := range []struct{ key, want string }{
		{"From", "Twostep Lögin <login@example.com>"},
		{"To", "Zoë Müller <zoe@example.org>"},
	} {
		addr, err := hdr.Header.AddressList(h.key)
		if err != nil || len(addr) != 1 {
			t.Errorf("%s: %q, %v; want one address", h.key, hdr.Header.Get(h.key), err)
			continue
		}
		if want, _ := netmail.ParseAddress(h.want); *addr[0] != *want {
			t.Errorf("%s = %v, want %v", h.key, addr[0], want)
		}
	}
	if ct := hdr.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative;") {
		t.Errorf("Content-Type = %q, want multipart/alternative", ct)
	}
	if date, err := hdr.Header.Date(); err != nil || time.Since(date).Abs() > time.Minute {
		t.Errorf("Date = %q (%v), want about now", hdr.Header.Get("Date"), err)
	}
	if id := hdr.Header.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") {
		t.Errorf("Message-ID = %q, want <...@example.com>", id)
	}
	for _, part := range []string{"text/plain; charset=UTF-8", "text/html; charset=UTF-8"} {
		if !strings.Contains(string(got.Raw), "Content-Type: "+part) {
			t.Errorf("no %q part in:\n%s", part, got.Raw)
		}
	}

	// A second message gets its own Message-ID.
	if err := m.Send(context.Background(), send); err != nil {
		t.Fatalf("second Send: %v", err)
	}
	second, _ := netmail.ReadMessage(strings.NewReader(string(srv.Wait(t, 2).Raw)))
	if a, b := hdr.Header.Get("Message-Id"), second.Header.Get("Message-Id"); a == b {
		t.Errorf("two messages share Message-ID %q", a)
	}
}

func TestSendConcurrent(t *testing.T) {
	srv := mailtest.Start(t, "mailer", secret)
	m, err := New(Config{URL: srv.URL(), From: "login@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var want []string
	errs := make(chan error, n)
	for i := range n {
		msg := send
		msg.To = fmt.Sprintf("user%d@example.org", i)
		want = append(want, msg.To)
		go func() { errs <- m.Send(context.Background(), msg) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Send: %v", err)
		}
	}
	var got []string
	for _, r := range srv.Messages() {
		got = append(got, r.To...)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("recipients = %q, want %q", got, want)
	}
}

func TestSendWithoutAuth(t *testing.T) {
	srv := mailtest.Start(t, "", "")
	m, err := New(Config{URL: srv.URL(), From: "login@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), send); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := srv.Wait(t, 1); got.Subject != send.Subject {
		t.Errorf("Subject = %q, want %q", got.Subject, send.Subject)
	}
}

func TestSendAuthFailures(t *testing.T) {
	srv := mailtest.Start(t, "mailer", secret)
	tests := []struct{ name, url string }{
		{"wrong password", strings.Replace(srv.URL(), secretURL, "wrong-"+secretURL, 1)},
		{"wrong user", strings.Replace(srv.URL(), "mailer:", "mailman:", 1)},
		{"no credentials", strings.Replace(srv.URL(), "mailer:"+secretURL+"@", "", 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.url == srv.URL() {
				t.Fatalf("test URL %q is the server's own", tc.url)
			}
			m, err := New(Config{URL: tc.url, From: "login@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			err = m.Send(context.Background(), send)
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if strings.Contains(err.Error(), "s3cr") {
				t.Errorf("Send error = %q, contains the password", err)
			}
			if errors.Is(err, ErrInvalidMessage) {
				t.Errorf("Send error = %q, is ErrInvalidMessage, want a delivery error", err)
			}
		})
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("server received %d messages, want 0", n)
	}
}

func TestSendRefusesInvalidMessages(t *testing.T) {
	srv := mailtest.Start(t, "mailer", secret)
	m, err := New(Config{URL: srv.URL(), From: "login@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*Message)
		want   string
	}{
		{"Bcc injected in To", func(m *Message) { m.To = "zoe@example.org\r\nBcc: evil@example.net" }, "To contains a line break"},
		{"LF in To", func(m *Message) { m.To = "zoe@example.org\nBcc: evil@example.net" }, "To contains a line break"},
		{"Bcc injected in Subject", func(m *Message) { m.Subject = "Hello\r\nBcc: evil@example.net" }, "Subject contains a line break"},
		{"body injected in Subject", func(m *Message) { m.Subject = "Hello\n\nclick https://evil.example.net" }, "Subject contains a line break"},
		{"two recipients", func(m *Message) { m.To = "zoe@example.org, evil@example.net" }, "To"},
		{"not an address", func(m *Message) { m.To = "zoe" }, "To"},
		{"empty To", func(m *Message) { m.To = "" }, "To"},
		{"empty Subject", func(m *Message) { m.Subject = " " }, "Subject is empty"},
		{"no Text", func(m *Message) { m.Text = "" }, "both required"},
		{"no HTML", func(m *Message) { m.HTML = "" }, "both required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := send
			tc.change(&msg)
			err := m.Send(context.Background(), msg)
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("Send error = %v, want ErrInvalidMessage", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Send error = %q, want it to contain %q", err, tc.want)
			}
		})
	}

	// Delivery is synchronous, so once a good message is through, anything
	// the refused ones had sent would be there too.
	if err := m.Send(context.Background(), send); err != nil {
		t.Fatalf("Send a valid message: %v", err)
	}
	if got := srv.Messages(); len(got) != 1 || !slices.Equal(got[0].To, []string{"zoe@example.org"}) || got[0].Subject != send.Subject {
		t.Errorf("server received %d messages (%+v), want only the valid one", len(got), got)
	}
}

func TestSendContext(t *testing.T) {
	// silent accepts connections (the kernel does, into the backlog) but
	// never says hello, like a stuck relay.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	srv := mailtest.Start(t, "mailer", secret)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name    string
		ctx     context.Context
		addr    string
		wantErr error // nil: any error
	}{
		{"cancelled", cancelled, strings.TrimPrefix(srv.URL(), "smtp://mailer:"+secretURL+"@"), context.Canceled},
		{"silent server", nil, silent.Addr().String(), context.DeadlineExceeded},
		{"closed port", context.Background(), closedAddr, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
				defer cancel()
			}
			m, err := New(Config{URL: "smtp://mailer:" + secretURL + "@" + tc.addr, From: "login@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = m.Send(ctx, send)
			// Without ctx, only the 15 s step timeout would end these.
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Send took %v, want it to end with ctx, long before the %v step timeout", d, timeout)
			}
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Send error = %q, want %v", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cr") {
				t.Errorf("Send error = %q, contains the password", err)
			}
		})
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("server received %d messages, want 0", n)
	}
}

func TestSendTLS(t *testing.T) {
	startTLS := startRelay(t, false)
	implicit := startRelay(t, true)
	plain := mailtest.Start(t, "mailer", secret)
	plainAddr := strings.TrimPrefix(plain.URL(), "smtp://mailer:"+secretURL+"@")

	tests := []struct {
		name     string
		relay    *relay // nil: plain
		scheme   string
		loopback bool // false: treat 127.0.0.1 as if it were a remote host
		wantErr  string
	}{
		{"STARTTLS, self-signed, loopback", startTLS, "smtp", true, ""},
		{"implicit TLS, self-signed, loopback", implicit, "smtps", true, ""},
		// The certificate is checked for a remote host.
		{"STARTTLS, self-signed, remote", startTLS, "smtp", false, "certificate"},
		{"implicit TLS, self-signed, remote", implicit, "smtps", false, "certificate"},
		// STARTTLS is mandatory for a remote host.
		{"no STARTTLS, remote", nil, "smtp", false, "STARTTLS"},
		// smtps never falls back to clear text.
		{"smtps to a clear-text server", nil, "smtps", true, "tls"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := plainAddr
			if tc.relay != nil {
				addr = tc.relay.addr
			}
			m, err := New(Config{URL: tc.scheme + "://mailer:" + secretURL + "@" + addr, From: "login@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			m.loopback = tc.loopback
			before := 0
			if tc.relay != nil {
				before = len(tc.relay.messages())
			}

			err = m.Send(context.Background(), send)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Send error = %v, want one mentioning %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cr") {
					t.Errorf("Send error = %q, contains the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := tc.relay.messages()
			if len(got) != before+1 {
				t.Fatalf("relay has %d messages, want %d", len(got), before+1)
			}
			if last := got[len(got)-1]; !last.tls || !strings.Contains(last.data, "Content-Type: multipart/alternative") {
				t.Errorf("relayed over TLS: %v, data:\n%s\nwant a multipart/alternative message over TLS", last.tls, last.data)
			}
		})
	}
	for _, r := range []*relay{startTLS, implicit} {
		if got := r.messages(); len(got) != 1 {
			t.Errorf("relay %s got %d messages, want 1 (from the loopback case only)", r.addr, len(got))
		}
	}
	if n := len(plain.Messages()); n != 0 {
		t.Errorf("clear-text server received %d messages, want 0", n)
	}
}

// relay is an SMTP server with a self-signed certificate for 127.0.0.1,
// offering STARTTLS or speaking TLS from the first byte. It offers AUTH
// PLAIN only over TLS and records whether each message came over TLS.
type relay struct {
	addr string
	mu   sync.Mutex
	got  []relayed
}

type relayed struct {
	tls  bool
	data string
}

func (r *relay) messages() []relayed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func startRelay(t *testing.T, implicit bool) *relay {
	t.Helper()
	cert := selfSigned(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{addr: ln.Addr().String()}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &relaySession{r: r, c: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ErrorLog = nopLogger{}
	if implicit {
		ln = tls.NewListener(ln, cfg)
	} else {
		srv.TLSConfig = cfg
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

type relaySession struct {
	r      *relay
	c      *smtp.Conn
	authed bool
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *relaySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "mailer" || pass != secret {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *relaySession) Mail(string, *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	return nil
}

func (s *relaySession) Rcpt(string, *smtp.RcptOptions) error { return nil }

func (s *relaySession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.c.TLSConnectionState()
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.got = append(s.r.got, relayed{tls: isTLS, data: string(data)})
	return nil
}

func (s *relaySession) Reset()        {}
func (s *relaySession) Logout() error { return nil }

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

// selfSigned makes a certificate for 127.0.0.1 that no one has signed.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
