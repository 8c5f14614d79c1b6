package storage

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// AuditEvent is one security event: a login step, an enrolment, a lockout,
// a token issued, an administrator's action. It never holds a secret.
type AuditEvent struct {
	ID        int64     `db:"id"`
	Time      time.Time `db:"occurred_at"`
	Event     string    `db:"event"`   // e.g. "login.password", "admin.user.unlock"
	Outcome   string    `db:"outcome"` // e.g. "success", "failure", "replayed"
	UserID    string    `db:"user_id"`
	ClientID  string    `db:"client_id"`
	IP        string    `db:"ip"`
	UserAgent string    `db:"user_agent"`
	// Detail is a short, non-secret note: a grant type, a device ID, the
	// number of recovery codes left.
	Detail string `db:"detail"`
}

// maxUserAgent and maxAuditField bound what a client can make the audit
// table (and a login session's IP and user agent) store.
const (
	maxUserAgent  = 512
	maxAuditField = 256
)

// bound makes s valid UTF-8 of at most n bytes, cut at a rune boundary.
// Audit fields may come from request input (a User-Agent header may carry
// any byte from 0x80 up, a client_id any form value), and PostgreSQL
// refuses invalid UTF-8 in a text column, which would let a client keep
// its attempts out of the audit log.
func bound(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// RecordAudit appends e to the audit log; a zero Time is now.
func (s *Store) RecordAudit(ctx context.Context, e AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	e.UserAgent = bound(e.UserAgent, maxUserAgent)
	for _, f := range []*string{&e.Event, &e.Outcome, &e.UserID, &e.ClientID, &e.IP, &e.Detail} {
		*f = bound(*f, maxAuditField)
	}
	_, err := s.exec(ctx, "record audit event",
		`INSERT INTO audit_events (occurred_at, event, outcome, user_id, client_id, ip, user_agent, detail)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		utc(e.Time), e.Event, e.Outcome, e.UserID, e.ClientID, e.IP, e.UserAgent, e.Detail)
	return err
}

// AuditFilter selects audit events: those at or after Since, of UserID if
// it is set, at most Limit of the newest if it is positive.
type AuditFilter struct {
	UserID string
	Since  time.Time
	Limit  int
}

// ListAuditEvents returns the events f selects, oldest first.
func (s *Store) ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	q := `SELECT id, occurred_at, event, outcome, user_id, client_id, ip, user_agent, detail
	      FROM audit_events WHERE occurred_at >= ?`
	args := []any{utc(f.Since)}
	if f.UserID != "" {
		q += ` AND user_id = ?`
		args = append(args, f.UserID)
	}
	q += ` ORDER BY occurred_at DESC, id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	var evs []AuditEvent
	if err := s.sel(ctx, "list audit events", &evs, q, args...); err != nil {
		return nil, err
	}
	// Newest were selected first so that Limit keeps them; show them in
	// the order they happened.
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	for i := range evs {
		evs[i].Time = evs[i].Time.UTC()
	}
	return evs, nil
}

// DeleteAuditEventsBefore deletes the events that happened before t and
// returns how many went. It is one DELETE on an indexed time, safe to run
// on every instance at once.
func (s *Store) DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int64, error) {
	return s.exec(ctx, "delete audit events", `DELETE FROM audit_events WHERE occurred_at < ?`, utc(t))
}
