// Package mail owns outgoing transactional mail: invitations, email
// verification and password-reset links, sent over SMTP one message to one
// recipient at a time.
//
// A Mailer is built from a URL such as smtps://user:pass@smtp.example.com
// (implicit TLS, RFC 8314 §3.3) or smtp://user:pass@smtp.example.com:587
// (STARTTLS, RFC 3207, required for any host but the loopback one). Every
// message is multipart/alternative (RFC 2046 §5.1.4) with a text/plain and a
// text/html part in UTF-8. The SMTP password never appears in an error or in
// Mailer.String.
//
// Package mailtest holds an in-process SMTP server for other packages' tests.
package mail
