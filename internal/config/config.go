// Package config loads the daemon's settings: embedded defaults (Storm's),
// then /etc/pacemaker/pacemaker.yaml, then PACEMAKER_* environment
// variables, then flags, layered with koanf's confmap, file and env
// providers. Keys are Storm's own dotted names, so lines from a storm.yaml
// can be pasted unchanged. The key table (Keys) holds every key's default,
// range and doc.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	envprovider "github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
)

// DefaultPath is read when present and no --config is given.
const DefaultPath = "/etc/pacemaker/pacemaker.yaml"

// Config is the validated, effective configuration.
type Config struct {
	Settings

	// File is the config file that was read ("" when none).
	File string
	// Source names where each key's value came from, for --print-config.
	Source map[string]string
	// Notes are things to log once logging is set up (ignored keys, ...).
	Notes []Note

	values map[string]any // converted value per key, for Print
}

// Settings are the values of the keys. Load unmarshals the checked values
// into it by the keys in the tags; every key of Keys has exactly one field
// here (Load fails otherwise).
type Settings struct {
	Port          int         `koanf:"pacemaker.port"`
	Listen        string      `koanf:"pacemaker.listen"`
	AuthMethod    auth.Method `koanf:"pacemaker.auth.method"`
	AuthWrites    bool        `koanf:"pacemaker.auth.writes"`
	MaxThreads    int         `koanf:"pacemaker.max.threads"`
	MaxFrame      int         `koanf:"pacemaker.thrift.message.size.max"`
	JAASPath      string      `koanf:"java.security.auth.login.config"`
	NimbusUser    string      `koanf:"nimbus.daemon.user"`
	KerberosUsers []string    `koanf:"pacemaker.kerberos.users"`
	LogLevel      slog.Level  `koanf:"pacemaker.log.level"`
	MetricsListen string      `koanf:"pacemaker.metrics.listen"`
	// HeartbeatPeriod is task.heartbeat.frequency.secs: the freshness
	// metrics count worker keys older than 1 and 3 periods.
	HeartbeatPeriod time.Duration `koanf:"task.heartbeat.frequency.secs"`
	// MaxTopologies is pacemaker.metrics.topologies.max: the topologies
	// with freshness series of their own.
	MaxTopologies int `koanf:"pacemaker.metrics.topologies.max"`
	// HeartbeatTTL is pacemaker.heartbeat.ttl.secs; 0 keeps heartbeats.
	HeartbeatTTL    time.Duration `koanf:"pacemaker.heartbeat.ttl.secs"`
	MaxConns        int           `koanf:"pacemaker.max.connections"`
	MaxConnsPerPeer int           `koanf:"pacemaker.max.connections.per.peer"`
	MaxKeys         int64         `koanf:"pacemaker.max.keys"`
	MaxStoredBytes  int64         `koanf:"pacemaker.max.stored.bytes"`
	// MaxBufferedBytes bounds the bytes held for I/O across all
	// connections beyond each connection's fixed buffers: large frames
	// being received and answers not yet written.
	MaxBufferedBytes int64 `koanf:"pacemaker.max.buffered.bytes"`
	// MaxKeyBytes is the longest key (heartbeat path) accepted.
	MaxKeyBytes      int           `koanf:"pacemaker.max.key.bytes"`
	FrameTimeout     time.Duration `koanf:"pacemaker.frame.timeout.secs"`
	HandshakeTimeout time.Duration `koanf:"pacemaker.auth.handshake.timeout.secs"`

	// KERBEROS hardening: pacemaker.kerberos.realms,
	// pacemaker.kerberos.replay.cache.max, pacemaker.kerberos.handshakes.per.peer.
	KerberosRealms         []string `koanf:"pacemaker.kerberos.realms"`
	KerberosReplayCacheMax int      `koanf:"pacemaker.kerberos.replay.cache.max"`
	KerberosHandshakeRate  int      `koanf:"pacemaker.kerberos.handshakes.per.peer"`
}

// Note is a deferred log line about the config.
type Note struct {
	Level slog.Level
	Msg   string
	Key   string
}

// Error is a config problem; the daemon exits 2 on it.
type Error struct {
	Key, Value, Source, Reason string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s: %s", e.Source, e.Reason)
	}
	return fmt.Sprintf("%s: %s: invalid value %q: %s", e.Source, e.Key, e.Value, e.Reason)
}

