package status

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/fakeserver"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// hostile answers every listing with names(path) and every read with "no
// such key".
func hostile(names func(path string) []string) fakeserver.Answer {
	return func(req *wire.Message) *wire.Message {
		switch req.Type {
		case wire.GetAllNodesForPath:
			return fakeserver.Nodes(names(req.Path)...)
		case wire.GetPulse:
			return fakeserver.NoPulse(req.Path)
		}
		return nil
	}
}

// manyNames is n distinct short names.
func manyNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%x", i)
	}
	return out
}

// Each bound of the walk stops a hostile server (a real listener speaking
// the protocol) with a *LimitError naming the flag that raises it.
func TestWalkLimits(t *testing.T) {
	tests := []struct {
		name  string
		names func(path string) []string
		lim   Limits
		limit string // LimitError.Limit
		flag  string
	}{
		{"[a, b] at every level", func(string) []string { return []string{"a", "b"} },
			Limits{}, "levels of depth", "--max-depth"},
		{"a wide directory at every level", func(string) []string { return manyNames(50_000) },
			Limits{MaxNames: 120_000}, "names", "--max-names"},
		{"long names", func(p string) []string { return []string{strings.Repeat("n", 100_000) + fmt.Sprint(len(p))} },
			Limits{MaxNameBytes: 1 << 20}, "bytes of key paths", "--max-name-bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := fakeserver.Start(t, hostile(tt.names))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := client.Dial(ctx, addr, client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = Scan(ctx, c, tt.lim)
			var le *LimitError
			if !errors.As(err, &le) || le.Limit != tt.limit || le.Flag != tt.flag || !strings.Contains(err.Error(), tt.flag+" raises the limit") {
				t.Fatalf("scan ended with %v; want the %s limit", err, tt.limit)
			}
			t.Log(err)
		})
	}
}

// The default limits let a Storm-shaped store through whole.
func TestWalkLimitsLetStormThrough(t *testing.T) {
	lim := Limits{}.withDefaults()
	if lim.MaxDepth < 3 || lim.MaxNames < 2_000_000 || lim.MaxNameBytes < 2_000_000*80 {
		t.Fatalf("defaults %+v cannot hold 1 M workers twice over", lim)
	}
}
