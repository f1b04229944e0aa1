package status

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/units"
)

// TableOptions choose what WriteTable shows.
type TableOptions struct {
	// Color adds ANSI colours (for a terminal).
	Color bool
	// All lists every worker, with the servers holding it and those
	// missing it; by default only stale workers are listed.
	All bool
}

// WriteJSON writes the report as indented JSON, the bytes
// json.MarshalIndent(r, "", "  ") gives, but one topology at a time: a
// million workers are half a gigabyte of JSON, which must not be held.
func (r *Report) WriteJSON(out io.Writer) error {
	w := bufio.NewWriter(out)
	field := func(name string, v any, last bool) error {
		b, err := json.MarshalIndent(v, "  ", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %q: %s", name, b)
		if !last {
			w.WriteString(",")
		}
		w.WriteString("\n")
		return nil
	}
	w.WriteString("{\n")
	if err := field("now", r.Now, false); err != nil {
		return err
	}
	if err := field("stale_after_secs", r.StaleSecs, false); err != nil {
		return err
	}
	if err := field("servers", r.Servers, false); err != nil {
		return err
	}
	if len(r.Topologies) == 0 {
		if err := field("topologies", r.Topologies, false); err != nil {
			return err
		}
	} else {
		w.WriteString("  \"topologies\": [\n")
		for i, t := range r.Topologies {
			b, err := json.MarshalIndent(t, "    ", "  ")
			if err != nil {
				return err
			}
			w.WriteString("    ")
			w.Write(b)
			if i < len(r.Topologies)-1 {
				w.WriteString(",")
			}
			w.WriteString("\n")
		}
		w.WriteString("  ],\n")
	}
	if err := field("summary", r.Summary, true); err != nil {
		return err
	}
	w.WriteString("}\n")
	return w.Flush()
}

// ANSI colours.
const (
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	bold   = "\x1b[1m"
	reset  = "\x1b[0m"
)

// cell is one table cell: its text and, on a terminal, its colour.
type cell struct {
	text  string
	color string
	right bool // numbers align right
}

func txt(text string) cell            { return cell{text: text} }
func num(n int64) cell                { return cell{text: strconv.FormatInt(n, 10), right: true} }
func colored(text, color string) cell { return cell{text: text, color: color} }

// table pads by the text's width, then colours, so that escape codes never
// upset the alignment. Its first row is the header.
type table struct {
	rows   [][]cell
	widths []int
	color  bool
}

func (t *table) add(cells ...cell) {
	t.widen(cells)
	t.rows = append(t.rows, cells)
}

// widen makes room for cells without keeping them (a streamed table: see
// workerTable).
func (t *table) widen(cells []cell) {
	for i, cl := range cells {
		if i >= len(t.widths) {
			t.widths = append(t.widths, 0)
		}
		t.widths[i] = max(t.widths[i], len([]rune(cl.text)))
	}
}

func (t *table) write(w io.Writer) {
	for ri, row := range t.rows {
		t.writeRow(w, row, ri == 0)
	}
}

func (t *table) writeRow(w io.Writer, row []cell, header bool) {
	var b strings.Builder
	for i, cl := range row {
		pad := strings.Repeat(" ", t.widths[i]-len([]rune(cl.text)))
		text := cl.text
		if t.color && cl.color != "" {
			text = cl.color + text + reset
		} else if t.color && header {
			text = bold + text + reset
		}
		if i > 0 {
			b.WriteString("  ")
		}
		if cl.right {
			b.WriteString(pad + text)
		} else {
			b.WriteString(text + pad)
		}
	}
	fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
}

// WriteTable writes the report for a human.
func (r *Report) WriteTable(out io.Writer, o TableOptions) error {
	w := bufio.NewWriter(out) // a million stale workers are a million lines
	paint := func(text, color string) string {
		if o.Color {
			return color + text + reset
		}
		return text
	}
	fmt.Fprintf(w, "Pacemaker status at %s; workers are stale after %s without a heartbeat.\n\n",
		r.Now.Format("2006-01-02 15:04:05 MST"), age(int64(r.StaleSecs)))

	anyFailed := false
	for _, s := range r.Servers {
		anyFailed = anyFailed || !s.OK()
	}
	servers := &table{color: o.Color}
	header := []cell{txt("SERVER"), txt("STATE"), txt("AUTH"), txt("KEYS"), txt("BYTES"), txt("TOPOLOGIES"), txt("WORKERS")}
	if anyFailed {
		header = append(header, txt("ERROR"))
	}
	servers.add(header...)
	for _, s := range r.Servers {
		state, auth := colored("up", green), colored("ok", green)
		if !s.Reachable {
			state, auth = colored("down", red), txt("-")
		} else if !s.AuthOK {
			auth = colored("refused", red)
		}
		if s.OK() {
			servers.add(txt(s.Addr), state, auth, num(int64(s.Keys)), right(units.Bytes(s.Bytes)),
				num(int64(s.Topologies)), num(int64(s.Workers)))
			continue
		}
		if s.Reachable && s.AuthOK {
			state = colored("failed", red)
		}
		servers.add(txt(s.Addr), state, auth, right("-"), right("-"), right("-"), right("-"), colored(s.Error, red))
	}
	servers.write(w)
	fmt.Fprintln(w)

	if len(r.Topologies) == 0 {
		fmt.Fprintf(w, "No worker heartbeats under %s on any readable server.\n\n", WorkerbeatsRoot)
	} else {
		topos := &table{color: o.Color}
		topos.add(txt("TOPOLOGY"), txt("WORKERS"), txt("STALE"), txt("PARTIAL"), txt("NEWEST"), txt("OLDEST"))
		for _, t := range r.Topologies {
			stale := num(int64(t.Stale))
			if t.Stale > 0 {
				stale.color = red
			}
			partial := num(int64(t.Partial))
			if t.Partial > 0 {
				partial.color = yellow
			}
			newest, oldest := ageRange(t.Workers)
			topos.add(txt(t.ID), num(int64(len(t.Workers))), stale, partial,
				right(newest), right(oldest))
		}
		topos.write(w)
		fmt.Fprintln(w)
	}

	if r.Summary.Stale > 0 {
		fmt.Fprintln(w, paint(fmt.Sprintf("Stale workers (newest heartbeat across servers older than %s: Nimbus counts them dead):",
			age(int64(r.StaleSecs))), red))
		r.workerTable(w, o, func(wk Worker) bool { return wk.Stale })
		fmt.Fprintln(w)
	}
	if o.All && r.Summary.Workers > 0 {
		fmt.Fprintln(w, "All workers (a worker writes to one server; PARTIAL only says where its heartbeat lives):")
		r.workerTable(w, o, func(Worker) bool { return true })
		fmt.Fprintln(w)
	}

	line := fmt.Sprintf("%d server(s), %d failed; %d topologies, %d workers, %d stale, %d on some servers only.",
		r.Summary.Servers, r.Summary.Failed, r.Summary.Topologies, r.Summary.Workers, r.Summary.Stale, r.Summary.PartialOnly)
	switch {
	case r.Summary.Failed > 0:
		line = paint(line, red)
	case r.Summary.Stale > 0:
		line = paint(line, yellow)
	default:
		line = paint(line, green)
	}
	fmt.Fprintln(w, line)
	return w.Flush()
}

// workerTable lists the workers keep selects. It may be a million rows, so
// they are made twice (to size the columns, then to print) instead of kept.
func (r *Report) workerTable(w io.Writer, o TableOptions, keep func(Worker) bool) {
	t := &table{color: o.Color}
	header := []cell{txt("TOPOLOGY"), txt("WORKER"), txt("AGE"), txt("LAST HEARTBEAT"), txt("UPTIME"), txt("EXECUTORS"), txt("BYTES"), txt("ON"), txt("MISSING ON")}
	t.widen(header)
	each := func(row func(topo string, wk Worker, cells []cell)) {
		for _, topo := range r.Topologies {
			for _, wk := range topo.Workers {
				if keep(wk) {
					row(topo.ID, wk, workerRow(topo.ID, wk))
				}
			}
		}
	}
	each(func(_ string, _ Worker, cells []cell) { t.widen(cells) })
	t.writeRow(w, header, true)
	var notes []string
	each(func(topo string, wk Worker, cells []cell) {
		t.writeRow(w, cells, false)
		if wk.NewestOn == "" {
			notes = append(notes, fmt.Sprintf("  %s/%s: %s", topo, wk.Name, wk.Error))
		}
	})
	if len(notes) > 0 {
		fmt.Fprintln(w, "Undecodable heartbeats:")
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
}

func workerRow(topo string, wk Worker) []cell {
	missing := strings.Join(wk.MissingOn, ",")
	if missing == "" {
		missing = "-"
	}
	on := txt(strings.Join(wk.On, ","))
	if wk.NewestOn == "" {
		// No copy decodes: nothing to show but where it is.
		return []cell{txt(topo), txt(wk.Name), {text: "?", color: red, right: true}, colored("undecodable (see below)", red),
			right("-"), right("-"), right("-"), on, txt(missing)}
	}
	ageCell := right(age(wk.AgeSecs))
	if wk.Stale {
		ageCell.color = red
	}
	return []cell{txt(topo), txt(wk.Name), ageCell, txt(time.Unix(wk.TimeSecs, 0).UTC().Format("2006-01-02 15:04:05")),
		right(age(int64(wk.UptimeSecs))), num(int64(wk.Executors)), right(units.Bytes(int64(wk.Bytes))), on, txt(missing)}
}

// ageRange is the youngest and oldest newest-heartbeat age among workers
// that decoded.
func ageRange(ws []Worker) (newest, oldest string) {
	first := true
	var lo, hi int64
	for _, w := range ws {
		if w.NewestOn == "" {
			continue
		}
		if first || w.AgeSecs < lo {
			lo = w.AgeSecs
		}
		if first || w.AgeSecs > hi {
			hi = w.AgeSecs
		}
		first = false
	}
	if first {
		return "-", "-"
	}
	return age(lo), age(hi)
}

// age renders seconds compactly: 45s, 3m05s, 2h07m, 3d04h.
func age(secs int64) string {
	sign := ""
	if secs < 0 {
		sign, secs = "-", -secs
	}
	switch {
	case secs < 60:
		return fmt.Sprintf("%s%ds", sign, secs)
	case secs < 3600:
		return fmt.Sprintf("%s%dm%02ds", sign, secs/60, secs%60)
	case secs < 86400:
		return fmt.Sprintf("%s%dh%02dm", sign, secs/3600, secs%3600/60)
	}
	return fmt.Sprintf("%s%dd%02dh", sign, secs/86400, secs%86400/3600)
}

func right(text string) cell { return cell{text: text, right: true} }
