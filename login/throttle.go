package login

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/twostep/twostep/storage"
)

// Backoff is a throttling policy for wrong passwords: the first After
// failures cost nothing, each one after that doubles a delay that starts
// at Base, and from LockAfter failures on the key is locked for Lock after
// every further failure. Failures are forgotten a day after the last block
// ends, and a right password clears its account's count.
type Backoff struct {
	After     int
	Base      time.Duration
	LockAfter int
	Lock      time.Duration
}

// DefaultAccountThrottle is the policy per username: a 1 s delay after 5
// wrong passwords, doubling, and a 15-minute lock from the 20th on.
func DefaultAccountThrottle() Backoff {
	return Backoff{After: 5, Base: time.Second, LockAfter: 20, Lock: 15 * time.Minute}
}

// DefaultIPThrottle is the policy per client address, looser because many
// users may share one: a delay after 20 wrong passwords, a 15-minute lock
// from the 100th on.
func DefaultIPThrottle() Backoff {
	return Backoff{After: 20, Base: time.Second, LockAfter: 100, Lock: 15 * time.Minute}
}

// ForgetFailures is how long after its last block a key's failures are
// forgotten; the periodic cleanup deletes such counters.
const ForgetFailures = 24 * time.Hour

// Validate reports a policy that cannot work.
func (b Backoff) Validate() error {
	switch {
	case b.After < 1:
		return fmt.Errorf("throttle: back-off must start after at least 1 failure, got %d", b.After)
	case b.LockAfter <= b.After:
		return fmt.Errorf("throttle: the lock (after %d failures) must come after the back-off starts (%d)", b.LockAfter, b.After)
	case b.Base <= 0 || b.Lock < b.Base:
		return fmt.Errorf("throttle: want 0 < base delay (%s) <= lock (%s)", b.Base, b.Lock)
	}
	return nil
}

// delay is how long the key stays blocked after n failures.
func (b Backoff) delay(n int) time.Duration {
	switch {
	case n < b.After:
		return 0
	case n >= b.LockAfter:
		return b.Lock
	}
	d := b.Base
	for i := b.After; i < n && d < b.Lock; i++ {
		d *= 2
	}
	return min(d, b.Lock)
}

// usernameKey throttles password attempts per username. It hashes the
// lower-cased name, so unknown and known names are counted alike and the
// throttles table holds no usernames.
func usernameKey(username string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(username)))
	return "login:username:" + hex.EncodeToString(sum[:])
}

// ipKey throttles password attempts per client address. An IPv6 client
// usually holds a whole /64, so the addresses of one /64 count as one.
func ipKey(ip string) string {
	if a, err := netip.ParseAddr(ip); err == nil && a.Unmap().Is6() {
		p, _ := a.Prefix(64)
		ip = p.String()
	}
	return "login:ip:" + ip
}

// clientIP is the address the request came from. A reverse proxy in front
// of twostep must be trusted explicitly (cmd rewrites RemoteAddr then).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Unlock lifts every lock on the user: the lock that 100 wrong codes set
// and the password back-off on their username. Addresses stay throttled.
func Unlock(ctx context.Context, store *storage.Store, u storage.User) error {
	if err := store.UnlockUser(ctx, u.ID); err != nil {
		return err
	}
	return store.ResetThrottle(ctx, usernameKey(u.Username))
}

// resetThrottle forgets a counter after a success. A failure leaves the
// counter to be forgotten later, so it is logged, not shown.
func (h *Handler) resetThrottle(w http.ResponseWriter, r *http.Request, key, userID string) {
	if err := h.store.ResetThrottle(r.Context(), key); err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "login: reset throttle",
			slog.String("request_id", requestID(w)), slog.String("user_id", userID), slog.String("error", err.Error()))
	}
}
