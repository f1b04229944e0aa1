package handoff

import (
	"fmt"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCarrier: descriptors come out in the order they went in, across
// message boundaries, and the carrier does not look hung up to a store
// that polls it after the sender is gone.
func TestCarrier(t *testing.T) {
	for _, n := range []int{0, 1, carrierBatch, carrierBatch + 1, 600} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var readers []*os.File
			for i := range n {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(w, "%d", i)
				w.Close()
				readers = append(readers, r)
			}
			carrier, err := pack(readers)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range readers {
				r.Close() // only the carrier keeps them now
			}
			fds := []unix.PollFd{{Fd: int32(carrier.Fd()), Events: unix.POLLIN}}
			if _, err := unix.Poll(fds, 0); err != nil {
				t.Fatal(err)
			}
			if fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
				t.Fatalf("carrier polls as hung up (revents %#x): a store would drop it", fds[0].Revents)
			}
			got, err := unpack(carrier)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n {
				t.Fatalf("unpacked %d descriptors, want %d", len(got), n)
			}
			for i, f := range got {
				b, err := io.ReadAll(f)
				f.Close()
				if err != nil || string(b) != fmt.Sprint(i) {
					t.Fatalf("descriptor %d reads %q, %v", i, b, err)
				}
			}
		})
	}
}

// TestEmptyCarrier: an empty socket (e.g. one already unpacked)
// yields nothing and no error.
func TestEmptyCarrier(t *testing.T) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pair[0])
	got, err := unpack(os.NewFile(uintptr(pair[1]), "empty"))
	if err != nil || len(got) != 0 {
		t.Fatalf("got %d descriptors, err %v", len(got), err)
	}
}
