package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/twostep/twostep/login"
	"github.com/twostep/twostep/storage"
)

const userUsage = `usage:
  twostep user add NAME [--email E] [--email-verified] [--name "Full Name"] [--groups a,b] [--password-stdin] [--min-password-length N]
  twostep user list
  twostep user show NAME
  twostep user disable NAME
  twostep user passwd NAME --password-stdin [--min-password-length N]
  twostep user reset-totp NAME
  twostep user unlock NAME
  twostep user devices NAME [--revoke ID | --revoke-all]
  twostep user invite EMAIL [--username U] [--groups a,b] [--expires 168h] [--lang en|fr|de]
                      [--issuer URL] [--brand-name N] [--smtp-url URL --mail-from ADDR]
`

// policyFlags configure the login.PasswordPolicy new passwords must pass.
type policyFlags struct {
	minLength int
}

func (f *policyFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.minLength, "min-password-length", login.DefaultMinPasswordLength,
		fmt.Sprintf("fewest characters a new password may have (%d to %d)", login.MinPasswordLength, login.MaxPasswordLength))
}

// policy is the configured policy, or an error if the flags are out of range.
func (f *policyFlags) policy() (login.PasswordPolicy, error) {
	if f.minLength < login.MinPasswordLength || f.minLength > login.MaxPasswordLength {
		return login.PasswordPolicy{}, fmt.Errorf("--min-password-length %d: want %d to %d (NIST SP 800-63B §5.1.1.2)",
			f.minLength, login.MinPasswordLength, login.MaxPasswordLength)
	}
	return login.PasswordPolicy{MinLength: f.minLength}, nil
}

func runUser(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, userUsage)
		return errors.New("user: no subcommand given")
	}
	sub, args := args[0], args[1:]
	if sub == "invite" {
		return runUserInvite(ctx, e, args)
	}
	fs := newFlagSet("user "+sub, e)
	var db dbFlags
	db.register(fs, e)
	var (
		email, name, groups, revoke       string
		emailVerified, fromStd, revokeAll bool
		pf                                policyFlags
	)
	switch sub {
	case "add":
		fs.StringVar(&email, "email", "", "email address")
		fs.BoolVar(&emailVerified, "email-verified", false, "mark the email address as verified")
		fs.StringVar(&name, "name", "", "full name")
		fs.StringVar(&groups, "groups", "", "comma-separated groups")
		fs.BoolVar(&fromStd, "password-stdin", false, "read the password from standard input instead of generating one")
		pf.register(fs)
	case "passwd":
		fs.BoolVar(&fromStd, "password-stdin", false, "read the new password from standard input (required)")
		pf.register(fs)
	case "devices":
		fs.StringVar(&revoke, "revoke", "", "forget the remembered device with this ID (or a unique prefix of it)")
		fs.BoolVar(&revokeAll, "revoke-all", false, "forget every remembered device of the user")
	case "list", "show", "disable", "reset-totp", "unlock":
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
	var (
		password string
		policy   login.PasswordPolicy
	)
	switch sub {
	case "add":
		if err := validUsername(username); err != nil {
			return err
		}
		if email != "" && !strings.Contains(email, "@") {
			return fmt.Errorf("user add: %q is not an email address", email)
		}
		if policy, err = pf.policy(); err != nil {
			return fmt.Errorf("user add: %w", err)
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
		if policy, err = pf.policy(); err != nil {
			return fmt.Errorf("user passwd: %w", err)
		}
		if password, err = readPassword(e.stdin); err != nil {
			return err
		}
	case "devices":
		if revoke != "" && revokeAll {
			return errors.New("user devices: give --revoke ID or --revoke-all, not both")
		}
	}

	store, _, err := db.open(ctx, e, storage.Options{})
	if err != nil {
		return err
	}
	defer store.Close()

	switch sub {
	case "add":
		return userAdd(ctx, e, store, username, email, emailVerified, name, groups, password, policy)
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
	audit := cliAuditor(e, store)
	switch sub {
	case "show":
		return userShow(ctx, e, store, u)
	case "disable":
		if err := setUserDisabled(ctx, store, audit.recordCLI, u, true); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "user %s disabled; their sessions and tokens are revoked\n", u.Username)
	case "passwd":
		if err := policy.Check(password, u.Username, u.Email); err != nil {
			return fmt.Errorf("user passwd: %w", err)
		}
		hash, err := login.NewHasher(login.DefaultParams()).Hash(password)
		if err != nil {
			return err
		}
		if err := store.SetPasswordHash(ctx, u.ID, hash, ""); err != nil {
			return err
		}
		audit.recordCLI(ctx, storage.AuditEvent{Event: "admin.user.passwd", UserID: u.ID})
		fmt.Fprintf(e.stdout, "password of %s changed; their sessions are ended and remembered devices forgotten\n", u.Username)
	case "reset-totp":
		if err := resetTOTP(ctx, store, audit.recordCLI, u); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "authenticator of %s reset: recovery codes and remembered devices are void, "+
			"and the next login shows a new QR code\n", u.Username)
	case "unlock":
		return userUnlock(ctx, e, store, audit, u)
	case "devices":
		return userDevices(ctx, e, store, audit, u, revoke, revokeAll)
	}
	return nil
}

