// Package mailtest holds an in-process SMTP server that keeps and parses
// what it receives, for tests of code that sends mail through package mail:
//
//	srv := mailtest.Start(t, "user", "pass")
//	m, err := mail.New(mail.Config{URL: srv.URL(), From: "login@example.com"})
//	...
//	got := srv.Wait(t, 1)
//	link := got.Links()[0]
package mailtest
