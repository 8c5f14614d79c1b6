package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
)

var deviceTests = []test{
	{"Devices/CreateUse", testDeviceCreateUse},
	{"Devices/ListDelete", testDeviceListDelete},
	{"Devices/ForgottenOnCredentialChange", testDeviceForgottenOnCredentialChange},
}

// createDevice remembers a device of user that expires in 30 days.
func createDevice(t *testing.T, s *storage.Store, clk *Clock, id, userID string) storage.Device {
	t.Helper()
	d := storage.Device{
		ID:        id,
		UserID:    userID,
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) " + id,
		IP:        "192.0.2.7",
		ExpiresAt: clk.Now().Add(30 * 24 * time.Hour),
	}
	if err := s.CreateDevice(context.Background(), d); err != nil {
		t.Fatalf("create device %q: %v", id, err)
	}
	d.CreatedAt, d.LastUsedAt = clk.Now(), clk.Now()
	return d
}

// checkDevice compares two devices, times to the microsecond.
func checkDevice(t *testing.T, got, want storage.Device) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.UserAgent != want.UserAgent || got.IP != want.IP {
		t.Errorf("got device %+v, want %+v", got, want)
	}
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"created at", got.CreatedAt, want.CreatedAt},
		{"last used at", got.LastUsedAt, want.LastUsedAt},
		{"expires at", got.ExpiresAt, want.ExpiresAt},
	} {
		if !sameTime(f.got, f.want) {
			t.Errorf("device %q: got %s %v, want %v in UTC", want.ID, f.name, f.got, f.want)
		}
	}
}

func testDeviceCreateUse(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	alice := createDevice(t, s, clk, "device-alice", "id-alice")
	createDevice(t, s, clk, "device-bob", "id-bob")
	if err := s.CreateDevice(ctx, storage.Device{ID: "device-alice", UserID: "id-mallory", ExpiresAt: clk.Now().Add(time.Hour)}); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("create with a taken ID: got %v, want storage.ErrAlreadyExists", err)
	}
	steps := []struct {
		name     string
		at       time.Time
		id, user string
		wantErr  error
	}{
		{"its user", t0.Add(time.Hour), "device-alice", "id-alice", nil},
		{"another user", t0.Add(2 * time.Hour), "device-alice", "id-bob", storage.ErrNotFound},
		{"unknown device", t0.Add(2 * time.Hour), "device-nobody", "id-alice", storage.ErrNotFound},
		{"its user again", t0.Add(3 * time.Hour), "device-alice", "id-alice", nil},
		{"the last microsecond", alice.ExpiresAt.Add(-time.Microsecond), "device-alice", "id-alice", nil},
		{"expired", alice.ExpiresAt, "device-alice", "id-alice", storage.ErrNotFound},
	}
	lastUsed := alice.CreatedAt
	for _, st := range steps {
		clk.Set(st.at)
		got, err := s.UseDevice(ctx, st.id, st.user)
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Errorf("%s: got %v, want %v", st.name, err, st.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		lastUsed = st.at
		want := alice
		want.LastUsedAt = lastUsed
		checkDevice(t, got, want)
	}
	// A refused use does not count as a use.
	clk.Set(t0)
	devices, err := s.ListDevices(ctx, "id-alice")
	if err != nil || len(devices) != 1 {
		t.Fatalf("list: got %d devices, %v, want 1", len(devices), err)
	}
	if !sameTime(devices[0].LastUsedAt, lastUsed) {
		t.Errorf("got last used at %v, want %v", devices[0].LastUsedAt, lastUsed)
	}
}

func testDeviceListDelete(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	first := createDevice(t, s, clk, "device-1", "id-alice")
	clk.Add(time.Minute)
	second := createDevice(t, s, clk, "device-2", "id-alice")
	bobs := createDevice(t, s, clk, "device-bob", "id-bob")
	short := storage.Device{ID: "device-short", UserID: "id-alice", CreatedAt: t0.Add(-time.Hour), ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateDevice(ctx, short); err != nil {
		t.Fatal(err)
	}
	short.LastUsedAt = short.CreatedAt

	list := func(user string) []storage.Device {
		t.Helper()
		ds, err := s.ListDevices(ctx, user)
		if err != nil {
			t.Fatalf("list devices of %s: %v", user, err)
		}
		return ds
	}
	check := func(step string, got []storage.Device, want ...storage.Device) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: got %d devices, want %d", step, len(got), len(want))
			return
		}
		for i := range want {
			checkDevice(t, got[i], want[i])
		}
	}
	check("newest first", list("id-alice"), second, first, short)
	check("another user's", list("id-bob"), bobs)
	check("a user without any", list("id-nobody"))
	clk.Set(t0.Add(time.Hour))
	check("without the expired one", list("id-alice"), second, first)

	if err := s.DeleteDevice(ctx, "id-bob", "device-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("delete another user's device: got %v, want storage.ErrNotFound", err)
	}
	check("after refusing to delete", list("id-alice"), second, first)
	if err := s.DeleteDevice(ctx, "id-alice", "device-1"); err != nil {
		t.Errorf("delete: got %v, want nil", err)
	}
	check("after deleting one", list("id-alice"), second)
	if _, err := s.UseDevice(ctx, "device-1", "id-alice"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("use a deleted device: got %v, want storage.ErrNotFound", err)
	}
	if err := s.DeleteDevice(ctx, "id-alice", "device-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("delete twice: got %v, want storage.ErrNotFound", err)
	}
	if err := s.DeleteUserDevices(ctx, "id-alice"); err != nil {
		t.Errorf("delete a user's devices: got %v, want nil", err)
	}
	check("after deleting the user's", list("id-alice"))
	check("another user's after deleting", list("id-bob"), bobs)
	if err := s.DeleteUserDevices(ctx, "id-alice"); err != nil {
		t.Errorf("delete a user's devices again: got %v, want nil", err)
	}
}

// testDeviceForgottenOnCredentialChange checks that a new password or a
// reset authenticator forgets the user's remembered devices, and only
// theirs.
func testDeviceForgottenOnCredentialChange(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	tests := []struct {
		name   string
		change func(userID string) error
	}{
		{"SetPasswordHash", func(id string) error { return s.SetPasswordHash(ctx, id, "new-hash", "") }},
		{"ResetTOTP", func(id string) error { return s.ResetTOTP(ctx, id) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			alice, bob := "id-alice-"+tc.name, "id-bob-"+tc.name
			createUser(t, s, alice, "alice-"+tc.name)
			createUser(t, s, bob, "bob-"+tc.name)
			if err := s.ConfirmTOTP(ctx, alice, "JBSWY3DPEHPK3PXP", 10, nil); err != nil {
				t.Fatal(err)
			}
			createDevice(t, s, clk, "device-1-"+alice, alice)
			createDevice(t, s, clk, "device-2-"+alice, alice)
			createDevice(t, s, clk, "device-"+bob, bob)
			if err := tc.change(alice); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			for _, d := range []struct {
				id, user string
				wantErr  error
			}{
				{"device-1-" + alice, alice, storage.ErrNotFound},
				{"device-2-" + alice, alice, storage.ErrNotFound},
				{"device-" + bob, bob, nil},
			} {
				_, err := s.UseDevice(ctx, d.id, d.user)
				if !errors.Is(err, d.wantErr) || (d.wantErr == nil && err != nil) {
					t.Errorf("use %s: got %v, want %v", d.id, err, d.wantErr)
				}
			}
		})
	}
}