func userShow(ctx context.Context, e env, store *storage.Store, u storage.User) error {
	codes, err := store.RecoveryCodesLeft(ctx, u.ID)
	if err != nil {
		return err
	}
	devices, err := store.ListDevices(ctx, u.ID)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "username:\t%s\nsubject:\t%s\nemail:\t%s\nemail verified:\t%t\nname:\t%s\ngroups:\t%s\nauthenticator:\t%s\n"+
		"recovery codes left:\t%d\nremembered devices:\t%d\nlocked:\t%s\ndisabled:\t%t\ncreated:\t%s\n",
		u.Username, u.ID, u.Email, u.EmailVerified, u.Name, strings.Join(u.Groups, ","), totpState(u),
		codes, len(devices), lockState(u), u.Disabled, u.CreatedAt.Format("2006-01-02 15:04:05Z07:00"))
	return w.Flush()
}

// lockState says whether wrong codes locked the user.
func lockState(u storage.User) string {
	switch {
	case u.FailedCodes >= login.MaxAccountCodes:
		return fmt.Sprintf("yes, after %d wrong codes (twostep user unlock %s)", u.FailedCodes, u.Username)
	case u.FailedCodes > 0:
		return fmt.Sprintf("no (%d wrong codes in a row; locked at %d)", u.FailedCodes, login.MaxAccountCodes)
	}
	return "no"
}

// userUnlock lifts the lock of wrong codes and the password back-off on
// the username, and says which of them there was.
func userUnlock(ctx context.Context, e env, store *storage.Store, audit *auditor, u storage.User) error {
	if err := unlockUser(ctx, store, audit.recordCLI, u); err != nil {
		return err
	}
	switch {
	case u.FailedCodes >= login.MaxAccountCodes:
		fmt.Fprintf(e.stdout, "user %s unlocked: the lock after %d wrong codes is lifted\n", u.Username, u.FailedCodes)
	case u.FailedCodes > 0:
		fmt.Fprintf(e.stdout, "user %s was not locked by wrong codes; their count of %d is reset\n", u.Username, u.FailedCodes)
	default:
		fmt.Fprintf(e.stdout, "user %s was not locked by wrong codes\n", u.Username)
	}
	fmt.Fprintf(e.stdout, "wrong passwords for %q are forgotten, so its back-off is lifted; client addresses stay throttled\n", u.Username)
	return nil
}

// deviceIDLength is how much of a device ID is shown: the same prefix the
// audit log records.
const deviceIDLength = 12

// userDevices lists the user's remembered devices, or forgets one or all.
func userDevices(ctx context.Context, e env, store *storage.Store, audit *auditor, u storage.User, revoke string, revokeAll bool) error {
	devices, err := store.ListDevices(ctx, u.ID)
	if err != nil {
		return err
	}
	switch {
	case revokeAll:
		if err := store.DeleteUserDevices(ctx, u.ID); err != nil {
			return err
		}
		audit.recordCLI(ctx, storage.AuditEvent{Event: "device.revoked", UserID: u.ID, Detail: fmt.Sprintf("all (%d)", len(devices))})
		fmt.Fprintf(e.stdout, "forgot %d remembered device(s) of %s: their next login asks for a code\n", len(devices), u.Username)
		return nil
	case revoke != "":
		d, err := findDevice(devices, revoke)
		if err != nil {
			return fmt.Errorf("user devices: %s has %w", u.Username, err)
		}
		if err := store.DeleteDevice(ctx, u.ID, d.ID); err != nil {
			return err
		}
		audit.recordCLI(ctx, storage.AuditEvent{Event: "device.revoked", UserID: u.ID, Detail: shortDeviceID(d.ID)})
		fmt.Fprintf(e.stdout, "forgot device %s of %s: its next login asks for a code\n", shortDeviceID(d.ID), u.Username)
		return nil
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tCREATED\tLAST USED\tEXPIRES\tIP\tUSER AGENT")
	for _, d := range devices {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", shortDeviceID(d.ID), d.CreatedAt.Format(time.RFC3339),
			d.LastUsedAt.Format(time.RFC3339), d.ExpiresAt.Format(time.RFC3339), printable(d.IP), printable(d.UserAgent))
	}
	return w.Flush()
}

func shortDeviceID(id string) string {
	if len(id) > deviceIDLength {
		return id[:deviceIDLength]
	}
	return id
}

