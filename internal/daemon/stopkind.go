package daemon

import (
	"context"
	"os"
	"strings"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// stopKindTimeout bounds asking systemd why the daemon is stopping.
const stopKindTimeout = time.Second

// stopKind asks systemd, over the system bus, which job is stopping the
// daemon's unit: "restart" (restart, try-restart, reload-or-restart: a
// next process follows) or "stop". A SIGTERM looks the same for both; only
// systemd's job queue tells them apart. "" when it cannot be told (no
// system bus, as on minimal hosts; not under systemd; no job: a kill).
func stopKind() string {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopKindTimeout)
	defer cancel()
	conn, err := sddbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return ""
	}
	defer conn.Close()
	unit, err := conn.GetUnitNameByPID(ctx, uint32(os.Getpid()))
	if err != nil {
		return ""
	}
	jobs, err := conn.ListJobsContext(ctx)
	if err != nil {
		return ""
	}
	for _, j := range jobs {
		switch {
		case j.Unit != unit:
		case j.JobType == "stop":
			return "stop"
		case strings.Contains(j.JobType, "restart"):
			return "restart"
		}
	}
	return ""
}
