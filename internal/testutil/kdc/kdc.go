// Package kdc runs a real MIT Kerberos KDC (Debian's krb5-kdc) for tests:
// a throwaway realm in a temporary directory, listening on a free loopback
// port, with principals and keytabs made by kadmin.local and a krb5.conf
// that points clients (gokrb5, the JDK, MIT's kinit) at it and nowhere
// else.
//
// Typical use:
//
//	k := kdc.Start(t, kdc.Options{})
//	k.MustAddPrincipal(t, "pacemaker/localhost")
//	k.MustKeytab(t, keytabPath, "pacemaker/localhost")
//	os.Setenv("KRB5_CONFIG", k.Krb5Conf)
//
// Start skips the test, loudly, only when the MIT binaries are not
// installed; any other failure fails it.
package kdc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultRealm is the realm Start creates unless Options.Realm says otherwise.
const DefaultRealm = "PACEMAKER.TEST"

// Enctypes is what principals get keys for unless Options.Enctypes says
// otherwise: both AES-SHA1 and both AES-SHA2 types.
const Enctypes = "aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal " +
	"aes256-cts-hmac-sha384-192:normal aes128-cts-hmac-sha256-128:normal"

// Options configure a KDC.
type Options struct {
	// Realm name; "" means DefaultRealm.
	Realm string
	// Enctypes is the realm's supported_enctypes; "" means Enctypes.
	Enctypes string
	// ClockSkew is the KDC's tolerance (and the clockskew written to
	// Krb5Conf); 0 means Kerberos's usual 5 minutes.
	ClockSkew time.Duration
}

// KDC is one running krb5kdc.
type KDC struct {
	Realm string
	// Dir holds the database, kdc.conf, krb5.conf and logs.
	Dir string
	// Addr is the KDC's host:port on 127.0.0.1 (TCP and UDP).
	Addr string
	// Krb5Conf is a krb5.conf naming this KDC as the realm's only KDC,
	// for KRB5_CONFIG or java.security.krb5.conf.
	Krb5Conf string

	env  []string
	bin  binaries
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
}

type binaries struct{ krb5kdc, kdb5util, kadmin, kinit string }

// Available reports why a KDC cannot be run here (nil when it can).
func Available() error {
	_, err := findBinaries()
	return err
}

func findBinaries() (binaries, error) {
	var b binaries
	var missing []string
	look := func(name, pkg string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
			p := filepath.Join(dir, name)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p
			}
		}
		missing = append(missing, name+" (Debian package "+pkg+")")
		return ""
	}
	b.krb5kdc = look("krb5kdc", "krb5-kdc")
	b.kdb5util = look("kdb5_util", "krb5-kdc")
	b.kadmin = look("kadmin.local", "krb5-kdc")
	b.kinit = look("kinit", "krb5-user")
	if len(missing) > 0 {
		return b, fmt.Errorf("MIT Kerberos not installed: %s; run: apt-get install -y krb5-kdc krb5-admin-server krb5-user",
			strings.Join(missing, ", "))
	}
	return b, nil
}

// Start creates a realm in a temporary directory of t and starts its KDC;
// it is stopped when t ends. It skips t when MIT Kerberos is not
// installed and fails it on any other error.
func Start(t testing.TB, opts Options) *KDC {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("SKIPPING: %v", err)
	}
	k, err := New(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("start KDC: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("KDC log (%s):\n%s", k.Dir, k.Log())
		}
		k.Close()
	})
	return k
}

