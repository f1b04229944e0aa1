// Package config loads the daemon's settings: embedded defaults (Storm's),
// then /etc/pacemaker/pacemaker.yaml, then PACEMAKER_* environment
// variables, then flags. Keys are Storm's own dotted names, so lines from a
// storm.yaml can be pasted unchanged.
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

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
)

// DefaultPath is read when present and no --config is given.
const DefaultPath = "/etc/pacemaker/pacemaker.yaml"

// Config is the validated, effective configuration.
type Config struct {
	Port            int
	Listen          string
	AuthMethod      auth.Method
	AuthWrites      bool
	MaxThreads      int
	MaxFrame        int
	JAASPath        string
	NimbusUser      string
	KerberosUsers   []string
	LogLevel        slog.Level
	MetricsListen   string
	HeartbeatTTL    time.Duration
	MaxConns        int
	MaxConnsPerPeer int
	MaxKeys         int64
	MaxStoredBytes  int64
	// MaxBufferedBytes bounds the bytes held for I/O across all
	// connections beyond each connection's fixed buffers: large frames
	// being received and answers not yet written.
	MaxBufferedBytes int64
	// MaxKeyBytes is the longest key (heartbeat path) accepted.
	MaxKeyBytes      int
	FrameTimeout     time.Duration
	HandshakeTimeout time.Duration

	// KERBEROS hardening: pacemaker.kerberos.realms,
	// pacemaker.kerberos.replay.cache.max, pacemaker.kerberos.handshakes.per.peer.
	KerberosRealms         []string
	KerberosReplayCacheMax int
	KerberosHandshakeRate  int

	// File is the config file that was read ("" when none).
	File string
	// Source names where each key's value came from, for --print-config.
	Source map[string]string
	// Notes are things to log once logging is set up (ignored keys, ...).
	Notes []Note

	values map[string]any // converted value per key, for Print
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
)

// keyDef describes one known key.
type keyDef struct {
	key  string
	kind kind
	def  any
	min  int64 // for ints
	max  int64
	doc  string
	set  func(c *Config, v any)
}

