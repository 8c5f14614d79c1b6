package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/twostep/twostep/login"
	"github.com/twostep/twostep/storage"
)

const userUsage = `usage:
  twostep user add NAME [--email E] [--email-verified] [--name "Full Name"] [--groups a,b] [--password-stdin]
  twostep user list
  twostep user show NAME
  twostep user disable NAME
  twostep user passwd NAME --password-stdin
  twostep user reset-totp NAME
`

// minPasswordLength follows NIST SP 800-63B §5.1.1.2.
const minPasswordLength = 8

func runUser(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, userUsage)
		return errors.New("user: no subcommand given")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("user "+sub, e)
	var db dbFlags
	db.register(fs, e)
	var (
		email, name, groups    string
		emailVerified, fromStd bool
	)
	switch sub {
	case "add":
		fs.StringVar(&email, "email", "", "email address")
		fs.BoolVar(&emailVerified, "email-verified", false, "mark the email address as verified")
		fs.StringVar(&name, "name", "", "full name")
		fs.StringVar(&groups, "groups", "", "comma-separated groups")
		fs.BoolVar(&fromStd, "password-stdin", false, "read the password from standard input instead of generating one")
	case "passwd":
		fs.BoolVar(&fromStd, "password-stdin", false, "read the new password from standard input (required)")
	case "list", "show", "disable", "reset-totp":
	default:
		fmt.Fprint(e.stderr, userUsage)
		return fmt.Errorf("user: unknown subcommand %q", sub)
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	wantArgs := 1
	if sub == "list" {
		wantArgs = 0
	}
	if len(pos) != wantArgs {
		fmt.Fprint(e.stderr, userUsage)
		return fmt.Errorf("user %s: want %d argument(s), got %d", sub, wantArgs, len(pos))
	}
	var username string
	if wantArgs == 1 {
		username = pos[0]
	}

	// Validate everything before touching the database.
	var password string
	switch sub {
	case "add":
		if err := validUsername(username); err != nil {
			return err
		}
		if email != "" && !strings.Contains(email, "@") {
			return fmt.Errorf("user add: %q is not an email address", email)
		}
		if fromStd {
			if password, err = readPassword(e.stdin); err != nil {
				return err
			}
		}
	case "passwd":
		if !fromStd {
			return errors.New("user passwd: --password-stdin is required (passwords never go in flags)")
		}
		if password, err = readPassword(e.stdin); err != nil {
			return err
		}
	}

	store, _, err := db.open(ctx, e, storage.Options{})
	if err != nil {
		return err
	}
	defer store.Close()

	switch sub {
	case "add":
		return userAdd(ctx, e, store, username, email, emailVerified, name, groups, password)
	case "list":
		return userList(ctx, e, store)
	}
	u, err := store.GetUserByUsername(ctx, username)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("user %s: no user %q", sub, username)
	}
	if err != nil {
		return err
	}
	switch sub {
	case "show":
		w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "username:\t%s\nsubject:\t%s\nemail:\t%s\nemail verified:\t%t\nname:\t%s\ngroups:\t%s\nauthenticator:\t%s\ndisabled:\t%t\ncreated:\t%s\n",
			u.Username, u.ID, u.Email, u.EmailVerified, u.Name, strings.Join(u.Groups, ","), totpState(u), u.Disabled,
			u.CreatedAt.Format("2006-01-02 15:04:05Z07:00"))
		return w.Flush()
	case "disable":
		if err := store.SetUserDisabled(ctx, u.ID, true); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "user %s disabled; their sessions and tokens are revoked\n", u.Username)
	case "passwd":
		hash, err := login.NewHasher(login.DefaultParams()).Hash(password)
		if err != nil {
			return err
		}
		if err := store.SetPasswordHash(ctx, u.ID, hash); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "password of %s changed; their sessions are ended\n", u.Username)
	case "reset-totp":
		if err := store.ResetTOTP(ctx, u.ID); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "authenticator of %s reset: the next login shows a new QR code\n", u.Username)
	}
	return nil
}

func userAdd(ctx context.Context, e env, store *storage.Store, username, email string, emailVerified bool, name, groups, password string) error {
	generated := password == ""
	if generated {
		var err error
		if password, err = randomString(18); err != nil {
			return err
		}
	}
	hash, err := login.NewHasher(login.DefaultParams()).Hash(password)
	if err != nil {
		return err
	}
	id, err := randomString(16)
	if err != nil {
		return err
	}
	var groupList []string
	for _, g := range strings.Split(groups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			groupList = append(groupList, g)
		}
	}
	err = store.CreateUser(ctx, storage.User{
		ID: id, Username: username, Email: email, EmailVerified: emailVerified, Name: name,
		Groups: groupList, PasswordHash: hash,
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return fmt.Errorf("user add: a user named %q already exists", username)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "user %s added (subject %s)\n", username, id)
	if generated {
		fmt.Fprintf(e.stdout, "password: %s\n(shown once; the first login enrols an authenticator app)\n", password)
	}
	return nil
}

func userList(ctx context.Context, e env, store *storage.Store) error {
	users, err := store.ListUsers(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "USERNAME\tSUBJECT\tEMAIL\tAUTHENTICATOR\tDISABLED")
	for _, u := range users {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\n", u.Username, u.ID, u.Email, totpState(u), u.Disabled)
	}
	return w.Flush()
}

func totpState(u storage.User) string {
	if u.HasTOTP() {
		return "confirmed " + u.TOTPConfirmedAt.Format("2006-01-02")
	}
	return "not enrolled"
}

// validUsername accepts 1 to 64 printable characters without spaces.
func validUsername(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("user add: a username must be 1 to 64 characters, got %d", len(name))
	}
	for _, r := range name {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("user add: username %q has a space or control character", name)
		}
	}
	return nil
}

// readPassword reads one line from r (a trailing newline is not part of
// the password).
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if len([]rune(password)) < minPasswordLength {
		return "", fmt.Errorf("the password on standard input is too short: want at least %d characters", minPasswordLength)
	}
	return password, nil
}

// randomString returns n random bytes, base64url-encoded.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
