package kerberos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/kdc"
)

// The realm and its files, made once for the package: a KDC, the
// daemon's keytabs, client keytabs and JAAS files in Storm's format.
type fixture struct {
	k   *kdc.KDC
	dir string

	serviceKeytab []byte // pacemaker/localhost
	wrongKeytab   []byte // pacemaker/localhost, same kvno and types, other keys
	shortKeytab   []byte // pacemaker/shortlived, whose tickets live 3 s
	skewConf      string // krb5.conf with clockskew = 1

	// JAAS files with a PacemakerClient section per client principal.
	jaas map[string]string
}

var fx struct {
	once sync.Once
	f    *fixture
	err  error
	tmp  string
}

func TestMain(m *testing.M) {
	code := daemon.Main(m)
	if fx.f != nil {
		fx.f.k.Close()
	}
	if fx.tmp != "" {
		os.RemoveAll(fx.tmp)
	}
	os.Exit(code)
}

// realm returns the shared fixture, skipping loudly when MIT Kerberos is
// not installed.
func realm(t *testing.T) *fixture {
	t.Helper()
	if err := kdc.Available(); err != nil {
		t.Skipf("SKIPPING Kerberos tests: %v", err)
	}
	fx.once.Do(func() {
		fx.tmp, fx.err = os.MkdirTemp("", "pacemaker-kerberos-")
		if fx.err == nil {
			fx.f, fx.err = newFixture(fx.tmp)
		}
	})
	if fx.err != nil {
		t.Fatalf("Kerberos fixture: %v", fx.err)
	}
	return fx.f
}

func newFixture(dir string) (*fixture, error) {
	k, err := kdc.New(dir, kdc.Options{})
	if err != nil {
		return nil, err
	}
	f := &fixture{k: k, dir: dir, jaas: map[string]string{}}
	// The service principal of pacemaker/shortlived caps its tickets at 3 s.
	if _, err := k.Kadmin(
		"addprinc -randkey pacemaker/localhost",
		"addprinc -randkey -maxlife \"3 seconds\" pacemaker/shortlived",
		"addprinc -randkey nimbus",
		"addprinc -randkey alice",
		"addprinc -randkey stale",
	); err != nil {
		return nil, err
	}
	kt := func(name string) (string, error) {
		p := filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".keytab")
		return p, k.Keytab(p, name)
	}
	var paths = map[string]string{}
	for _, name := range []string{"pacemaker/localhost", "pacemaker/shortlived", "nimbus", "alice", "stale"} {
		if paths[name], err = kt(name); err != nil {
			return nil, err
		}
	}
	// stale's keytab goes out of date: its key changes in the KDC.
	if _, err := k.Kadmin("cpw -randkey stale"); err != nil {
		return nil, err
	}
	if f.serviceKeytab, err = os.ReadFile(paths["pacemaker/localhost"]); err != nil {
		return nil, err
	}
	if f.shortKeytab, err = os.ReadFile(paths["pacemaker/shortlived"]); err != nil {
		return nil, err
	}
	if f.wrongKeytab, err = wrongKeys(f.serviceKeytab); err != nil {
		return nil, err
	}
	f.skewConf = filepath.Join(dir, "krb5-skew1.conf")
	if err := k.WriteKrb5Conf(f.skewConf, "clockskew = 1"); err != nil {
		return nil, err
	}
	for _, name := range []string{"nimbus", "alice", "stale"} {
		p := filepath.Join(dir, name+".jaas")
		if err := os.WriteFile(p, []byte(clientJAAS(paths[name], k.Principal(name))), 0o644); err != nil {
			return nil, err
		}
		f.jaas[name] = p
	}
	return f, nil
}

// clientJAAS is a PacemakerClient section exactly as Storm's documentation
// shows it for Nimbus.
func clientJAAS(keytab, principal string) string {
	return fmt.Sprintf(`PacemakerClient {
    com.sun.security.auth.module.Krb5LoginModule required
    useKeyTab=true
    keyTab="%s"
    storeKey=true
    useTicketCache=false
    serviceName="pacemaker"
    principal="%s";
};
`, keytab, principal)
}

// serverJAAS is the daemon's PacemakerServer section, Storm's format.
func serverJAAS(principal string) string {
	return fmt.Sprintf(`PacemakerServer {
    com.sun.security.auth.module.Krb5LoginModule required
    useKeyTab=true
    keyTab="%s/pacemaker.keytab"
    storeKey=true
    useTicketCache=false
    principal="%s";
};
`, daemon.DirPlaceholder, principal)
}

// wrongKeys returns a keytab with the same principal, kvno and enctypes
// as kt but other keys: a daemon keytab that no longer matches the KDC.
func wrongKeys(b []byte) ([]byte, error) {
	kt := keytab.New()
	if err := kt.Unmarshal(b); err != nil {
		return nil, err
	}
	for i := range kt.Entries {
		for j := range kt.Entries[i].Key.KeyValue {
			kt.Entries[i].Key.KeyValue[j] ^= 0x5a
		}
	}
	return kt.Marshal()
}

// startDaemon runs a KERBEROS daemon whose principal is
// pacemaker/<host> with the given keytab, krb5.conf and readers.
func (f *fixture) startDaemon(t *testing.T, host string, kt []byte, krb5Conf string) *daemon.Proc {
	t.Helper()
	return f.startDaemonWith(t, host, kt, krb5Conf, "")
}

