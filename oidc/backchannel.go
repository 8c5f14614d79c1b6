package oidc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/twostep/twostep/storage"
)

// Back-channel logout (OpenID Connect Back-Channel Logout 1.0). Each
// completed login has a sid, which its ID tokens carry. Issuing a code
// records the client against the sid when the client registered a
// back-channel logout URI; ending the login queues, in the database, one
// logout per recorded client. RunBackchannel delivers them on whichever
// instance claims them first, retrying with back-off, so the user's
// logout page never waits for a relying party.
const (
	// backchannelEvent is the one member of a logout token's events
	// claim (§2.4).
	backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"
	// logoutTokenLifetime is how long a logout token is valid. Each
	// attempt signs a fresh one, so it need not outlast the retries.
	logoutTokenLifetime = 2 * time.Minute
	// backchannelTimeout bounds one delivery, the response included.
	backchannelTimeout = 5 * time.Second
	// backchannelAttempts deliveries are tried before a logout is dropped.
	backchannelAttempts = 5
	// backchannelLease hides a claimed logout from other claimers while
	// it is delivered; it outlasts any delivery, so a logout is retried
	// only when its claimer died.
	backchannelLease = time.Minute
	// backchannelBatch bounds how many logouts one round claims and
	// delivers at once.
	backchannelBatch = 32
	// DefaultBackchannelInterval is how often RunBackchannel looks for
	// logouts that are due.
	DefaultBackchannelInterval = 5 * time.Second
)

// backchannel is the delivery side of the provider: how often to look for
// due logouts, a nudge for the instance that just queued some, and the
// HTTP client that posts them.
type backchannel struct {
	every  time.Duration
	wake   chan struct{}
	client *http.Client
}

func newBackchannel(every time.Duration) *backchannel {
	if every <= 0 {
		every = DefaultBackchannelInterval
	}
	return &backchannel{
		every: every,
		wake:  make(chan struct{}, 1),
		client: &http.Client{
			Timeout: backchannelTimeout,
			// §2.5: the logout token goes to the registered URI and nowhere
			// else; a redirect is a failed delivery.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// retryAfter is how long a logout waits after its nth failed attempt: 3,
// 9, 27, then 81 intervals (15 s to 6¾ min, about 10 minutes in all, at
// the default interval).
func (b *backchannel) retryAfter(attempts int) time.Duration {
	d := 3 * b.every
	for range attempts - 1 {
		d *= 3
	}
	return d
}

// rememberClient records that the completed login signed its user in to
// client, so that the login's end reaches the client's back-channel logout
// URI. A failure is logged, not shown: the sign-in goes on and only that
// notification would be lost.
func (p *Provider) rememberClient(ctx context.Context, login storage.LoginSession, client *storage.Client) {
	if client.BackchannelLogoutURI == "" || login.SID == "" {
		return
	}
	err := p.store.AddSessionClient(ctx, storage.SessionClient{
		SID: login.SID, ClientID: client.ID, UserID: login.UserID, ExpiresAt: login.ExpiresAt,
	})
	if err != nil {
		p.log.ErrorContext(ctx, "remember client for back-channel logout", "err", err,
			"client_id", client.ID, "user_id", login.UserID)
	}
}

// queueBackchannelLogouts queues a logout for each client the ended login
// signed in to, and nudges this instance's delivery. The login has ended
// already, so a failure is logged and the user's page goes on.
func (p *Provider) queueBackchannelLogouts(w http.ResponseWriter, r *http.Request, login storage.LoginSession) {
	if login.SID == "" {
		return
	}
	// The session is gone: finish even if the browser goes away.
	ctx := context.WithoutCancel(r.Context())
	n, err := p.store.QueueBackchannelLogouts(ctx, login.SID)
	if err != nil {
		p.log.ErrorContext(ctx, "queue back-channel logouts", "err", err, "user_id", login.UserID,
			"request_id", w.Header().Get("X-Request-Id"))
		return
	}
	if n > 0 {
		select {
		case p.bc.wake <- struct{}{}:
		default: // a nudge is pending already
		}
	}
}

// RunBackchannel delivers queued back-channel logouts until ctx ends: at
// once after a logout on this instance, and every BackchannelInterval for
// retries and for logouts queued by other instances. Every instance may
// run it: each logout is claimed by one. Deliveries in flight when ctx
// ends are abandoned; their claim runs out and they are tried again.
func (p *Provider) RunBackchannel(ctx context.Context) {
	t := time.NewTicker(p.bc.every)
	defer t.Stop()
	for {
		n, err := p.DeliverBackchannelLogouts(ctx)
		if err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "back-channel logout", "err", err)
		}
		if n == backchannelBatch {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.bc.wake:
		}
	}
}

// DeliverBackchannelLogouts claims the logouts that are due and delivers
// them, concurrently, each once. It returns how many it claimed, and an
// error only if it could not claim: the outcome of each delivery is
// logged, and audited as "backchannel_logout" when it succeeds or is
// given up.
func (p *Provider) DeliverBackchannelLogouts(ctx context.Context) (int, error) {
	due, err := p.store.ClaimBackchannelLogouts(ctx, backchannelBatch, backchannelLease)
	var wg sync.WaitGroup
	for _, l := range due {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.deliverLogout(ctx, l)
		}()
	}
	wg.Wait()
	if err != nil {
		return len(due), fmt.Errorf("claim back-channel logouts: %w", err)
	}
	return len(due), nil
}

