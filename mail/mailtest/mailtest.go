package mailtest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Server is an in-process SMTP server on 127.0.0.1 that keeps every message
// it receives.
type Server struct {
	addr       string
	user, pass string

	mu       sync.Mutex
	received []Received
	arrived  chan struct{} // closed and replaced on every arrival
}

// Start starts a server on a random loopback port; it is closed when t
// ends. If user != "" it offers only AUTH PLAIN, without TLS, and refuses
// mail until the client has authenticated as user with pass.
func Start(t testing.TB, user, pass string) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s := &Server{addr: ln.Addr().String(), user: user, pass: pass, arrived: make(chan struct{})}

	log := &testLogger{t: t}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{s: s}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.ErrorLog = log

	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil {
			log.Printf("mailtest: serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		log.stop()
		srv.Close()
		<-done
	})
	return s
}

// URL is the smtp:// URL to give mail.Config, with the credentials when set.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.addr}
	if s.user != "" {
		u.User = url.UserPassword(s.user, s.pass)
	}
	return u.String()
}

// Messages returns copies of the messages received so far, oldest first.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Received, len(s.received))
	for i, r := range s.received {
		out[i] = r.clone()
	}
	return out
}

// Wait returns the n-th message received (counting from 1), waiting until
// it arrives; it fails t if that takes more than 10 s.
func (s *Server) Wait(t testing.TB, n int) Received {
	t.Helper()
	if n < 1 {
		t.Fatalf("mailtest: Wait(%d): messages count from 1", n)
	}
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, arrived := len(s.received), s.arrived
		if got >= n {
			r := s.received[n-1].clone()
			s.mu.Unlock()
			return r
		}
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-deadline.C:
			t.Fatalf("mailtest: waited 10 s for message %d, got %d", n, got)
		}
	}
}

// add keeps r and wakes the waiters.
func (s *Server) add(r Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received = append(s.received, r)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

// Received is one captured message, parsed.
type Received struct {
	From    string   // envelope MAIL FROM
	To      []string // envelope RCPT TO
	Subject string   // decoded (RFC 2047)
	Text    string   // the text/plain part, decoded, with "\n" line breaks
	HTML    string   // the text/html part, decoded, with "\n" line breaks
	Raw     []byte   // the message as received
}

// linkRE matches an http(s) URL up to white space or a character that
// cannot end one in running text.
var linkRE = regexp.MustCompile(`https?://[^\s<>"'()\[\]]+`)

// Links returns the http(s) URLs in the text part, in order, without
// trailing sentence punctuation.
func (r Received) Links() []string {
	var links []string
	for _, l := range linkRE.FindAllString(r.Text, -1) {
		links = append(links, strings.TrimRight(l, ".,;:!?"))
	}
	return links
}

func (r Received) clone() Received {
	r.To = slices.Clone(r.To)
	r.Raw = slices.Clone(r.Raw)
	return r
}

// session is one SMTP connection's state.
type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

// AuthMechanisms offers PLAIN when the server has credentials, and nothing
// otherwise, so that clients do not try to authenticate.
func (ss *session) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

// Auth checks PLAIN credentials against the server's.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.s.user == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if (identity != "" && identity != user) || user != ss.s.user || pass != ss.s.pass {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

// Mail starts a transaction, once authenticated if the server requires it.
func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

// Rcpt adds a recipient.
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

// Data parses and keeps the message. One that does not parse is refused,
// so that the sender's test sees why.
func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	rcv, err := parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "mailtest: " + err.Error()}
	}
	rcv.From, rcv.To = ss.from, slices.Clone(ss.to)
	ss.s.add(rcv)
	return nil
}

// Reset ends a transaction; authentication stays.
func (ss *session) Reset() {
	ss.from, ss.to = "", nil
}

// Logout ends the connection.
func (ss *session) Logout() error { return nil }

// parse decodes raw's subject and its text/plain and text/html parts,
// looking inside multipart bodies at any depth. Charsets other than UTF-8
// are not converted.
func parse(raw []byte) (Received, error) {
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Received{}, fmt.Errorf("read message: %w", err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return Received{}, fmt.Errorf("decode subject: %w", err)
	}
	r := Received{Subject: subject, Raw: raw}
	err = r.walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	return r, err
}

// walk reads one entity's body into r.Text or r.HTML, recursing into
// multipart ones.
func (r *Received) walk(contentType, encoding string, body io.Reader) error {
	if contentType == "" {
		contentType = "text/plain" // RFC 2045 §5.2
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("parse Content-Type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		if params["boundary"] == "" {
			return fmt.Errorf("%s without a boundary", mediaType)
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextRawPart leaves Content-Transfer-Encoding to us.
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read %s part: %w", mediaType, err)
			}
			if err := r.walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body) // skips line breaks
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("decode %s (%s): %w", mediaType, encoding, err)
	}
	// Lines end in CRLF on the wire (RFC 5322 §2.1); give them back as
	// the sender most likely wrote them.
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	switch mediaType {
	case "text/plain":
		r.Text += text
	case "text/html":
		r.HTML += text
	}
	return nil
}

// testLogger sends go-smtp's log to t until the test ends.
type testLogger struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (l *testLogger) Printf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf(format, v...)
	}
}

func (l *testLogger) Println(v ...any) {
	l.Printf("%s", fmt.Sprintln(v...))
}

func (l *testLogger) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}
