package daemon_test

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
)

func TestMain(m *testing.M) { os.Exit(daemon.Main(m)) }

func TestStartStop(t *testing.T) {
	p := daemon.Start(t, daemon.Options{
		Files:  map[string]string{"sub/note.txt": "dir is " + daemon.DirPlaceholder},
		Config: "pacemaker.log.level: info\n",
	})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if note, err := os.ReadFile(p.Dir() + "/sub/note.txt"); err != nil || string(note) != "dir is "+p.Dir() {
		t.Errorf("file: %q, %v", note, err)
	}
	if !p.WaitLog("serving", 5*time.Second) {
		t.Errorf("log has no 'serving' line:\n%s", p.Log())
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v\n%s", err, p.Log())
	}
	if !p.Exited() || p.Stop() != nil {
		t.Error("not exited after Stop, or a second Stop differs")
	}
}

func TestStartBadConfig(t *testing.T) {
	p := daemon.Start(t, daemon.Options{Config: "pacemaker.port: [not a port\n", NoWait: true})
	if code := p.Wait(15 * time.Second); code != 2 {
		t.Fatalf("exit code %d, want 2 for a bad config\n%s", code, p.Log())
	}
	if err := p.WaitReady(time.Second); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("WaitReady = %v, want an error saying it exited", err)
	}
}