// deliverLogout makes one attempt at a claimed logout, then deletes it
// (delivered, or the last attempt failed) or schedules the next attempt.
func (p *Provider) deliverLogout(ctx context.Context, l storage.BackchannelLogout) {
	token, err := p.logoutToken(ctx, l)
	// §2.5: the token is POSTed as a form.
	body := url.Values{"logout_token": {token}}.Encode()
	req, reqErr := http.NewRequestWithContext(ctx, http.MethodPost, l.URI, strings.NewReader(body))
	if err == nil {
		err = reqErr
	}
	if err == nil {
		err = p.postLogout(req)
	}
	if err != nil && ctx.Err() != nil {
		return // shutting down: the claim runs out and any instance retries
	}
	// The store calls go on even if ctx ends now: the attempt was made.
	ctx = context.WithoutCancel(ctx)
	attrs := []any{"client_id", l.ClientID, "user_id", l.UserID, "attempt", l.Attempts}
	target := l.URI
	if reqErr == nil {
		target = req.URL.Redacted() // no password, should the URI have one
	}
	ev := storage.AuditEvent{Event: "backchannel_logout", UserID: l.UserID, ClientID: l.ClientID}
	switch {
	case err == nil:
		if err := p.store.DeleteBackchannelLogout(ctx, l.ID); err != nil {
			p.log.ErrorContext(ctx, "back-channel logout: delete delivered", append(attrs, "err", err)...)
		}
		ev.Outcome, ev.Detail = "success", fmt.Sprintf("delivered to %s at attempt %d", target, l.Attempts)
	case l.Attempts >= backchannelAttempts || reqErr != nil:
		if err := p.store.DeleteBackchannelLogout(ctx, l.ID); err != nil {
			p.log.ErrorContext(ctx, "back-channel logout: delete given up", append(attrs, "err", err)...)
		}
		p.log.WarnContext(ctx, "back-channel logout given up", append(attrs, "err", err)...)
		ev.Outcome, ev.Detail = "failure", fmt.Sprintf("gave up on %s after %d attempts: %v", target, l.Attempts, err)
	default:
		next := p.now().Add(p.bc.retryAfter(l.Attempts))
		if err := p.store.RetryBackchannelLogout(ctx, l.ID, l.Attempts, next); err != nil && !errors.Is(err, storage.ErrConflict) {
			p.log.ErrorContext(ctx, "back-channel logout: schedule retry", append(attrs, "err", err)...)
		}
		p.log.InfoContext(ctx, "back-channel logout failed, will retry", append(attrs, "err", err, "retry_at", next)...)
		return
	}
	if reqErr == nil {
		// The event's request is the delivery itself: no client address,
		// twostep's user agent.
		p.record(req, ev)
	}
}

// postLogout sends a logout request and reads the answer: any 2xx is a
// success (§2.8: 200, though some frameworks answer 204).
func (p *Provider) postLogout(req *http.Request) error {
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "twostep")
	resp, err := p.bc.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", req.URL.Redacted(), resp.Status)
	}
	return nil
}

// logoutToken signs a logout token for l (§2.4): typ logout+jwt, the
// client as its only audience, the user and the session, a fresh jti, and
// never a nonce. It is signed as the client's ID tokens are (§2.4: with
// the same keys), so the client verifies both alike.
func (p *Provider) logoutToken(ctx context.Context, l storage.BackchannelLogout) (string, error) {
	client, err := p.store.Client(ctx, l.ClientID)
	if err != nil {
		return "", fmt.Errorf("logout token: %w", err)
	}
	jti, err := randomID()
	if err != nil {
		return "", fmt.Errorf("logout token: %w", err)
	}
	now := p.now()
	claims := jwt.MapClaims{
		"iss":    p.issuer,
		"aud":    l.ClientID,
		"iat":    now.Unix(),
		"exp":    now.Add(logoutTokenLifetime).Unix(),
		"jti":    jti,
		"sub":    l.UserID,
		"sid":    l.SID,
		"events": map[string]any{backchannelEvent: map[string]any{}},
	}
	// §2.4: typ distinguishes a logout token from an ID token.
	raw, _, err := p.keys.Signer(idTokenAlg(client)).Generate(ctx, claims, &jwt.Headers{Extra: map[string]any{"typ": "logout+jwt"}})
	if err != nil {
		return "", fmt.Errorf("sign logout token: %w", err)
	}
	return raw, nil
}

// withSID adds the login's sid to an ID token's claims, for every client
// (Back-Channel Logout 1.0 §2.1, §3: RECOMMENDED with
// backchannel_logout_session_supported). A login completed before sids
// existed has none.
func withSID(claims map[string]any, login storage.LoginSession) map[string]any {
	if login.SID != "" {
		claims["sid"] = login.SID
	}
	return claims
}
