package booted

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/nspawn"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/restartload"
)

// startLoad is Storm-like traffic into a container, dialled inside its
// network: workers writing a new key every few milliseconds on long-lived
// connections and, as Storm's client does, connecting again when one
// breaks; and new connections arriving meanwhile, each writing once.
func startLoad(t *testing.T, m *nspawn.Machine, addr string, workers int) *restartload.Load {
	t.Helper()
	return restartload.Start(t, restartload.Options{
		Dial: func() (restartload.Conn, error) {
			var c *client.Conn
			err := m.InNetns(func() (err error) {
				c, err = client.Dial(context.Background(), addr, client.Options{DialTimeout: 5 * time.Second})
				return err
			})
			if err != nil {
				return nil, err
			}
			return restartload.Client{Conn: c}, nil
		},
		Workers:   workers,
		Reconnect: true,
		WorkerBeat: func(w, n int) (string, string) {
			return fmt.Sprintf("/restart/w%d/k%d", w, n), fmt.Sprintf("w%d-%d", w, n)
		},
		NewBeat:     func(n int) (string, string) { return fmt.Sprintf("/restart/new/k%d", n), fmt.Sprintf("new-%d", n) },
		WorkerPause: 5 * time.Millisecond,
		NewPause:    20 * time.Millisecond,
	})
}
