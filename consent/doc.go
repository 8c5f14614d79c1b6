// Package consent owns the consent step: the page that tells a signed-in
// user, in plain words, what an application asks for, records their allow
// or deny on the pending authorization request, and remembers an allow per
// user and client so the next login skips the question.
package consent
