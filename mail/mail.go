package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// timeout bounds each network step of a delivery: the dial with its TLS
// handshake, and each SMTP command. Send's context bounds the whole.
const timeout = 15 * time.Second

// ErrInvalidMessage is wrapped by Send's error when it refuses a Message
// before connecting: a To that is not one address, a line break in To or
// Subject (header injection), or an empty Subject, Text or HTML.
var ErrInvalidMessage = errors.New("invalid message")

// Message is one mail to one recipient, with a plain-text and an HTML body
// (both required).
type Message struct {
	To      string // one address, as net/mail.ParseAddress accepts it
	Subject string
	Text    string
	HTML    string
}

// Config is what New needs; cmd parses it from flags and the environment.
type Config struct {
	// URL is smtps://user:pass@host[:port] for implicit TLS (port 465 by
	// default) or smtp://user:pass@host[:port] for STARTTLS (port 587 by
	// default). STARTTLS is mandatory unless host is loopback (localhost,
	// 127.0.0.0/8, ::1), where it is used when offered. User and password
	// are percent-decoded; without a user there is no SMTP AUTH.
	URL string
	// From is the From address, e.g. "twostep <login@example.com>"; it is
	// also the envelope sender.
	From string
}

// Mailer sends messages; it is immutable and safe for concurrent use.
type Mailer struct {
	scheme   string // "smtp" or "smtps"
	host     string
	port     int
	user     string
	pass     string
	from     *netmail.Address
	loopback bool // host is this machine: no mandatory STARTTLS, no certificate check
}

// New validates cfg and returns a Mailer. Its errors name the problem and
// never quote the URL, whose userinfo holds the password.
func New(cfg Config) (*Mailer, error) {
	if cfg.URL == "" {
		return nil, errors.New("mail: SMTP URL is empty")
	}
	if !strings.Contains(cfg.URL, "://") {
		return nil, errors.New("mail: SMTP URL must start with smtp:// or smtps://")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse's errors quote the URL, and the detail may quote a
		// piece of a password containing '/' or '%': keep the detail only
		// when there is no userinfo.
		var ue *url.Error
		if errors.As(err, &ue) && !strings.Contains(cfg.URL, "@") {
			return nil, fmt.Errorf("mail: SMTP URL is malformed: %w", ue.Err)
		}
		return nil, errors.New("mail: SMTP URL is malformed; percent-encode special characters in the user name and password")
	}
	m := &Mailer{scheme: u.Scheme, host: u.Hostname()}
	switch u.Scheme {
	case "smtp":
		m.port = 587
	case "smtps":
		m.port = 465
	default:
		return nil, fmt.Errorf("mail: SMTP URL scheme %q is not supported; want smtp or smtps", u.Scheme)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("mail: SMTP URL must not have a path, query or fragment")
	}
	if m.host == "" {
		return nil, errors.New("mail: SMTP URL has no host")
	}
	if p := u.Port(); p != "" {
		// url.Parse lets only digits through.
		if m.port, err = strconv.Atoi(p); err != nil || m.port < 1 || m.port > 65535 {
			return nil, fmt.Errorf("mail: SMTP port %s is out of range", p)
		}
	}
	if u.User != nil {
		m.user = u.User.Username()
		m.pass, _ = u.User.Password()
		if m.user == "" && m.pass != "" {
			return nil, errors.New("mail: SMTP URL has a password but no user name")
		}
	}
	if addr, err := netip.ParseAddr(m.host); err == nil {
		m.loopback = addr.Unmap().IsLoopback()
	} else {
		m.loopback = strings.EqualFold(m.host, "localhost")
	}

	if cfg.From == "" {
		return nil, errors.New("mail: From address is required")
	}
	if strings.ContainsAny(cfg.From, "\r\n") {
		return nil, errors.New("mail: From address contains a line break")
	}
	if m.from, err = netmail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("mail: From address %q is invalid: %w", cfg.From, err)
	}
	return m, nil
}

// String describes the mailer for logs without the password, e.g.
// "smtp://user@host:587".
func (m *Mailer) String() string {
	u := url.URL{Scheme: m.scheme, Host: net.JoinHostPort(m.host, strconv.Itoa(m.port))}
	if m.user != "" {
		u.User = url.User(m.user)
	}
	return u.String()
}

