package storagetest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twostep/twostep/storage"
)

var auditTests = []test{
	{"Audit/RecordList", testAuditRecordList},
	{"Audit/UserAgentBounded", testAuditUserAgent},
	{"Audit/DeleteBefore", testAuditDeleteBefore},
}

func testAuditDeleteBefore(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	for i := range 3 {
		e := storage.AuditEvent{Event: "login.password", Time: t0.Add(time.Duration(i) * time.Hour), Detail: strconv.Itoa(i)}
		if err := s.RecordAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteAuditEventsBefore(ctx, t0.Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("delete before the second event: got %d, %v, want 1 deleted", n, err)
	}
	evs, err := s.ListAuditEvents(ctx, storage.AuditFilter{})
	if err != nil || len(evs) != 2 || evs[0].Detail != "1" || evs[1].Detail != "2" {
		t.Errorf("left after the delete: got %+v, %v, want events 1 and 2", evs, err)
	}
}

func testAuditRecordList(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	if evs, err := s.ListAuditEvents(ctx, storage.AuditFilter{}); err != nil || len(evs) != 0 {
		t.Fatalf("list an empty log: got %d events, %v, want none", len(evs), err)
	}
	// One event a minute from t0, by Detail: e0 .. e4. e2 is recorded last
	// with an explicit time, so it is the newest row but not the newest
	// event.
	events := []storage.AuditEvent{
		{Event: "login.password", Outcome: "failure", UserID: "id-alice", IP: "192.0.2.1", UserAgent: "ua-0", Detail: "e0"},
		{Event: "login.password", Outcome: "success", UserID: "id-bob", IP: "192.0.2.2", Detail: "e1"},
		{Event: "admin.user.unlock", Outcome: "success", UserID: "id-alice", Detail: "e2"},
		{Event: "token.issued", Outcome: "success", UserID: "id-alice", ClientID: "client-1", IP: "2001:db8::1", UserAgent: "ua-3", Detail: "e3"},
		{Event: "login.totp", Outcome: "failure", UserID: "id-bob", Detail: "e4"},
	}
	for i := range events {
		events[i].Time = t0.Add(time.Duration(i) * time.Minute)
	}
	for _, i := range []int{0, 1, 3, 4} {
		clk.Set(events[i].Time)
		e := events[i]
		e.Time = time.Time{} // recorded at the clock's now
		if err := s.RecordAudit(ctx, e); err != nil {
			t.Fatalf("record %s: %v", e.Detail, err)
		}
	}
	if err := s.RecordAudit(ctx, events[2]); err != nil {
		t.Fatalf("record e2: %v", err)
	}

	tests := []struct {
		name   string
		filter storage.AuditFilter
		want   []int // indexes into events, in the order listed
	}{
		{"all, oldest first", storage.AuditFilter{}, []int{0, 1, 2, 3, 4}},
		{"one user", storage.AuditFilter{UserID: "id-alice"}, []int{0, 2, 3}},
		{"an unknown user", storage.AuditFilter{UserID: "id-nobody"}, nil},
		{"since is inclusive", storage.AuditFilter{Since: events[2].Time}, []int{2, 3, 4}},
		{"since, to the microsecond", storage.AuditFilter{Since: events[2].Time.Add(time.Microsecond)}, []int{3, 4}},
		{"since after the last", storage.AuditFilter{Since: events[4].Time.Add(time.Second)}, nil},
		{"user and since", storage.AuditFilter{UserID: "id-alice", Since: events[1].Time}, []int{2, 3}},
		{"limit keeps the newest", storage.AuditFilter{Limit: 2}, []int{3, 4}},
		{"limit and user", storage.AuditFilter{UserID: "id-alice", Limit: 1}, []int{3}},
		{"limit above the count", storage.AuditFilter{Limit: 10}, []int{0, 1, 2, 3, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListAuditEvents(ctx, tc.filter)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			var gotDetails, wantDetails []string
			for _, e := range got {
				gotDetails = append(gotDetails, e.Detail)
			}
			for _, i := range tc.want {
				wantDetails = append(wantDetails, events[i].Detail)
			}
			if strings.Join(gotDetails, ",") != strings.Join(wantDetails, ",") {
				t.Fatalf("got events %q, want %q", gotDetails, wantDetails)
			}
			for k, i := range tc.want {
				g, w := got[k], events[i]
				if g.ID == 0 || g.Event != w.Event || g.Outcome != w.Outcome || g.UserID != w.UserID ||
					g.ClientID != w.ClientID || g.IP != w.IP || g.UserAgent != w.UserAgent {
					t.Errorf("got event %+v, want %+v with an ID", g, w)
				}
				if !sameTime(g.Time, w.Time) {
					t.Errorf("event %s: got time %v, want %v in UTC", w.Detail, g.Time, w.Time)
				}
			}
		})
	}
}

// testAuditUserAgent checks that a client cannot make the audit log store
// more than 512 bytes of user agent, nor bytes that are not UTF-8 (a
// User-Agent header may carry any byte from 0x80 up, and PostgreSQL
// refuses invalid UTF-8 in a text column).
func testAuditUserAgent(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	a511 := strings.Repeat("a", 511)
	tests := []struct {
		name, ua, want string
	}{
		{"empty", "", ""},
		{"short", "curl/8.5.0", "curl/8.5.0"},
		{"exactly 512 bytes", a511 + "b", a511 + "b"},
		{"513 bytes", a511 + "bc", a511 + "b"},
		{"much longer", strings.Repeat("x", 10000), strings.Repeat("x", 512)},
		{"a rune across the limit", a511 + "é", a511},
		{"a rune up to the limit", a511[:509] + "€", a511[:509] + "€"},
		{"invalid UTF-8", "Mozilla/5.0 \xff\xfe(X11)", "Mozilla/5.0 \uFFFD(X11)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.RecordAudit(ctx, storage.AuditEvent{Event: "login.password", UserID: "id-" + tc.name, UserAgent: tc.ua}); err != nil {
				t.Fatalf("record: %v", err)
			}
			evs, err := s.ListAuditEvents(ctx, storage.AuditFilter{UserID: "id-" + tc.name})
			if err != nil || len(evs) != 1 {
				t.Fatalf("list: got %d events, %v, want 1", len(evs), err)
			}
			got := evs[0].UserAgent
			if got != tc.want {
				t.Errorf("got user agent of %d bytes %q, want %d bytes %q", len(got), got, len(tc.want), tc.want)
			}
			if len(got) > 512 || !utf8.ValidString(got) {
				t.Errorf("got user agent of %d bytes, valid UTF-8 %v, want at most 512 bytes of UTF-8", len(got), utf8.ValidString(got))
			}
		})
	}
}
