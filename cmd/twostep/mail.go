package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/twostep/twostep/login"
	"github.com/twostep/twostep/mail"
)

// mailFlags configure the SMTP relay twostep sends invitations, email
// verifications and password reset links through; `serve` and `user
// invite` share them.
type mailFlags struct {
	smtpURL string
	from    string
}

func (f *mailFlags) register(fs *flag.FlagSet, e env) {
	fs.StringVar(&f.smtpURL, "smtp-url", e.getenv("TWOSTEP_SMTP_URL"),
		"SMTP relay for mail, smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465 (env TWOSTEP_SMTP_URL; empty: no mail)")
	fs.StringVar(&f.from, "mail-from", e.getenv("TWOSTEP_MAIL_FROM"),
		`From address of twostep's mail, e.g. "Example login <login@example.com>" (env TWOSTEP_MAIL_FROM)`)
}

// mailer returns the configured mailer, or nil (and no error) when mail is
// not configured.
func (f *mailFlags) mailer() (login.Mailer, error) {
	switch {
	case f.smtpURL == "" && f.from == "":
		return nil, nil
	case f.smtpURL == "":
		return nil, errors.New("--mail-from needs --smtp-url (env TWOSTEP_SMTP_URL)")
	case f.from == "":
		return nil, errors.New("--smtp-url needs --mail-from (env TWOSTEP_MAIL_FROM)")
	}
	m, err := mail.New(mail.Config{URL: f.smtpURL, From: f.from})
	if err != nil {
		return nil, fmt.Errorf("--smtp-url, --mail-from: %w", err)
	}
	return m, nil
}
