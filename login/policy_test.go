package login

import (
	"errors"
	"strings"
	"testing"
)

func TestPasswordPolicyCheck(t *testing.T) {
	for _, tc := range []struct {
		name            string
		policy          PasswordPolicy
		password        string
		username, email string
		want            string // "" for accepted, else a substring of the error
	}{
		{"empty", DefaultPasswordPolicy(), "", "", "", "at least 12 characters long, got 0"},
		{"11 characters", DefaultPasswordPolicy(), "abcdefghijk", "", "", "at least 12 characters long, got 11"},
		{"12 characters", DefaultPasswordPolicy(), "kettle prism", "", "", ""},
		{"128 characters", DefaultPasswordPolicy(), strings.Repeat("ab", 64), "", "", ""},
		{"129 characters", DefaultPasswordPolicy(), strings.Repeat("ab", 64) + "c", "", "", "at most 128 characters long, got 129"},
		{"code points, not bytes: 11", DefaultPasswordPolicy(), strings.Repeat("é", 11), "", "", "at least 12 characters long, got 11"},
		{"code points, not bytes: 12", DefaultPasswordPolicy(), strings.Repeat("é", 12), "", "", ""},
		{"code points, not bytes: 128 emoji", DefaultPasswordPolicy(), strings.Repeat("🔑", 128), "", "", ""},
		{"no composition rules", DefaultPasswordPolicy(), "correct horse battery staple", "", "", ""},
		{"zero value means 12", PasswordPolicy{}, "abcdefghijk", "", "", "at least 12 characters"},
		{"configured minimum", PasswordPolicy{MinLength: 16}, "abcdefghijklmno", "", "", "at least 16 characters"},
		{"configured minimum met", PasswordPolicy{MinLength: 16}, "kettle prism oak", "", "", ""},
		{"minimum never below 8", PasswordPolicy{MinLength: 4}, "abcdefg", "", "", "at least 8 characters"},
		{"breached", DefaultPasswordPolicy(), "qwerty123456", "", "", "in a list of common breached passwords; choose another"},
		{"breached, other case", DefaultPasswordPolicy(), "1QAZ2WSX3EDC", "", "", "common breached passwords"},
		{"breached, 16 characters", DefaultPasswordPolicy(), "passwordpassword", "", "", "common breached passwords"},
		{"breached, below the default minimum", PasswordPolicy{MinLength: 8}, "iloveyou", "", "", "common breached passwords"},
		{"username", DefaultPasswordPolicy(), "alice.liddell", "Alice.Liddell", "", "must not be your username or email"},
		{"email", DefaultPasswordPolicy(), "ALICE@EXAMPLE.COM", "alice", "alice@example.com", "must not be your username or email"},
		{"contains the username", DefaultPasswordPolicy(), "alice.liddell wonderland", "alice.liddell", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Check(tc.password, tc.username, tc.email)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: got %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check: got %v, want an error containing %q", err, tc.want)
			}
			if !errors.Is(err, ErrPasswordPolicy) {
				t.Errorf("Check: got %v, want it to wrap ErrPasswordPolicy", err)
			}
		})
	}
}

func TestBreachedList(t *testing.T) {
	list := breached()
	// 96 645 lines: see breachedGz.
	if got, want := len(list), 96645; got != want {
		t.Fatalf("breached list: got %d entries, want %d", got, want)
	}
	for i, p := range list {
		if len(p) < MinPasswordLength || p != strings.ToLower(p) || (i > 0 && list[i-1] >= p) {
			t.Fatalf("breached list: entry %d %q is short, not lower-case, or out of order", i, p)
		}
	}
	for _, p := range []string{"password", "12345678", "qwertyuiop", "1q2w3e4r5t6y", "Password1"} {
		if !IsBreachedPassword(p) {
			t.Errorf("IsBreachedPassword(%q): got false, want true", p)
		}
	}
	for _, p := range []string{"correct horse battery staple", "", "123456"} {
		if IsBreachedPassword(p) {
			t.Errorf("IsBreachedPassword(%q): got true, want false", p)
		}
	}
}
