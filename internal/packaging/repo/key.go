package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// KeyEnv names the signing key: the path of an armoured secret key (a CI
// secret; it must have no passphrase) or the id of a key in the caller's
// gpg keyring (its agent asks for a passphrase if it needs one).
const KeyEnv = "PACEMAKER_SIGNING_KEY"

// ThrowawayUID is the user id of generated test keys: whoever sees it in
// apt's or dnf's output knows the repository is not for production.
const ThrowawayUID = "storm-pacemaker throwaway test key (do not publish) <throwaway@storm-pacemaker.invalid>"

// Key is a secret signing key in a gpg home.
type Key struct {
	Home        string // GNUPGHOME; "" is the caller's default keyring
	Fingerprint string

	owned  bool // Home is ours: stop its agent when done
	remove bool // and delete it
}

// OpenKey finds the signing key spec names (see KeyEnv). An empty spec
// means a throwaway key in throwawayHome, made there on first use and
// reused afterwards; note then says so, for the caller to print.
func OpenKey(ctx context.Context, spec, throwawayHome string) (k *Key, note string, err error) {
	switch {
	case spec == "":
		k, err = ThrowawayKey(ctx, throwawayHome)
		if err != nil {
			return nil, "", err
		}
		return k, fmt.Sprintf("%s is not set: signed with a throwaway test key %s kept in %s; "+
			"do not publish this repository (set %s to an armoured secret key file or a gpg key id)",
			KeyEnv, k.Fingerprint, throwawayHome, KeyEnv), nil
	case isFile(spec):
		home, err := os.MkdirTemp("", "pacemaker-signing-")
		if err != nil {
			return nil, "", err
		}
		k = &Key{Home: home, owned: true, remove: true}
		if _, err := k.gpg(ctx, "--import", spec); err != nil {
			k.Close()
			return nil, "", fmt.Errorf("%s=%s: import: %w", KeyEnv, spec, err)
		}
		if k.Fingerprint, err = k.secretFingerprint(ctx, ""); err != nil {
			k.Close()
			return nil, "", fmt.Errorf("%s=%s: %w", KeyEnv, spec, err)
		}
		return k, "", nil
	default:
		k = &Key{Home: os.Getenv("GNUPGHOME")}
		if k.Fingerprint, err = k.secretFingerprint(ctx, spec); err != nil {
			return nil, "", fmt.Errorf("%s=%s (neither a file nor a key in the gpg keyring): %w", KeyEnv, spec, err)
		}
		return k, "", nil
	}
}

// ThrowawayKey returns the key in home, generating an RSA key without
// passphrase there if it has none. RSA: what apt, rpm 4.14 (EL 8) and every
// later verifier accept.
func ThrowawayKey(ctx context.Context, home string) (*Key, error) {
	home = abs(home)
	// The parent (dist/) stays readable: only the home is private.
	if err := os.MkdirAll(filepath.Dir(home), 0o755); err != nil {
		return nil, err
	}
	if err := os.Mkdir(home, 0o700); err != nil && !os.IsExist(err) {
		return nil, err
	}
	if err := os.Chmod(home, 0o700); err != nil { // gpg warns about anything wider
		return nil, err
	}
	k := &Key{Home: home, owned: true}
	if fpr, err := k.secretFingerprint(ctx, ""); err == nil {
		k.Fingerprint = fpr
		return k, nil
	}
	if _, err := k.gpg(ctx, "--pinentry-mode", "loopback", "--passphrase", "",
		"--quick-generate-key", ThrowawayUID, "rsa3072", "sign", "never"); err != nil {
		k.Close()
		return nil, fmt.Errorf("generate a throwaway key in %s: %w", home, err)
	}
	fpr, err := k.secretFingerprint(ctx, "")
	if err != nil {
		k.Close()
		return nil, err
	}
	k.Fingerprint = fpr
	return k, nil
}

// secretFingerprint is the fingerprint of the one secret primary key
// matching id ("" = any) in the home.
func (k *Key) secretFingerprint(ctx context.Context, id string) (string, error) {
	args := []string{"--with-colons", "--list-secret-keys"}
	if id != "" {
		args = append(args, id)
	}
	out, err := k.gpg(ctx, args...)
	if err != nil {
		return "", err
	}
	var fprs []string
	primary := false
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Split(l, ":")
		switch {
		case f[0] == "sec":
			primary = true
		case f[0] == "ssb":
			primary = false
		case f[0] == "fpr" && primary && len(f) > 9:
			fprs = append(fprs, f[9])
			primary = false
		}
	}
	switch len(fprs) {
	case 0:
		return "", errors.New("no secret key")
	case 1:
		return fprs[0], nil
	default:
		return "", fmt.Errorf("%d secret keys (%s): name one by its id", len(fprs), strings.Join(fprs, ", "))
	}
}

// Public exports the public key, armoured or binary.
func (k *Key) Public(ctx context.Context, armor bool) ([]byte, error) {
	args := []string{"--export", "--export-options", "export-minimal"}
	if armor {
		args = append(args, "--armor")
	}
	out, err := k.gpg(ctx, append(args, k.Fingerprint)...)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("export %s: no public key", k.Fingerprint)
	}
	return out, nil
}

// Sign writes an armoured detached signature of path to path.asc.
func (k *Key) Sign(ctx context.Context, path string) error {
	_, err := k.gpg(ctx, "--armor", "--detach-sign", "--local-user", k.Fingerprint, "--output", path+".asc", path)
	return err
}

// Close stops the gpg agent of a home made here (gpg starts one per home)
// and deletes a temporary home.
func (k *Key) Close() {
	if !k.owned {
		return
	}
	exec.Command("gpgconf", "--homedir", k.Home, "--kill", "gpg-agent").Run()
	if k.remove {
		os.RemoveAll(k.Home)
	}
}

// gpg runs gpg in batch mode on the key's home.
func (k *Key) gpg(ctx context.Context, args ...string) ([]byte, error) {
	all := []string{"--batch", "--yes", "--no-tty"}
	if k.Home != "" {
		all = append(all, "--homedir", k.Home)
	}
	cmd := exec.CommandContext(ctx, "gpg", append(all, args...)...)
	cmd.Env = k.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("gpg %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// env is this process's environment with GNUPGHOME set to the key's home.
func (k *Key) env() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "GNUPGHOME=") {
			env = append(env, e)
		}
	}
	if k.Home != "" {
		env = append(env, "GNUPGHOME="+k.Home)
	}
	return env
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// abs makes a relative home absolute: gpg and reprepro run in other
// directories.
func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