// Send delivers msg on a connection of its own, within ctx and the
// per-step timeout; cancelling ctx aborts the delivery mid-conversation.
// A refused msg gives an error wrapping ErrInvalidMessage, and nothing is
// sent. Errors never contain the SMTP password.
func (m *Mailer) Send(ctx context.Context, msg Message) error {
	gm, to, err := m.compose(msg)
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}

	// go-mail bounds only its dial by ctx and the rest by its own
	// deadlines, so close the connection when ctx ends. go-mail calls dial
	// synchronously, so stop is set before DialAndSendWithContext returns.
	var stop func() bool
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := m.dial(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		stop = context.AfterFunc(ctx, func() { conn.Close() })
		return conn, nil
	}
	c, err := gomail.NewClient(m.host, m.options(dial)...)
	if err == nil {
		err = c.DialAndSendWithContext(ctx, gm)
	}
	if stop != nil {
		stop()
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return fmt.Errorf("mail: send to %s via %s: %w", to, m, err)
	}
	return nil
}

// compose checks msg and builds it; to is the recipient's bare address.
func (m *Mailer) compose(msg Message) (gm *gomail.Msg, to string, err error) {
	switch {
	case strings.ContainsAny(msg.To, "\r\n"):
		return nil, "", fmt.Errorf("%w: To contains a line break", ErrInvalidMessage)
	case strings.ContainsAny(msg.Subject, "\r\n"):
		return nil, "", fmt.Errorf("%w: Subject contains a line break", ErrInvalidMessage)
	case strings.TrimSpace(msg.Subject) == "":
		return nil, "", fmt.Errorf("%w: Subject is empty", ErrInvalidMessage)
	case msg.Text == "" || msg.HTML == "":
		return nil, "", fmt.Errorf("%w: Text and HTML bodies are both required", ErrInvalidMessage)
	}
	// ParseAddress refuses lists ("a@x, b@y") and groups: one recipient.
	rcpt, err := netmail.ParseAddress(msg.To)
	if err != nil {
		return nil, "", fmt.Errorf("%w: To %q: %v", ErrInvalidMessage, msg.To, err)
	}

	// NewMsg defaults to UTF-8 and quoted-printable; no User-Agent header
	// advertising the library's version.
	gm = gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	gm.FromMailAddress(m.from)
	gm.ToMailAddress(rcpt)
	gm.Subject(msg.Subject)
	gm.SetDate()
	// The Message-ID names the sender's domain, not this machine's
	// hostname (RFC 5322 §3.6.4 only asks that it be unique).
	gm.SetMessageIDWithValue(rand.Text() + "@" + m.from.Address[strings.LastIndex(m.from.Address, "@")+1:])
	// Keep out-of-office and similar auto-replies away (RFC 3834 §5).
	gm.SetGenHeader("Auto-Submitted", "auto-generated")
	gm.SetBodyString(gomail.TypeTextPlain, msg.Text)
	gm.AddAlternativeString(gomail.TypeTextHTML, msg.HTML)
	return gm, rcpt.Address, nil
}

// options configures go-mail for one delivery over dial.
func (m *Mailer) options(dial gomail.DialContextFunc) []gomail.Option {
	opts := []gomail.Option{
		gomail.WithPort(m.port),
		gomail.WithTimeout(timeout),
		gomail.WithDialContextFunc(dial),
		gomail.WithTLSConfig(m.tlsConfig()),
	}
	switch {
	case m.scheme == "smtps":
		// dial does the handshake; this stops go-mail asking for STARTTLS.
		opts = append(opts, gomail.WithSSL())
	case m.loopback:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if m.user != "" {
		// PLAIN, else LOGIN (RFC 4954). Both refuse to send the password
		// in clear text, except to loopback where it never leaves the host.
		mechs := []gomail.SMTPAuthType{gomail.SMTPAuthPlain, gomail.SMTPAuthLogin}
		if m.loopback {
			mechs = []gomail.SMTPAuthType{gomail.SMTPAuthPlainNoEnc, gomail.SMTPAuthLoginNoEnc}
		}
		opts = append(opts,
			gomail.WithUsername(m.user),
			gomail.WithPassword(m.pass),
			gomail.WithOpportunisticSMTPAuth(mechs...),
		)
	}
	return opts
}

// tlsConfig is used for STARTTLS and for smtps.
func (m *Mailer) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName: m.host,
		MinVersion: tls.VersionTLS12,
		// A loopback relay (a local Postfix, say) typically has a
		// self-signed certificate, and checking it would guard against
		// nobody: a peer able to answer on loopback could as well not
		// offer STARTTLS, which the loopback policy accepts.
		InsecureSkipVerify: m.loopback,
	}
}

// dial connects to addr, with the TLS handshake for smtps. It is go-mail's
// own dialing, repeated so that Send can hold on to the connection.
func (m *Mailer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if m.scheme != "smtps" {
		return d.DialContext(ctx, network, addr)
	}
	td := &tls.Dialer{NetDialer: d, Config: m.tlsConfig()}
	return td.DialContext(ctx, network, addr)
}