type kind int

const (
	kInt kind = iota
	kBool
	kString
	kStrings
	kMethod
	kLevel
	kSeconds // a whole number of seconds, as a time.Duration
)

// keyDef describes one known key.
type keyDef struct {
	key  string
	kind kind
	def  any
	min  int64 // for ints and seconds
	max  int64
	doc  string
}

// Keys lists every key the daemon reads, with Storm's defaults where Storm
// has one: the one source of keys, defaults, ranges and their docs (tests
// keep the README, the man page, the sample file and the Ansible role in
// step with it). Each key has its field in Config. The order is the order
// of --print-config and of the sample file.
var Keys = []keyDef{
	{"pacemaker.port", kInt, int64(6699), 1, 65535, "TCP port to serve on (ignored when systemd passes the socket)"},
	{"pacemaker.listen", kString, "", 0, 0, "address to bind, e.g. 127.0.0.1 or [::1]:6699; empty = all addresses"},
	{"pacemaker.auth.method", kMethod, "NONE", 0, 0, "NONE, DIGEST or KERBEROS: how readers (Nimbus) authenticate"},
	{"pacemaker.auth.writes", kBool, false, 0, 0, "require authentication for writes too (Storm's workers do not authenticate)"},
	{"pacemaker.max.threads", kInt, int64(50), 1, 1 << 16, "most OS threads running request code at once (GOMAXPROCS cap)"},
	{"pacemaker.thrift.message.size.max", kInt, int64(10485760), 64, math.MaxInt32, "largest frame accepted, bytes"},
	{"java.security.auth.login.config", kString, "/etc/pacemaker/jaas.conf", 0, 0, "JAAS file with PacemakerDigest / PacemakerServer"},
	{"nimbus.daemon.user", kString, "", 0, 0, "KERBEROS: the short principal name allowed to read"},
	{"pacemaker.kerberos.users", kStrings, []string{}, 0, 0, "KERBEROS: more short names allowed to read"},
	{"pacemaker.kerberos.realms", kStrings, []string{}, 0, 0, "KERBEROS: realms besides the service's own whose clients are accepted and that tickets may transit"},
	{"pacemaker.kerberos.replay.cache.max", kInt, int64(100000), 1, 1 << 26, "KERBEROS: most authenticators remembered against replay; when full, handshakes are refused"},
	{"pacemaker.kerberos.handshakes.per.peer", kInt, int64(50), 0, 1 << 20, "KERBEROS: most handshakes (ticket decryptions) a second from one address, bursts of twice that; 0 = no limit"},
	{"pacemaker.log.level", kLevel, "info", 0, 0, "debug, info, warn or error"},
	{"pacemaker.metrics.listen", kString, "", 0, 0, "address for /metrics, /healthz, /readyz; empty = off"},
	{"task.heartbeat.frequency.secs", kSeconds, int64(3), 1, 3600, "how often Storm's workers rewrite their heartbeat; metrics count keys older than 1× and 3× this"},
	{"pacemaker.metrics.topologies.max", kInt, int64(100), 0, 10000, "topologies with freshness series of their own; the rest are summed as topology=\"other\""},
	{"pacemaker.heartbeat.ttl.secs", kSeconds, int64(0), 0, 365 * 24 * 3600, "drop heartbeats not rewritten for this long; 0 = keep forever"},
	{"pacemaker.max.connections", kInt, int64(25000), 1, 1 << 24, "most open client connections"},
	{"pacemaker.max.connections.per.peer", kInt, int64(1024), 1, 1 << 24, "most open connections from one address"},
	{"pacemaker.max.keys", kInt, int64(1000000), 1, math.MaxInt64, "most stored heartbeats"},
	{"pacemaker.max.stored.bytes", kInt, int64(4 << 30), 1, math.MaxInt64, "most bytes the stored heartbeats may take: keys, values and a fixed cost per key"},
	{"pacemaker.max.buffered.bytes", kInt, int64(256 << 20), 1 << 20, math.MaxInt64, "most bytes held for I/O across all connections (large frames arriving, answers not yet written); past it reading pauses"},
	{"pacemaker.max.key.bytes", kInt, int64(4096), 16, math.MaxInt32, "longest heartbeat path accepted, bytes (Storm's are about 100)"},
	{"pacemaker.frame.timeout.secs", kSeconds, int64(30), 1, 3600, "a frame that has started must arrive whole within this"},
	{"pacemaker.auth.handshake.timeout.secs", kSeconds, int64(30), 1, 3600, "a SASL handshake must finish within this"},
}