// New creates a realm in dir (which must exist) and starts its KDC. The
// caller must Close it.
func New(dir string, opts Options) (*KDC, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	if opts.Realm == "" {
		opts.Realm = DefaultRealm
	}
	if opts.Enctypes == "" {
		opts.Enctypes = Enctypes
	}
	if opts.ClockSkew == 0 {
		opts.ClockSkew = 5 * time.Minute
	}
	k := &KDC{Realm: opts.Realm, Dir: dir, bin: bin, Krb5Conf: filepath.Join(dir, "krb5.conf")}
	k.env = append(cleanEnv(),
		"KRB5_CONFIG="+k.Krb5Conf,
		"KRB5_KDC_PROFILE="+filepath.Join(dir, "kdc.conf"),
		"KRB5CCNAME=FILE:"+filepath.Join(dir, "ccache-default"),
		"KRB5_KTNAME=FILE:"+filepath.Join(dir, "keytab-default"),
		"KRB5RCACHEDIR="+dir,
	)

	// A port is free a moment ago is not a port free now: retry a few.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		k.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := k.writeConfigs(port, opts); err != nil {
			return nil, err
		}
		if attempt == 0 {
			if out, err := k.run(30*time.Second, nil, bin.kdb5util, "-r", k.Realm, "create", "-s", "-W", "-P", "master-"+strconv.Itoa(os.Getpid())); err != nil {
				return nil, fmt.Errorf("kdb5_util create: %v\n%s", err, out)
			}
		}
		lastErr = k.startDaemon()
		if lastErr == nil {
			return k, nil
		}
		if !strings.Contains(k.Log(), "in use") {
			break
		}
	}
	return nil, lastErr
}

func (k *KDC) writeConfigs(port int, opts Options) error {
	kdcConf := fmt.Sprintf(`[kdcdefaults]
	kdc_listen = 127.0.0.1:%[1]d
	kdc_tcp_listen = 127.0.0.1:%[1]d

[realms]
	%[2]s = {
		database_name = %[3]s/principal
		key_stash_file = %[3]s/stash
		acl_file = %[3]s/kadm5.acl
		max_life = 10h
		max_renewable_life = 1d
		master_key_type = aes256-cts-hmac-sha1-96
		supported_enctypes = %[4]s
	}

[logging]
	kdc = FILE:%[3]s/kdc.log
	admin_server = FILE:%[3]s/kadmin.log
	default = FILE:%[3]s/kdc.log
`, port, k.Realm, k.Dir, opts.Enctypes)
	if err := os.WriteFile(filepath.Join(k.Dir, "kdc.conf"), []byte(kdcConf), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(k.Dir, "kadm5.acl"), nil, 0o600); err != nil {
		return err
	}
	return k.WriteKrb5Conf(k.Krb5Conf, fmt.Sprintf("clockskew = %d", int(opts.ClockSkew.Seconds())))
}

