package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/golden"
)

// TestLoadGolden pins what Load makes of many inputs — the effective config
// with each value's source, the notes, or the exact error — in
// testdata/load.golden, so a change in how the layers are read shows up as
// a diff.
func TestLoadGolden(t *testing.T) {
	cases := []struct {
		name  string
		file  string // "-" for no file at all
		env   []string
		flags Overrides
	}{
		{name: "no file", file: "-"},
		{name: "empty file", file: ""},
		{name: "flat keys", file: "pacemaker.port: 7000\npacemaker.auth.method: digest\npacemaker.max.connections: 10\npacemaker.max.connections.per.peer: 5\n"},
		{name: "nested keys", file: "pacemaker:\n  port: 7001\n  max:\n    keys: 5\n  heartbeat:\n    ttl:\n      secs: 90\nnimbus:\n  daemon:\n    user: nimbus\n"},
		{name: "flat and nested twice", file: "pacemaker.port: 7000\npacemaker:\n  port: 7001\n"},
		{name: "scalar where a map could be", file: "pacemaker: 5\n"},
		{name: "every type", file: "pacemaker.listen:\npacemaker.metrics.listen: 127\npacemaker.auth.writes: \"TRUE\"\npacemaker.auth.method: KERBEROS\n" +
			"pacemaker.kerberos.users: [ops, nimbus2]\npacemaker.max.keys: \"12\"\npacemaker.max.stored.bytes: 1e9\npacemaker.log.level: WARNING\n"},
		{name: "storm.yaml pasted", file: "storm.zookeeper.servers: [a, b]\npacemaker.servers: [h1]\npacemaker.host: h1\npacemaker.childopts: \"-Xmx1g\"\n" +
			"supervisor.scheduler.meta: {a: 1}\npacemaker.typo: 1\npacemaker.io.read.loop: callback\n"},
		{name: "env and flags", file: "pacemaker.port: 7000\npacemaker.log.level: debug\n",
			env: []string{"PACEMAKER_PORT=7002", "PACEMAKER_KERBEROS_USERS=a, b,,", "PACEMAKER_NIMBUS_DAEMON_USER=nimbus", "PACEMAKER_AUTH_METHOD=KERBEROS",
				"PACEMAKER_BOGUS=1", "PACEMAKER_AUTH_WRITES=true", "HOME=/root", "PACEMAKER_LISTEN="},
			flags: Overrides{"pacemaker.port": "7003", "pacemaker.log.level": "error"}},
		{name: "error: port out of range", file: "pacemaker.port: 70000\n"},
		{name: "error: port list", file: "pacemaker.port: [1]\n"},
		{name: "error: port fraction", file: "pacemaker.port: 1.5\n"},
		{name: "error: huge number", file: "pacemaker.max.keys: 18446744073709551615\n"},
		{name: "error: unknown method", file: "pacemaker.auth.method: SSL\n"},
		{name: "error: method a number", file: "pacemaker.auth.method: 1\n"},
		{name: "error: bool", file: "pacemaker.auth.writes: maybe\n"},
		{name: "error: string a list", file: "pacemaker.listen: [a]\n"},
		{name: "error: users not strings", file: "pacemaker.kerberos.users: [1, 2]\n"},
		{name: "error: users a map", file: "pacemaker.kerberos.users: {a: 1}\n"},
		{name: "error: level", file: "pacemaker.log.level: loud\n"},
		{name: "error: env", file: "", env: []string{"PACEMAKER_MAX_THREADS=0"}},
		{name: "error: flag", file: "", flags: Overrides{"pacemaker.port": "x"}},
		{name: "error: yaml", file: "pacemaker.port: [\n"},
		{name: "error: kerberos without readers", file: "pacemaker.auth.method: KERBEROS\n"},
		{name: "error: auth writes with NONE", file: "", env: []string{"PACEMAKER_AUTH_WRITES=1"}},
	}
	var out strings.Builder
	for _, tc := range cases {
		path, dir := "", "\x00" // replaced by <dir> in the output
		if tc.file != "-" {
			path = writeFile(t, tc.file)
			dir = filepath.Dir(path)
		}
		fmt.Fprintf(&out, "== %s\n", tc.name)
		c, err := Load(path, tc.env, tc.flags)
		if err != nil {
			fmt.Fprintf(&out, "error: %s\n", strings.ReplaceAll(err.Error(), dir, "<dir>"))
			continue
		}
		out.WriteString(strings.ReplaceAll(c.Print(), dir, "<dir>"))
		notes := []string{}
		for _, n := range c.Notes {
			notes = append(notes, fmt.Sprintf("note %s %s: %s", n.Level, n.Key, n.Msg))
		}
		slices.Sort(notes)
		for _, n := range notes {
			fmt.Fprintln(&out, n)
		}
	}
	golden.Check(t, "testdata/load.golden", []byte(out.String()))
}
