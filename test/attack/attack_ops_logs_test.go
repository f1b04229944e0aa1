package attack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/procmem"
)

// withLength prefixes a frame body with its length.
func withLength(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// badFrames are what the flood sends, one per connection, in turn.
var badFrames = [][]byte{
	// A request without its type field: data (field 2, a path) and
	// message_id (field 3) only.
	withLength([]byte{12, 0, 2, 11, 0, 1, 0, 0, 0, 2, '/', 'x', 0, 8, 0, 3, 0, 0, 0, 1, 0}),
	withLength([]byte{0xde, 0xad, 0xbe, 0xef, 0x99}), // garbage
	{0x7f, 0xff, 0xff, 0xff}, // length out of range
	{0, 0, 0, 100, 8, 0, 1},  // truncated, then closed
}

// closedWithoutAnswer reports whether the server closed nc without a byte.
func closedWithoutAnswer(nc net.Conn) error {
	_ = nc.SetReadDeadline(time.Now().Add(hangBound))
	n, err := io.Copy(io.Discard, nc)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		return err
	}
	if n > 0 {
		return fmt.Errorf("server answered %d bytes", n)
	}
	return nil
}

// TestNoTypeFieldIsMalformed: a message without its type is refused as a
// malformed frame (it used to be served as CREATE_PATH, type 0).
func TestNoTypeFieldIsMalformed(t *testing.T) {
	p := startDaemon(t, "")
	nc, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(badFrames[0]); err != nil {
		t.Fatal(err)
	}
	if err := closedWithoutAnswer(nc); err != nil {
		t.Fatalf("a frame without a type: %v", err)
	}
	if !p.WaitLog("no message type", hangBound) {
		t.Fatalf("no log line names the missing type")
	}
}

// TestWarningFlood: clients on four loopback addresses send malformed,
// oversized and truncated frames as fast as they can for 3 s; the daemon
// logs a bounded number of lines and then says how many it suppressed.
func TestWarningFlood(t *testing.T) {
	p := startDaemon(t, "")
	idle, _ := procmem.RSS(p.PID())
	h := startHonest(t, p.Addr())
	w := watchRSS(t, p.PID())
	linesBefore := strings.Count(p.Log(), "\n")
	const attackFor = 3 * time.Second
	var sent atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(attackFor)
	for a := range 4 {
		src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+a))}
		wg.Go(func() {
			d := net.Dialer{LocalAddr: src, Timeout: hangBound}
			for i := 0; time.Now().Before(stop) && i < 20000; i++ {
				nc, err := d.Dial("tcp", p.Addr())
				if err != nil {
					continue
				}
				_ = nc.SetDeadline(time.Now().Add(hangBound))
				if _, err := nc.Write(badFrames[i%len(badFrames)]); err == nil {
					sent.Add(1)
				}
				nc.Close() // the server reads what arrived, then the end
			}
		})
	}
	wg.Wait()
	lat := h.Finish(t, "during the warning flood")
	peak := w.Finish()
	lines := strings.Count(p.Log(), "\n") - linesBefore
	t.Logf("RESULT warning flood: %d bad frames in %v -> %d log lines (%.0f lines/s); peak RSS %s (idle %s); honest client %s",
		sent.Load(), attackFor, lines, float64(lines)/attackFor.Seconds(), mib(peak), mib(idle), lat)
	p.alive(t)
	// The limiter lets 100 lines a window through over all peers.
	if lines > 120 {
		t.Errorf("%d log lines for %d bad frames; want at most 120", lines, sent.Load())
	}
	if !p.WaitLog("suppressed similar warnings", 2*hangBound) {
		t.Errorf("no \"suppressed similar warnings\" report")
	}
	if peak > idle+64<<20 {
		t.Errorf("peak RSS %s; idle was %s", mib(peak), mib(idle))
	}
}