// EnvName is the environment variable for key: PACEMAKER_ + the key's part
// after "pacemaker." (or the whole key) in upper case with '.' → '_'.
func EnvName(key string) string {
	return "PACEMAKER_" + strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(key, "pacemaker."), ".", "_"))
}

// Overrides are the flag values given on the command line, keyed by config key.
type Overrides map[string]string

// keyDelim separates path elements inside koanf. Storm's dotted keys are not
// a tree (pacemaker.max.connections is a value and also the start of
// pacemaker.max.connections.per.peer), so each whole key is one element, and
// the delimiter is a byte no key contains. dottedYAML turns nested YAML
// into dotted keys first.
const keyDelim = "\x00"

// Load builds the effective config: koanf layers defaults (the key table),
// the file, PACEMAKER_* variables and flags, each overriding the one
// before; every key is then checked against the table and the result
// unmarshalled into Config. path is --config ("" = the default file if
// present); env is os.Environ()-style. Bad input is an *Error naming the
// key, the value and where it came from.
func Load(path string, env []string, flags Overrides) (*Config, error) {
	l := &loader{k: koanf.New(keyDelim), source: map[string]string{}}
	c := &Config{Source: map[string]string{}, values: map[string]any{}}

	def := map[string]any{}
	for _, d := range Keys {
		def[d.key] = d.def
	}
	if _, err := l.layer(confmap.Provider(def, ""), nil, func(string) string { return "defaults" }); err != nil {
		return nil, fmt.Errorf("load the defaults: %w", err)
	}

	explicit := path != ""
	if !explicit {
		if _, err := os.Stat(DefaultPath); err == nil {
			path = DefaultPath
		}
	}
	var fileKeys []string
	if path != "" {
		if _, err := os.Stat(path); err != nil && explicit {
			return nil, &Error{Source: path, Reason: fmt.Sprintf("cannot read config file: %v", unwrapPath(err))}
		}
		keys, err := l.layer(file.Provider(path), dottedYAML{path}, func(string) string { return path })
		if err != nil {
			var ce *Error
			var ye yamlError
			switch {
			case errors.As(err, &ce):
				return nil, ce
			case errors.As(err, &ye):
				return nil, &Error{Source: path, Reason: fmt.Sprintf("cannot parse YAML: %v", ye.err)}
			}
			return nil, &Error{Source: path, Reason: fmt.Sprintf("cannot read config file: %v", unwrapPath(err))}
		}
		fileKeys = keys
		c.File = path
	}

	byEnv := map[string]string{}
	for _, d := range Keys {
		byEnv[EnvName(d.key)] = d.key
	}
	vars := envprovider.Provider("", envprovider.Opt{
		Prefix:      "PACEMAKER_",
		EnvironFunc: func() []string { return env },
		TransformFunc: func(name, value string) (string, any) {
			key, known := byEnv[name]
			if !known {
				c.Notes = append(c.Notes, Note{slog.LevelWarn, "unknown PACEMAKER_ environment variable ignored", name})
			}
			return key, value // "" drops it
		},
	})
	if _, err := l.layer(vars, nil, func(key string) string { return "environment " + EnvName(key) }); err != nil {
		return nil, fmt.Errorf("load the environment: %w", err)
	}

	fm := map[string]any{}
	for key, v := range flags {
		fm[key] = v
	}
	if _, err := l.layer(confmap.Provider(fm, ""), nil, func(key string) string { return "flag for " + key }); err != nil {
		return nil, fmt.Errorf("load the flags: %w", err)
	}

	// Only the file brings keys the daemon does not read: the environment
	// and flags are looked up by known key.
	for _, key := range fileKeys {
		if isKey(key) {
			continue
		}
		switch {
		case key == "pacemaker.childopts":
			c.Notes = append(c.Notes, Note{slog.LevelInfo, "pacemaker.childopts holds JVM options; ignored", key})
		case key == "pacemaker.io.read.loop":
			c.Notes = append(c.Notes, Note{slog.LevelWarn, "pacemaker.io.read.loop was removed (the daemon has one read loop); ignored", key})
		case strings.HasPrefix(key, "pacemaker.") && !isStormClientKey(key):
			c.Notes = append(c.Notes, Note{slog.LevelWarn, "unknown pacemaker key ignored (a typo?)", key})
		default:
			c.Notes = append(c.Notes, Note{slog.LevelDebug, "Storm key not used by the daemon; ignored", key})
		}
	}

	checked := map[string]any{}
	for _, d := range Keys {
		raw, src := l.k.Get(d.key), l.source[d.key]
		v, err := convert(d, raw)
		if err != nil {
			return nil, &Error{Key: d.key, Value: fmt.Sprint(raw), Source: src, Reason: err.Error()}
		}
		checked[d.key] = v
		c.values[d.key] = v
		c.Source[d.key] = src
	}
	effective := koanf.New(keyDelim)
	if err := effective.Load(confmap.Provider(checked, ""), nil); err != nil {
		return nil, fmt.Errorf("load the checked values: %w", err)
	}
	// The values have their final types already; any mismatch between Keys
	// and Settings' fields is a bug, caught here rather than left zero.
	err := effective.UnmarshalWithConf("", &c.Settings, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		ErrorUnused: true,
		ErrorUnset:  true,
	}})
	if err != nil {
		return nil, fmt.Errorf("internal: the key table and Settings disagree: %w", err)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// loader merges koanf layers and remembers which layer set each key last.
type loader struct {
	k      *koanf.Koanf
	source map[string]string
}

// layer loads one provider on top of what is loaded, naming each of its
// keys' source with sourceOf; it returns the keys the layer has.
func (l *loader) layer(p koanf.Provider, pa koanf.Parser, sourceOf func(key string) string) ([]string, error) {
	lk := koanf.New(keyDelim)
	if err := lk.Load(p, pa); err != nil {
		return nil, err
	}
	keys := lk.Keys()
	for _, key := range keys {
		l.source[key] = sourceOf(key)
	}
	return keys, l.k.Merge(lk)
}

func isKey(key string) bool {
	for _, d := range Keys {
		if d.key == key {
			return true
		}
	}
	return false
}

// dottedYAML is koanf's YAML parser with nested maps turned into dotted
// keys, so both "pacemaker.port: 1" and "pacemaker: {port: 1}" work.
type dottedYAML struct{ path string }

// yamlError is a YAML syntax error, told apart from a read error.
type yamlError struct{ err error }

func (e yamlError) Error() string { return e.err.Error() }

func (p dottedYAML) Unmarshal(b []byte) (map[string]any, error) {
	m, err := yaml.Parser().Unmarshal(b)
	if err != nil {
		return nil, yamlError{err}
	}
	return flatten(m, p.path)
}

func (dottedYAML) Marshal(map[string]any) ([]byte, error) {
	return nil, errors.New("dottedYAML only reads")
}

// isStormClientKey reports the pacemaker.* keys that only Storm's client and
// Java daemon read, so a storm.yaml pasted whole draws no warnings.
func isStormClientKey(key string) bool {
	switch key {
	case "pacemaker.servers", "pacemaker.host", "pacemaker.client.max.threads",
		"pacemaker.base.threads", "pacemaker.thread.timeout":
		return true
	}
	return false
}

// flatten turns nested YAML maps into dotted keys, refusing a key given
// both ways (koanf would keep one of them at random).
func flatten(m map[string]any, src string) (map[string]any, error) {
	out := map[string]any{}
	var walk func(prefix string, m map[string]any) error
	walk = func(prefix string, m map[string]any) error {
		for k, v := range m {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			if sub, ok := v.(map[string]any); ok {
				if err := walk(key, sub); err != nil {
					return err
				}
				continue
			}
			if _, dup := out[key]; dup {
				return &Error{Source: src, Reason: fmt.Sprintf("key %s given twice (flat and nested)", key)}
			}
			out[key] = v
		}
		return nil
	}
	return out, walk("", m)
}

func convert(d keyDef, raw any) (any, error) {
	switch d.kind {
	case kInt, kSeconds:
		n, err := toInt(raw)
		if err != nil {
			return nil, err
		}
		if n < d.min || n > d.max {
			return nil, fmt.Errorf("must be between %d and %d", d.min, d.max)
		}
		if d.kind == kSeconds {
			return time.Duration(n) * time.Second, nil
		}
		return n, nil
	case kBool:
		switch v := raw.(type) {
		case bool:
			return v, nil
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return nil, errors.New("want true or false")
			}
			return b, nil
		}
		return nil, errors.New("want true or false")
	case kString:
		switch v := raw.(type) {
		case string:
			return v, nil
		case nil:
			return "", nil
		case int, int64, float64, bool:
			return fmt.Sprint(v), nil
		}
		return nil, errors.New("want a string")
	case kStrings:
		switch v := raw.(type) {
		case nil:
			return []string{}, nil
		case []string:
			return v, nil
		case []any:
			out := make([]string, 0, len(v))
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, errors.New("want a list of strings")
				}
				out = append(out, s)
			}
			return out, nil
		case string: // environment / flag: comma-separated
			out := []string{}
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s)
				}
			}
			return out, nil
		}
		return nil, errors.New("want a list of strings")
	case kMethod:
		s, ok := raw.(string)
		if !ok {
			return nil, errors.New("want NONE, DIGEST or KERBEROS")
		}
		return auth.ParseMethod(s)
	case kLevel:
		s, ok := raw.(string)
		if !ok {
			return nil, errors.New("want debug, info, warn or error")
		}
		return ParseLevel(s)
	}
	return nil, fmt.Errorf("internal: unknown kind for %s", d.key)
}

