// Package logging sets up log/slog: colourful tint output on a terminal,
// plain key=value lines without a timestamp under journald or in a pipe
// (journald stamps each line itself).
package logging

import (
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lmittmann/tint"
	"golang.org/x/term"
)

// New returns a logger writing to w at the level held by level, which can be
// changed later (config reload).
func New(w io.Writer, level *slog.LevelVar) *slog.Logger {
	f, isFile := w.(*os.File)
	if isFile && term.IsTerminal(int(f.Fd())) && !underJournal(f) {
		return slog.New(tint.NewHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly}))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// underJournal reports whether f is the stream systemd connected to the
// journal: JOURNAL_STREAM holds "device:inode" of that stream.
func underJournal(f *os.File) bool {
	v := os.Getenv("JOURNAL_STREAM")
	if v == "" {
		return false
	}
	dev, ino, ok := strings.Cut(v, ":")
	if !ok {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return strconv.FormatUint(uint64(st.Dev), 10) == dev && strconv.FormatUint(st.Ino, 10) == ino
}