// WriteKrb5Conf writes a krb5.conf for this realm to path, with extra
// [libdefaults] lines (e.g. "clockskew = 2", "permitted_enctypes = ...").
// Clients use TCP only, never DNS, and take host names as written.
func (k *KDC) WriteKrb5Conf(path string, libdefaults ...string) error {
	var extra strings.Builder
	for _, l := range libdefaults {
		extra.WriteString("\t" + l + "\n")
	}
	conf := fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_realm = false
	dns_lookup_kdc = false
	dns_canonicalize_hostname = false
	rdns = false
	udp_preference_limit = 1
	kdc_timesync = 0
	forwardable = false
%[3]s
[realms]
	%[1]s = {
		kdc = %[2]s
	}
`, k.Realm, k.Addr, extra.String())
	return os.WriteFile(path, []byte(conf), 0o644)
}

func (k *KDC) startDaemon() error {
	cmd := exec.Command(k.bin.krb5kdc, "-n", "-r", k.Realm)
	cmd.Dir = k.Dir
	cmd.Env = k.env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start krb5kdc: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("krb5kdc exited at start: %s\n%s\n%s", cmd.ProcessState, out.String(), k.Log())
		default:
		}
		if c, err := net.DialTimeout("tcp", k.Addr, time.Second); err == nil {
			c.Close()
			k.mu.Lock()
			k.cmd, k.done = cmd, done
			k.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("krb5kdc not accepting on %s after 10 s\n%s", k.Addr, k.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close stops the KDC.
func (k *KDC) Close() error {
	k.mu.Lock()
	cmd, done := k.cmd, k.done
	k.cmd = nil
	k.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	return nil
}

// Log is the KDC's log so far.
func (k *KDC) Log() string {
	b, _ := os.ReadFile(filepath.Join(k.Dir, "kdc.log"))
	return string(b)
}

// Env is the environment the KDC's own tools run with (KRB5_CONFIG and
// KRB5_KDC_PROFILE point into Dir), for running other MIT tools.
func (k *KDC) Env() []string { return append([]string(nil), k.env...) }

// Principal qualifies name with the realm.
func (k *KDC) Principal(name string) string {
	if strings.Contains(name, "@") {
		return name
	}
	return name + "@" + k.Realm
}

// Kadmin runs kadmin.local queries (one per line, e.g. "addprinc -randkey
// nimbus") in one process and returns their output.
func (k *KDC) Kadmin(queries ...string) (string, error) {
	in := strings.NewReader(strings.Join(queries, "\n") + "\n")
	out, err := k.run(30*time.Second, in, k.bin.kadmin, "-r", k.Realm)
	if err != nil {
		return out, fmt.Errorf("kadmin.local: %v\n%s", err, out)
	}
	// kadmin.local reports failed queries on stderr but exits 0.
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "while ") || strings.Contains(l, "usage:") || strings.Contains(l, "Unknown request") {
			return out, fmt.Errorf("kadmin.local: %s", strings.TrimSpace(l))
		}
	}
	return out, nil
}

// AddPrincipal creates a principal with a random key (use Kadmin for
// other addprinc options, e.g. a short -maxlife).
func (k *KDC) AddPrincipal(name string) error {
	_, err := k.Kadmin("addprinc -randkey " + k.Principal(name))
	return err
}

// Keytab exports the principals' current keys to the keytab at path
// (appending when it exists), without changing them.
func (k *KDC) Keytab(path string, principals ...string) error {
	qs := make([]string, 0, len(principals))
	for _, p := range principals {
		qs = append(qs, "ktadd -norandkey -k "+path+" "+k.Principal(p))
	}
	_, err := k.Kadmin(qs...)
	return err
}

// Kinit gets a TGT for principal from keytab into the credential cache
// file ccache; extra are more kinit flags (e.g. "-l", "10s").
func (k *KDC) Kinit(ccache, keytab, principal string, extra ...string) error {
	args := append([]string{"-k", "-t", keytab, "-c", "FILE:" + ccache}, extra...)
	args = append(args, k.Principal(principal))
	out, err := k.run(30*time.Second, nil, k.bin.kinit, args...)
	if err != nil {
		return fmt.Errorf("kinit %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// MustAddPrincipal is AddPrincipal that fails t on error.
func (k *KDC) MustAddPrincipal(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := k.AddPrincipal(n); err != nil {
			t.Fatal(err)
		}
	}
}

// MustKeytab is Keytab that fails t on error.
func (k *KDC) MustKeytab(t testing.TB, path string, principals ...string) {
	t.Helper()
	if err := k.Keytab(path, principals...); err != nil {
		t.Fatal(err)
	}
}

func (k *KDC) run(timeout time.Duration, stdin *strings.Reader, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = k.Dir
	cmd.Env = k.env
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return string(out), err
}

// freePort returns a port free on 127.0.0.1 for both TCP and UDP.
func freePort() (int, error) {
	for i := 0; i < 20; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ln.Close()
		if err == nil {
			pc.Close()
			return port, nil
		}
	}
	return 0, errors.New("no port free for both TCP and UDP on 127.0.0.1")
}

// cleanEnv is the process environment without Kerberos variables, so the
// host's /etc/krb5.conf and credential caches never leak in.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KRB5") {
			continue
		}
		env = append(env, kv)
	}
	return env
}