// startDaemonWith is startDaemon with more config lines.
func (f *fixture) startDaemonWith(t *testing.T, host string, kt []byte, krb5Conf, extraConfig string) *daemon.Proc {
	t.Helper()
	return daemon.Start(t, daemon.Options{
		Config: "pacemaker.auth.method: KERBEROS\n" +
			"java.security.auth.login.config: " + daemon.DirPlaceholder + "/jaas.conf\n" +
			"nimbus.daemon.user: nimbus\n" + extraConfig,
		Files: map[string]string{
			"jaas.conf":        serverJAAS(f.k.Principal("pacemaker/" + host)),
			"pacemaker.keytab": string(kt),
		},
		Env: []string{"KRB5_CONFIG=" + krb5Conf},
	})
}

// Java: Debian's libthrift-java and JDK 17, as test/interop uses them.

var javaBuild struct {
	once sync.Once
	cp   []string
	err  error
}

// javaClasspath compiles InteropKerberos (with HB* classes generated
// from our hb.thrift) once and returns the classpath to run it.
func javaClasspath(t *testing.T) []string {
	t.Helper()
	var missing []string
	for tool, pkg := range map[string]string{"javac": "openjdk-17-jdk-headless", "java": "openjdk-17-jre-headless", "thrift": "thrift-compiler"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool+" (Debian package "+pkg+")")
		}
	}
	var libs []string
	for _, names := range [][]string{{"libthrift.jar", "thrift.jar"}, {"slf4j-api.jar"}, {"slf4j-nop.jar"}} {
		for _, n := range names {
			if p := filepath.Join("/usr/share/java", n); fileExists(p) {
				libs = append(libs, p)
				break
			}
		}
	}
	if len(libs) < 2 {
		missing = append(missing, "/usr/share/java/thrift.jar and slf4j-api.jar (Debian package libthrift-java)")
	}
	if len(missing) > 0 {
		t.Skipf("SKIPPING JDK Kerberos interop: not installed: %s (scripts/install-deps.sh installs them)", strings.Join(missing, ", "))
	}
	f := realm(t)
	javaBuild.once.Do(func() {
		root := daemon.RepoRoot(t)
		work := filepath.Join(f.dir, "java")
		gen, classes := filepath.Join(work, "gen"), filepath.Join(work, "classes")
		for _, d := range []string{gen, classes} {
			if javaBuild.err = os.MkdirAll(d, 0o755); javaBuild.err != nil {
				return
			}
		}
		idl := filepath.Join(root, "internal", "wire", "internal", "thriftref", "hb.thrift")
		if out, err := command(time.Minute, nil, "thrift", "--gen", "java:generated_annotations=suppress", "-out", gen, idl); err != nil {
			javaBuild.err = fmt.Errorf("thrift --gen java: %v\n%s", err, out)
			return
		}
		srcs, _ := filepath.Glob(filepath.Join(gen, "pacemaker", "thriftref", "*.java"))
		if len(srcs) == 0 {
			javaBuild.err = fmt.Errorf("thrift generated no Java sources in %s", gen)
			return
		}
		abs, _ := filepath.Abs(filepath.Join("java", "InteropKerberos.java"))
		args := append([]string{"-nowarn", "-encoding", "UTF-8", "-d", classes, "-cp", strings.Join(libs, ":")}, srcs...)
		if out, err := command(2*time.Minute, nil, "javac", append(args, abs)...); err != nil {
			javaBuild.err = fmt.Errorf("javac: %v\n%s", err, out)
			return
		}
		javaBuild.cp = append([]string{classes}, libs...)
	})
	if javaBuild.err != nil {
		t.Fatal(javaBuild.err)
	}
	return javaBuild.cp
}

// runJava runs InteropKerberos logged in through jaasFile and returns its
// output and exit code.
func (f *fixture) runJava(t *testing.T, jaasFile string, args ...string) (string, int) {
	t.Helper()
	return f.runJavaConf(t, f.k.Krb5Conf, jaasFile, args...)
}

// runJavaConf is runJava with another krb5.conf.
func (f *fixture) runJavaConf(t *testing.T, krb5Conf, jaasFile string, args ...string) (string, int) {
	t.Helper()
	cp := javaClasspath(t)
	jargs := append([]string{
		"-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
		"-Djava.security.auth.login.config=" + jaasFile,
		"-Djava.security.krb5.conf=" + krb5Conf,
		"-cp", strings.Join(cp, ":"), "InteropKerberos",
	}, args...)
	out, err := command(time.Minute, nil, "java", jargs...)
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("java InteropKerberos: %v\n%s", err, out)
		}
		return out, err.(*exec.ExitError).ExitCode()
	}
	return out, 0
}

// runCtl runs the built pacemakerctl against the realm's KDC.
func (f *fixture) runCtl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(daemon.Build(t), "pacemakerctl"), args...)
	cmd.Env = append(withoutKerberosEnv(), "KRB5_CONFIG="+f.k.Krb5Conf, "KRB5CCNAME=FILE:"+filepath.Join(f.dir, "no-ccache"))
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run pacemakerctl: %v", err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

func command(timeout time.Duration, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = withoutKerberosEnv()
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("%s timed out after %v: %w", name, timeout, ctx.Err())
	}
	return string(out), err
}

// withoutKerberosEnv keeps the host's krb5.conf and caches out.
func withoutKerberosEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KRB5") && !strings.HasPrefix(kv, "PACEMAKER_") {
			env = append(env, kv)
		}
	}
	return env
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