// Keys lists every key the daemon reads, with Storm's defaults where Storm
// has one. The order is the order of --print-config and of the sample file.
var Keys = []keyDef{
	{"pacemaker.port", kInt, int64(6699), 1, 65535, "TCP port to serve on (ignored when systemd passes the socket)",
		func(c *Config, v any) { c.Port = int(v.(int64)) }},
	{"pacemaker.listen", kString, "", 0, 0, "address to bind, e.g. 127.0.0.1 or [::1]:6699; empty = all addresses",
		func(c *Config, v any) { c.Listen = v.(string) }},
	{"pacemaker.auth.method", kMethod, "NONE", 0, 0, "NONE, DIGEST or KERBEROS: how readers (Nimbus) authenticate",
		func(c *Config, v any) { c.AuthMethod = v.(auth.Method) }},
	{"pacemaker.auth.writes", kBool, false, 0, 0, "require authentication for writes too (Storm's workers do not authenticate)",
		func(c *Config, v any) { c.AuthWrites = v.(bool) }},
	{"pacemaker.max.threads", kInt, int64(50), 1, 1 << 16, "most OS threads running request code at once (GOMAXPROCS cap)",
		func(c *Config, v any) { c.MaxThreads = int(v.(int64)) }},
	{"pacemaker.thrift.message.size.max", kInt, int64(10485760), 64, math.MaxInt32, "largest frame accepted, bytes",
		func(c *Config, v any) { c.MaxFrame = int(v.(int64)) }},
	{"java.security.auth.login.config", kString, "/etc/pacemaker/jaas.conf", 0, 0, "JAAS file with PacemakerDigest / PacemakerServer",
		func(c *Config, v any) { c.JAASPath = v.(string) }},
	{"nimbus.daemon.user", kString, "", 0, 0, "KERBEROS: the short principal name allowed to read",
		func(c *Config, v any) { c.NimbusUser = v.(string) }},
	{"pacemaker.kerberos.users", kStrings, []string{}, 0, 0, "KERBEROS: more short names allowed to read",
		func(c *Config, v any) { c.KerberosUsers = v.([]string) }},
	{"pacemaker.kerberos.realms", kStrings, []string{}, 0, 0, "KERBEROS: realms besides the service's own whose clients are accepted and that tickets may transit",
		func(c *Config, v any) { c.KerberosRealms = v.([]string) }},
	{"pacemaker.kerberos.replay.cache.max", kInt, int64(100000), 1, 1 << 26, "KERBEROS: most authenticators remembered against replay; when full, handshakes are refused",
		func(c *Config, v any) { c.KerberosReplayCacheMax = int(v.(int64)) }},
	{"pacemaker.kerberos.handshakes.per.peer", kInt, int64(50), 0, 1 << 20, "KERBEROS: most handshakes (ticket decryptions) a second from one address, bursts of twice that; 0 = no limit",
		func(c *Config, v any) { c.KerberosHandshakeRate = int(v.(int64)) }},
	{"pacemaker.log.level", kLevel, "info", 0, 0, "debug, info, warn or error",
		func(c *Config, v any) { c.LogLevel = v.(slog.Level) }},
	{"pacemaker.metrics.listen", kString, "", 0, 0, "address for /metrics, /healthz, /readyz; empty = off",
		func(c *Config, v any) { c.MetricsListen = v.(string) }},
	{"pacemaker.heartbeat.ttl.secs", kInt, int64(0), 0, 365 * 24 * 3600, "drop heartbeats not rewritten for this long; 0 = keep forever",
		func(c *Config, v any) { c.HeartbeatTTL = time.Duration(v.(int64)) * time.Second }},
	{"pacemaker.max.connections", kInt, int64(25000), 1, 1 << 24, "most open client connections",
		func(c *Config, v any) { c.MaxConns = int(v.(int64)) }},
	{"pacemaker.max.connections.per.peer", kInt, int64(1024), 1, 1 << 24, "most open connections from one address",
		func(c *Config, v any) { c.MaxConnsPerPeer = int(v.(int64)) }},
	{"pacemaker.max.keys", kInt, int64(1000000), 1, math.MaxInt64, "most stored heartbeats",
		func(c *Config, v any) { c.MaxKeys = v.(int64) }},
	{"pacemaker.max.stored.bytes", kInt, int64(4 << 30), 1, math.MaxInt64, "most bytes the stored heartbeats may take: keys, values and a fixed cost per key",
		func(c *Config, v any) { c.MaxStoredBytes = v.(int64) }},
	{"pacemaker.max.buffered.bytes", kInt, int64(256 << 20), 1 << 20, math.MaxInt64, "most bytes held for I/O across all connections (large frames arriving, answers not yet written); past it reading pauses",
		func(c *Config, v any) { c.MaxBufferedBytes = v.(int64) }},
	{"pacemaker.max.key.bytes", kInt, int64(4096), 16, math.MaxInt32, "longest heartbeat path accepted, bytes (Storm's are about 100)",
		func(c *Config, v any) { c.MaxKeyBytes = int(v.(int64)) }},
	{"pacemaker.frame.timeout.secs", kInt, int64(30), 1, 3600, "a frame that has started must arrive whole within this",
		func(c *Config, v any) { c.FrameTimeout = time.Duration(v.(int64)) * time.Second }},
	{"pacemaker.auth.handshake.timeout.secs", kInt, int64(30), 1, 3600, "a SASL handshake must finish within this",
		func(c *Config, v any) { c.HandshakeTimeout = time.Duration(v.(int64)) * time.Second }},
}

// EnvName is the environment variable for key: PACEMAKER_ + the key's part
// after "pacemaker." (or the whole key) in upper case with '.' → '_'.
func EnvName(key string) string {
	return "PACEMAKER_" + strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(key, "pacemaker."), ".", "_"))
}

