package packaging

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// goreleaserGenDir is where .goreleaser.yaml's before-hook writes what
// nfpm.yaml takes from ${PKG_GENDIR}.
const goreleaserGenDir = ".cache/goreleaser/gen"

// TestGoreleaserMatchesNfpm keeps .goreleaser.yaml's nfpms section and
// builds in step with packaging/nfpm.yaml and the Makefile's build: the
// same files, scripts and metadata, whichever tool builds the packages.
func TestGoreleaserMatchesNfpm(t *testing.T) {
	root := repoRoot(t)
	var nf map[string]any
	readYAML(t, filepath.Join(root, ConfigPath), &nf)
	var gr struct {
		Before struct{ Hooks []string }
		Builds []struct {
			ID, Main, Binary string
			Env, Goos        []string
			Goarch           []string
			Flags, Ldflags   []string
		}
		Nfpms []map[string]any
	}
	readYAML(t, filepath.Join(root, ".goreleaser.yaml"), &gr)
	if len(gr.Nfpms) != 1 {
		t.Fatalf(".goreleaser.yaml has %d nfpms entries, want 1", len(gr.Nfpms))
	}
	g := gr.Nfpms[0]

	// Binaries: nfpm.yaml lists them; goreleaser puts its builds in bindir.
	var want []string
	for _, c := range nf["contents"].([]any) {
		entry := c.(map[string]any)
		if dst := entry["dst"].(string); strings.HasPrefix(dst, "/usr/bin/") {
			if !slices.Contains(Binaries, filepath.Base(dst)) {
				t.Errorf("nfpm.yaml installs %s, not a known binary", dst)
			}
			continue
		}
		if src, ok := entry["src"].(string); ok {
			entry["src"] = strings.ReplaceAll(src, "${PKG_GENDIR}", goreleaserGenDir)
		}
		want = append(want, canonical(t, entry))
	}
	var got []string
	for _, c := range g["contents"].([]any) {
		got = append(got, canonical(t, c))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("nfpms contents differ from packaging/nfpm.yaml's:\n%s", diffLines(strings.Join(want, "\n"), strings.Join(got, "\n")))
	}
	if g["bindir"] != "/usr/bin" {
		t.Errorf("nfpms bindir = %v, want /usr/bin", g["bindir"])
	}

	// goreleaser names nfpm's depends "dependencies".
	if ov, ok := g["overrides"].(map[string]any); ok {
		for _, o := range ov {
			if o, ok := o.(map[string]any); ok && o["dependencies"] != nil {
				o["depends"] = o["dependencies"]
				delete(o, "dependencies")
			}
		}
	}
	same := map[string]string{ // goreleaser key → nfpm.yaml key
		"package_name": "name", "section": "section", "priority": "priority",
		"maintainer": "maintainer", "vendor": "vendor", "homepage": "homepage",
		"license": "license", "description": "description", "umask": "umask",
		"overrides": "overrides", "deb": "deb", "rpm": "rpm",
	}
	for gk, nk := range same {
		if !reflect.DeepEqual(g[gk], nf[nk]) {
			t.Errorf("nfpms %s = %v, nfpm.yaml %s = %v", gk, g[gk], nk, nf[nk])
		}
	}
	if g["release"] != Release || nf["release"] != "${PKG_RELEASE}" {
		t.Errorf("release: goreleaser %v, nfpm.yaml %v; want %s and ${PKG_RELEASE}", g["release"], nf["release"], Release)
	}
	if g["changelog"] != goreleaserGenDir+"/changelog.yml" || nf["changelog"] != "${PKG_GENDIR}/changelog.yml" {
		t.Errorf("changelog: goreleaser %v, nfpm.yaml %v", g["changelog"], nf["changelog"])
	}
	if len(gr.Before.Hooks) != 1 || !strings.Contains(gr.Before.Hooks[0], "pmpackage gen") ||
		!strings.Contains(gr.Before.Hooks[0], "-out "+goreleaserGenDir) {
		t.Errorf("before hooks %q do not generate into %s", gr.Before.Hooks, goreleaserGenDir)
	}

	// Builds: as the Makefile's, for every binary and architecture.
	var ids []string
	for _, b := range gr.Builds {
		ids = append(ids, b.ID)
		if b.Main != "./cmd/"+b.Binary || !slices.Contains(Binaries, b.Binary) {
			t.Errorf("build %s: main %s, binary %s", b.ID, b.Main, b.Binary)
		}
		if !slices.Equal(b.Goos, []string{"linux"}) || !slices.Equal(b.Goarch, Arches) {
			t.Errorf("build %s: goos %v goarch %v, want linux %v", b.ID, b.Goos, b.Goarch, Arches)
		}
		if !slices.Contains(b.Env, "CGO_ENABLED=0") || !slices.Equal(b.Flags, BuildFlags) {
			t.Errorf("build %s: env %v flags %v, want CGO_ENABLED=0 and %v", b.ID, b.Env, b.Flags, BuildFlags)
		}
		if len(b.Ldflags) != 1 || b.Ldflags[0] != "-s -w -X "+Module+"/internal/version.Version={{ .Version }}" {
			t.Errorf("build %s: ldflags %q", b.ID, b.Ldflags)
		}
	}
	slices.Sort(ids)
	gids := toStrings(g["ids"])
	slices.Sort(gids)
	if !slices.Equal(ids, Binaries) || !slices.Equal(gids, Binaries) {
		t.Errorf("builds %v, nfpms ids %v; want %v", ids, gids, Binaries)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// canonical is an entry as one line of YAML flow style, keys sorted.
func canonical(t *testing.T, v any) string {
	t.Helper()
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		t.Fatal(err)
	}
	n.Style = yaml.FlowStyle
	for _, c := range n.Content {
		c.Style = yaml.FlowStyle
	}
	b, err := yaml.Marshal(&n)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