// findDevice is the one device whose ID starts with prefix (at least 8
// characters, so a typo cannot match by chance).
func findDevice(devices []storage.Device, prefix string) (storage.Device, error) {
	if len(prefix) < 8 {
		return storage.Device{}, fmt.Errorf("no device %q: give at least 8 characters of its ID", prefix)
	}
	var found []storage.Device
	for _, d := range devices {
		if strings.HasPrefix(d.ID, prefix) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return storage.Device{}, fmt.Errorf("no device %q (see twostep user devices NAME)", prefix)
	case 1:
		return found[0], nil
	}
	return storage.Device{}, fmt.Errorf("%d devices whose ID starts with %q: give more of it", len(found), prefix)
}

func userAdd(ctx context.Context, e env, store *storage.Store, username, email string, emailVerified bool, name, groups, password string, policy login.PasswordPolicy) error {
	var groupList []string
	for _, g := range strings.Split(groups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			groupList = append(groupList, g)
		}
	}
	u, generated, err := createUser(ctx, store, cliAuditor(e, store).recordCLI, newUser{
		Username: username, Email: email, EmailVerified: emailVerified, Name: name, Groups: groupList, Password: password,
		Policy: policy,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "user %s added (subject %s)\n", u.Username, u.ID)
	if generated != "" {
		fmt.Fprintf(e.stdout, "password: %s\n(shown once; the first login enrols an authenticator app)\n", generated)
	}
	return nil
}

// newUser is what `user add` and POST /admin/users create a user from.
type newUser struct {
	Username      string   `json:"username"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	Groups        []string `json:"groups"`
	// Password is "" for one to be generated.
	Password string `json:"password"`
	// Policy is what Password must pass; the zero value is
	// login.DefaultPasswordPolicy.
	Policy login.PasswordPolicy `json:"-"`
}

// createUser validates in, creates the user and records the action: the one
// code path of `user add` and POST /admin/users. generated is the
// password it made up when in had none, to be shown once.
func createUser(ctx context.Context, store *storage.Store, record recordFunc, in newUser) (u storage.User, generated string, err error) {
	if err := validUsername(in.Username); err != nil {
		return u, "", badInput(err)
	}
	if in.Email != "" && !strings.Contains(in.Email, "@") {
		return u, "", badInput(fmt.Errorf("user add: %q is not an email address", in.Email))
	}
	password := in.Password
	if password == "" {
		if password, err = randomString(18); err != nil {
			return u, "", err
		}
		generated = password
	} else if err := in.Policy.Check(password, in.Username, in.Email); err != nil {
		return u, "", badInput(fmt.Errorf("user add: %w", err))
	}
	hash, err := login.NewHasher(login.DefaultParams()).Hash(password)
	if err != nil {
		return u, "", err
	}
	id, err := randomString(16)
	if err != nil {
		return u, "", err
	}
	u = storage.User{
		ID: id, Username: in.Username, Email: in.Email, EmailVerified: in.EmailVerified, Name: in.Name,
		Groups: in.Groups, PasswordHash: hash,
	}
	err = store.CreateUser(ctx, u)
	if errors.Is(err, storage.ErrAlreadyExists) {
		return u, "", conflict(fmt.Errorf("user add: a user named %q already exists", in.Username))
	}
	if err != nil {
		return u, "", err
	}
	record(ctx, storage.AuditEvent{Event: "admin.user.add", UserID: id})
	return u, generated, nil
}

// setUserDisabled disables (revoking the user's sessions and tokens) or
// enables a user, and records the action.
func setUserDisabled(ctx context.Context, store *storage.Store, record recordFunc, u storage.User, disabled bool) error {
	if err := store.SetUserDisabled(ctx, u.ID, disabled); err != nil {
		return err
	}
	event := "admin.user.enable"
	if disabled {
		event = "admin.user.disable"
	}
	record(ctx, storage.AuditEvent{Event: event, UserID: u.ID})
	return nil
}

// resetTOTP forgets the user's authenticator, recovery codes and
// remembered devices, and records the action.
func resetTOTP(ctx context.Context, store *storage.Store, record recordFunc, u storage.User) error {
	if err := store.ResetTOTP(ctx, u.ID); err != nil {
		return err
	}
	record(ctx, storage.AuditEvent{Event: "admin.user.reset_totp", UserID: u.ID})
	return nil
}

// unlockUser lifts the lock of wrong codes and the password back-off on
// the username, and records the action.
func unlockUser(ctx context.Context, store *storage.Store, record recordFunc, u storage.User) error {
	if err := login.Unlock(ctx, store, u); err != nil {
		return err
	}
	record(ctx, storage.AuditEvent{Event: "admin.user.unlock", UserID: u.ID,
		Detail: fmt.Sprintf("%d wrong codes cleared", u.FailedCodes)})
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
	return strings.TrimRight(line, "\r\n"), nil
}

// randomString returns n random bytes, base64url-encoded.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
