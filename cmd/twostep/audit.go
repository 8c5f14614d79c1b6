package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/twostep/twostep/storage"
)

// auditor is where every security event goes: the audit table, the log
// and the metrics. Its record method is what login, oidc and consent are
// given as their Audit function.
type auditor struct {
	store   *storage.Store
	log     *slog.Logger
	metrics *metrics // nil on the command line
	now     func() time.Time
}

// record completes ev with the request's time, address and user agent,
// and writes it. A failure to store it is logged, never shown: the user's
// request goes on. A nil request is an action on the command line.
func (a *auditor) record(r *http.Request, ev storage.AuditEvent) {
	if r == nil {
		a.recordCLI(context.Background(), ev)
		return
	}
	ev.IP = hostOf(r.RemoteAddr)
	ev.UserAgent = r.UserAgent()
	// The event happened even if the client has gone away since.
	a.write(context.WithoutCancel(r.Context()), ev, requestIDOf(r))
}

// recordFunc records an administrator's action: auditor.recordCLI on the
// command line, auditor.recordAdmin's closure in the admin API.
type recordFunc func(ctx context.Context, ev storage.AuditEvent)

// recordAdmin writes an administrator's action taken through the admin
// API, from the caller's address, with user agent "admin-api".
func (a *auditor) recordAdmin(r *http.Request, ev storage.AuditEvent) {
	ev.IP, ev.UserAgent = hostOf(r.RemoteAddr), "admin-api"
	if ev.Outcome == "" {
		ev.Outcome = "success"
	}
	a.write(context.WithoutCancel(r.Context()), ev, "")
}

// recordCLI writes an administrator's action taken on the command line.
func (a *auditor) recordCLI(ctx context.Context, ev storage.AuditEvent) {
	ev.IP, ev.UserAgent = "", "cli"
	if ev.Outcome == "" {
		ev.Outcome = "success"
	}
	a.write(ctx, ev, "")
}

func (a *auditor) write(ctx context.Context, ev storage.AuditEvent, requestID string) {
	if ev.Time.IsZero() {
		ev.Time = a.now().UTC()
	}
	if a.metrics != nil {
		a.metrics.count(ev)
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.String("event", ev.Event), slog.String("outcome", ev.Outcome),
		slog.String("user_id", ev.UserID), slog.String("client_id", ev.ClientID),
		slog.String("ip", ev.IP), slog.String("detail", ev.Detail), slog.String("request_id", requestID))
	if err := a.store.RecordAudit(ctx, ev); err != nil {
		a.log.LogAttrs(ctx, slog.LevelError, "audit: record event",
			slog.String("event", ev.Event), slog.String("user_id", ev.UserID),
			slog.String("request_id", requestID), slog.String("err", err.Error()))
	}
}

// cliAuditor records the command line's actions; it reports only a
// failure to record, on stderr.
func cliAuditor(e env, store *storage.Store) *auditor {
	return &auditor{
		store: store,
		log:   slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		now:   time.Now,
	}
}

// hostOf is the host of a host:port address, or the address itself.
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

const auditUsage = `usage:
  twostep audit [--user NAME] [--since DURATION] [--limit N] [--json]
`

// runAudit prints the audit log, oldest first: one event per line.
func runAudit(ctx context.Context, e env, args []string) error {
	fs := newFlagSet("audit", e)
	var db dbFlags
	db.register(fs, e)
	username := fs.String("user", "", "only the events of this user")
	since := fs.Duration("since", 24*time.Hour, "only the events of this last duration")
	limit := fs.Int("limit", 1000, "at most this many of the newest events")
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	if err := parseNoArgs(fs, args); err != nil {
		fmt.Fprint(e.stderr, auditUsage)
		return err
	}
	if *since <= 0 {
		return fmt.Errorf("audit: --since must be a positive duration, got %s", *since)
	}
	if *limit <= 0 {
		return fmt.Errorf("audit: --limit must be positive, got %d", *limit)
	}
	store, _, err := db.open(ctx, e, storage.Options{})
	if err != nil {
		return err
	}
	defer store.Close()

	events, names, err := auditEvents(ctx, store, *username, *since, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		err = printAuditJSON(e, events, names)
	} else {
		err = printAuditText(e, events, names)
	}
	if err != nil {
		return err
	}
	if len(events) == *limit {
		fmt.Fprintf(e.stderr, "twostep: showing only the newest %d events; raise --limit to see more\n", *limit)
	}
	return nil
}

// auditEvents are the newest limit events of the last duration since (of
// one user, unless username is ""), oldest first, with the usernames of
// the users they name: the one query of `twostep audit` and GET
// /admin/audit.
func auditEvents(ctx context.Context, store *storage.Store, username string, since time.Duration, limit int) ([]storage.AuditEvent, map[string]string, error) {
	users, err := store.ListUsers(ctx)
	if err != nil {
		return nil, nil, err
	}
	names := make(map[string]string, len(users))
	filter := storage.AuditFilter{Since: time.Now().Add(-since), Limit: limit}
	for _, u := range users {
		names[u.ID] = u.Username
		if u.Username == username {
			filter.UserID = u.ID
		}
	}
	if username != "" && filter.UserID == "" {
		return nil, nil, notFound(fmt.Errorf("audit: no user %q", username))
	}
	events, err := store.ListAuditEvents(ctx, filter)
	if err != nil {
		return nil, nil, err
	}
	return events, names, nil
}

// auditLine is an event as `audit --json` prints it.
type auditLine struct {
	ID        int64  `json:"id"`
	Time      string `json:"time"`
	Event     string `json:"event"`
	Outcome   string `json:"outcome"`
	UserID    string `json:"user_id"`
	Username  string `json:"username"`
	ClientID  string `json:"client_id"`
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
	Detail    string `json:"detail"`
}

func printAuditJSON(e env, events []storage.AuditEvent, names map[string]string) error {
	enc := json.NewEncoder(e.stdout)
	for _, ev := range events {
		if err := enc.Encode(newAuditLine(ev, names)); err != nil {
			return err
		}
	}
	return nil
}

func newAuditLine(ev storage.AuditEvent, names map[string]string) auditLine {
	return auditLine{
		ID: ev.ID, Time: ev.Time.UTC().Format(time.RFC3339), Event: ev.Event, Outcome: ev.Outcome,
		UserID: ev.UserID, Username: names[ev.UserID], ClientID: ev.ClientID, IP: ev.IP,
		UserAgent: ev.UserAgent, Detail: ev.Detail,
	}
}

// printAuditText prints aligned columns. Fields come partly from clients
// (the user agent), so control characters are replaced and empty fields
// shown as "-", keeping one event per line.
func printAuditText(e env, events []storage.AuditEvent, names map[string]string) error {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tEVENT\tOUTCOME\tUSER\tCLIENT\tIP\tUSER AGENT\tDETAIL")
	for _, ev := range events {
		user := ev.UserID
		if name, ok := names[ev.UserID]; ok {
			user = name
		}
		fields := []string{ev.Time.UTC().Format(time.RFC3339), ev.Event, ev.Outcome, user, ev.ClientID, ev.IP, ev.UserAgent, ev.Detail}
		for i, f := range fields {
			fields[i] = printable(f)
		}
		fmt.Fprintln(w, strings.Join(fields, "\t"))
	}
	return w.Flush()
}

// printable makes s safe for one column of a terminal line.
func printable(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}