// ParseLevel accepts debug, info, warn(ing) and error.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, errors.New("want debug, info, warn or error")
}

func toInt(raw any) (int64, error) {
	switch v := raw.(type) {
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	case uint64:
		if v > math.MaxInt64 {
			return 0, errors.New("too large")
		}
		return int64(v), nil
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
			return 0, errors.New("want a whole number")
		}
		return int64(v), nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, errors.New("want a whole number")
		}
		return n, nil
	}
	return 0, errors.New("want a whole number")
}

func (c *Config) check() error {
	if c.MaxBufferedBytes < int64(c.MaxFrame) {
		return &Error{Key: "pacemaker.max.buffered.bytes", Value: fmt.Sprint(c.MaxBufferedBytes), Source: c.Source["pacemaker.max.buffered.bytes"],
			Reason: fmt.Sprintf("must hold at least one frame of pacemaker.thrift.message.size.max (%d)", c.MaxFrame)}
	}
	if c.AuthMethod == auth.Kerberos && c.NimbusUser == "" && len(c.KerberosUsers) == 0 {
		return &Error{Key: "nimbus.daemon.user", Source: c.Source["nimbus.daemon.user"],
			Reason: "KERBEROS needs nimbus.daemon.user (or pacemaker.kerberos.users): nobody could read"}
	}
	if c.AuthWrites && c.AuthMethod == auth.None {
		return &Error{Key: "pacemaker.auth.writes", Value: "true", Source: c.Source["pacemaker.auth.writes"],
			Reason: "needs pacemaker.auth.method DIGEST or KERBEROS"}
	}
	return nil
}

// Print writes the effective config as YAML, each line commented with its source.
func (c *Config) Print() string {
	var b strings.Builder
	if c.File != "" {
		fmt.Fprintf(&b, "# config file: %s\n", c.File)
	} else {
		b.WriteString("# config file: none (embedded defaults)\n")
	}
	for _, d := range Keys {
		fmt.Fprintf(&b, "%s: %s  # %s\n", d.key, formatValue(d, c.values[d.key]), c.Source[d.key])
	}
	return b.String()
}

func formatValue(d keyDef, v any) string {
	switch d.kind {
	case kString:
		return strconv.Quote(v.(string))
	case kStrings:
		q := []string{}
		for _, u := range v.([]string) {
			q = append(q, strconv.Quote(u))
		}
		return "[" + strings.Join(q, ", ") + "]"
	case kLevel:
		return strings.ToLower(v.(slog.Level).String())
	case kSeconds:
		return fmt.Sprint(int64(v.(time.Duration) / time.Second))
	}
	return fmt.Sprint(v)
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
