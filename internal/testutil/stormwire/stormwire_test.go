package stormwire

import (
	"slices"
	"testing"
)

// TestRecordingsPresent pins the set of recordings, so one that goes
// missing (or a new one nobody uses) is noticed here.
func TestRecordingsPresent(t *testing.T) {
	want := []string{
		"digest-all-ops.txt",
		"digest-unmodified-client-a.txt",
		"digest-unmodified-client-b.txt",
		"digest-wrong-password.txt",
		"none-all-ops.txt",
		"none-client-vs-digest-server.txt",
	}
	got := Names()
	if !slices.Equal(got, want) {
		t.Fatalf("recordings %v, want %v", got, want)
	}
	for _, name := range want {
		if frames := Load(t, name); len(frames) < 2 {
			t.Errorf("%s: %d frames", name, len(frames))
		}
	}
}