// Overrides are the flag values given on the command line, keyed by config key.
type Overrides map[string]string

// Load builds the effective config. path is --config ("" = the default file
// if present); env is os.Environ()-style.
func Load(path string, env []string, flags Overrides) (*Config, error) {
	layers := []layer{{name: "defaults", k: koanf.New("\x00")}}
	def := map[string]any{}
	for _, d := range Keys {
		def[d.key] = d.def
	}
	if err := layers[0].k.Load(confmap.Provider(def, ""), nil); err != nil {
		return nil, err
	}

	c := &Config{Source: map[string]string{}, values: map[string]any{}}
	explicit := path != ""
	if !explicit {
		if _, err := os.Stat(DefaultPath); err == nil {
			path = DefaultPath
		}
	}
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			if explicit {
				return nil, &Error{Source: path, Reason: fmt.Sprintf("cannot read config file: %v", unwrapPath(err))}
			}
		}
		fk := koanf.New("\x00")
		if err := fk.Load(file.Provider(path), yaml.Parser()); err != nil {
			return nil, &Error{Source: path, Reason: fmt.Sprintf("cannot parse YAML: %v", err)}
		}
		flat, err := flatten(fk.Raw(), path)
		if err != nil {
			return nil, err
		}
		k := koanf.New("\x00")
		_ = k.Load(confmap.Provider(flat, ""), nil)
		layers = append(layers, layer{name: path, k: k})
		c.File = path
	}

	envMap := map[string]any{}
	envSrc := map[string]string{}
	byEnv := map[string]string{}
	for _, d := range Keys {
		byEnv[EnvName(d.key)] = d.key
	}
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, "PACEMAKER_") {
			continue
		}
		key, known := byEnv[name]
		if !known {
			c.Notes = append(c.Notes, Note{slog.LevelWarn, "unknown PACEMAKER_ environment variable ignored", name})
			continue
		}
		envMap[key] = val
		envSrc[key] = "environment " + name
	}
	if len(envMap) > 0 {
		k := koanf.New("\x00")
		_ = k.Load(confmap.Provider(envMap, ""), nil)
		layers = append(layers, layer{name: "environment", k: k, src: envSrc})
	}
	if len(flags) > 0 {
		fm := map[string]any{}
		src := map[string]string{}
		for key, v := range flags {
			fm[key] = v
			src[key] = "flag for " + key
		}
		k := koanf.New("\x00")
		_ = k.Load(confmap.Provider(fm, ""), nil)
		layers = append(layers, layer{name: "flags", k: k, src: src})
	}

	known := map[string]bool{}
	for _, d := range Keys {
		known[d.key] = true
	}
	for _, l := range layers[1:] {
		for _, key := range l.k.Keys() {
			if known[key] {
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
	}

	for _, d := range Keys {
		var raw any
		src := "defaults"
		for _, l := range layers {
			if l.k.Exists(d.key) {
				raw = l.k.Get(d.key)
				src = l.name
				if s, ok := l.src[d.key]; ok {
					src = s
				}
			}
		}
		v, err := convert(d, raw)
		if err != nil {
			return nil, &Error{Key: d.key, Value: fmt.Sprint(raw), Source: src, Reason: err.Error()}
		}
		d.set(c, v)
		c.values[d.key] = v
		c.Source[d.key] = src
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

type layer struct {
	name string
	k    *koanf.Koanf
	src  map[string]string // per-key source names, when finer than name
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

// flatten turns nested YAML maps into dotted keys, so both
// "pacemaker.port: 1" and "pacemaker: {port: 1}" work.
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
	case kInt:
		n, err := toInt(raw)
		if err != nil {
			return nil, err
		}
		if n < d.min || n > d.max {
			return nil, fmt.Errorf("must be between %d and %d", d.min, d.max)
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
