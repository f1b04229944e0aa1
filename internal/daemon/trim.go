package daemon

import (
	"context"
	"runtime/debug"
	"time"
)

// After Nimbus deletes a big topology's path or a TTL sweep drops many
// heartbeats, the Go runtime keeps the freed pages for reuse, up to its
// heap goal; on a host that sized memory for the peak that is fine, but
// the RSS an operator sees would never come down. So once the stored bytes
// fall well below their high-water mark, the daemon returns the freed
// memory to the OS. The stored bytes are sampled every trimEvery (an
// atomic load): often enough that a fill and a delete within one sample,
// which the mark would miss, cannot hold much, and that RSS comes down
// about a second after a large drop rather than up to ten. A drop still
// under way (a DELETE_PATH of a million keys takes a second or more) is
// waited for: trimming half-way returns little, since a slab chunk is free
// only once its last value is gone, and would reset the mark so that the
// rest of the drop looked too small to trim.
const (
	trimEvery    = time.Second
	trimMinDrop  = 64 << 20 // bytes; smaller drops are left to the runtime
	trimFraction = 4        // and a drop of at least 1/trimFraction of the peak
	trimFalling  = 8 << 20  // a fall of more than this since the last sample is still under way
)

// trimmer remembers the stored bytes' high-water mark since the last trim.
type trimmer struct{ high, last int64 }

// observe takes the bytes stored now and the store's own high-water mark
// since the last sample (so a fill and a delete between two samples count),
// and reports whether enough was freed since the peak to give memory back;
// a trim resets the mark.
func (t *trimmer) observe(stored, peak int64) bool {
	t.high = max(t.high, stored, peak)
	if peak > t.last {
		t.last = peak // a drop from that peak is a fall, whenever it happened
	}
	falling := t.last-stored > trimFalling
	t.last = stored
	if falling {
		return false
	}
	drop := t.high - stored
	if drop < trimMinDrop || drop < t.high/trimFraction {
		return false
	}
	t.high = stored
	return true
}

// trimLoop returns freed memory to the OS after large drops in stored bytes.
func (d *daemon) trimLoop(ctx context.Context) {
	tick := time.NewTicker(trimEvery)
	defer tick.Stop()
	var t trimmer
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			stored, window := d.store.Bytes(), d.store.TakePeak()
			peak := max(t.high, window)
			if !t.observe(stored, window) {
				continue
			}
			start := time.Now()
			debug.FreeOSMemory()
			d.log.Info("returned freed memory to the OS", "stored_bytes", stored, "peak_bytes", peak,
				"took", time.Since(start).Round(time.Millisecond).String())
		}
	}
}
