package interop

// Helpers to build and run the Java programs under java/: they use
// Debian's libthrift-java (Apache Thrift's own Java library, the one Storm's
// peers are built on) with HB* classes generated from our hb.thrift.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
)

// javaLibDir is where Debian installs Java libraries.
const javaLibDir = "/usr/share/java"

// javaToolchain returns the paths of thrift, javac and java, skipping the
// test loudly when one is missing.
func javaToolchain(t *testing.T) (thrift, javac, java string) {
	t.Helper()
	var missing []string
	look := func(name, pkg string) string {
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, name+" (Debian package "+pkg+")")
		}
		return p
	}
	thrift = look("thrift", "thrift-compiler")
	javac = look("javac", "openjdk-17-jdk-headless")
	java = look("java", "openjdk-17-jre-headless")
	if len(missing) > 0 {
		t.Skipf("SKIPPING Java interop: not installed: %s (scripts/install-deps.sh installs them)", strings.Join(missing, ", "))
	}
	return thrift, javac, java
}

// thriftClasspath returns libthrift and what it needs at run time, skipping
// when libthrift-java is not installed.
func thriftClasspath(t *testing.T) []string {
	t.Helper()
	find := func(names ...string) string {
		for _, n := range names {
			if p := filepath.Join(javaLibDir, n); fileExists(p) {
				return p
			}
		}
		return ""
	}
	thrift := find("libthrift.jar", "thrift.jar")
	slf4j := find("slf4j-api.jar")
	if thrift == "" || slf4j == "" {
		t.Skipf("SKIPPING Java interop: %s/thrift.jar or slf4j-api.jar missing (Debian package libthrift-java)", javaLibDir)
	}
	cp := []string{thrift, slf4j}
	// slf4j 1.7 warns on stderr without a binding; the no-op one silences it.
	if nop := find("slf4j-nop.jar"); nop != "" {
		cp = append(cp, nop)
	}
	return cp
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// buildJava generates the HB* classes from hb.thrift, compiles them with the
// given sources (paths relative to this directory) and returns the
// classpath to run them with.
func buildJava(t *testing.T, sources ...string) []string {
	t.Helper()
	thrift, javac, _ := javaToolchain(t)
	libs := thriftClasspath(t)
	root := daemon.RepoRoot(t)
	idl := filepath.Join(root, "internal", "wire", "internal", "thriftref", "hb.thrift")

	work := t.TempDir()
	gen := filepath.Join(work, "gen")
	classes := filepath.Join(work, "classes")
	for _, d := range []string{gen, classes} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// No @javax.annotation.Generated: JDK 17 has no javax.annotation.
	runTool(t, 30*time.Second, thrift, "--gen", "java:generated_annotations=suppress", "-out", gen, idl)
	var files []string
	err := filepath.WalkDir(gen, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".java") {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("thrift --gen java produced no sources in %s: %v", gen, err)
	}
	for _, s := range sources {
		abs, err := filepath.Abs(s)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, abs)
	}
	args := append([]string{"-nowarn", "-encoding", "UTF-8", "-d", classes, "-cp", strings.Join(libs, ":")}, files...)
	runTool(t, 2*time.Minute, javac, args...)
	return append([]string{classes}, libs...)
}

// runTool runs a build step and fails the test with its output if it fails.
func runTool(t *testing.T, timeout time.Duration, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// runJava runs a main class and returns its combined output and exit code.
func runJava(t *testing.T, timeout time.Duration, classpath []string, mainClass string, args ...string) (string, int) {
	t.Helper()
	_, _, java := javaToolchain(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// A small heap and one GC thread: the machine is shared.
	jargs := append([]string{"-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", strings.Join(classpath, ":"), mainClass}, args...)
	cmd := exec.CommandContext(ctx, java, jargs...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("java %s timed out after %v:\n%s", mainClass, timeout, out)
	}
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("java %s: %v", mainClass, err)
		}
	}
	return string(out), cmd.ProcessState.ExitCode()
}
