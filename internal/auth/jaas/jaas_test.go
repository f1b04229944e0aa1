package jaas

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []*Section
	}{
		{
			name: "module-less form from Storm's docs",
			src:  "PacemakerDigest {\n username=\"pmuser\"\n password=\"pmsecret\";\n};\n",
			want: []*Section{{Name: "PacemakerDigest", Line: 1, Entries: []Entry{
				{Options: map[string]string{"username": "pmuser", "password": "pmsecret"}, Line: 2},
			}}},
		},
		{
			name: "module, flag, quoted and bare values",
			src:  `S { org.apache.Foo required a="x y" b=true; };`,
			want: []*Section{{Name: "S", Line: 1, Entries: []Entry{
				{Module: "org.apache.Foo", Flag: "required", Options: map[string]string{"a": "x y", "b": "true"}, Line: 1},
			}}},
		},
		{
			name: "flag is case-insensitive, entry without options",
			src:  "S {\n  a.B Sufficient;\n  c.D OPTIONAL k=v;\n};",
			want: []*Section{{Name: "S", Line: 1, Entries: []Entry{
				{Module: "a.B", Flag: "sufficient", Options: map[string]string{}, Line: 2},
				{Module: "c.D", Flag: "optional", Options: map[string]string{"k": "v"}, Line: 3},
			}}},
		},
		{
			name: "comments everywhere, escapes, empty section",
			src:  "// head\nA /* c */ { }; B{x=\"a\\\"b\\\\c\" // tail\n /* multi\nline */ y=\"\";};",
			want: []*Section{
				{Name: "A", Line: 2},
				{Name: "B", Line: 2, Entries: []Entry{{Options: map[string]string{"x": `a"b\c`, "y": ""}, Line: 2}}},
			},
		},
		{
			name: "a key given twice keeps the last value",
			src:  `S { m.M required k="1" k="2"; };`,
			want: []*Section{{Name: "S", Line: 1, Entries: []Entry{
				{Module: "m.M", Flag: "required", Options: map[string]string{"k": "2"}, Line: 1},
			}}},
		},
		{name: "empty file", src: "  \n// nothing\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("t.conf", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(f.Sections, tt.want) {
				t.Errorf("got %s\nwant %s", dump(f.Sections), dump(tt.want))
			}
		})
	}
}

func dump(ss []*Section) string {
	var b strings.Builder
	for _, s := range ss {
		b.WriteString(s.Name + ":")
		for _, e := range s.Entries {
			b.WriteString(" " + e.Module + "/" + e.Flag)
			for k, v := range e.Options {
				b.WriteString(" " + k + "=" + v)
			}
		}
		b.WriteString("; ")
	}
	return b.String()
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		line, col int
		msg       string
	}{
		{"missing semicolon after brace", "S { a=b; }", 1, 11, `";" after "}"`},
		{"unclosed section", "S {\n a=b;\n", 3, 1, "section S is not closed"},
		{"missing brace", "S a=b;", 1, 3, `"{" after section name S`},
		{"unknown flag", "S {\n x.Y mandatory k=v;\n};", 2, 6, `unknown control flag "mandatory"`},
		{"missing flag", "S { x.Y; };", 1, 8, "expected a control flag"},
		{"entry not ended", "S { a=b };", 1, 9, `expected ";" to end the entry`},
		{"option without value", "S { a= ; };", 1, 8, "expected a value for option a"},
		{"option without equals", "S { m.M required k v; };", 1, 20, `"=" after option k`},
		{"unclosed string", "S { a=\"xyz\n };", 1, 7, "string is not closed"},
		{"unclosed comment", "S { /* a=b; };", 1, 5, "comment is not closed"},
		{"duplicate section", "S { };\nS { };", 2, 1, "section S is defined twice (first at line 1)"},
		{"stray token", "; S {};", 1, 1, "expected a section name"},
		{"control character", "S { a=\x01; };", 1, 7, "unexpected character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.conf", []byte(tt.src))
			var je *Error
			if !errors.As(err, &je) {
				t.Fatalf("err = %v, want a *jaas.Error", err)
			}
			if je.Line != tt.line || je.Col != tt.col || !strings.Contains(je.Msg, tt.msg) || je.File != "bad.conf" {
				t.Errorf("err = %v, want bad.conf:%d:%d: …%s…", err, tt.line, tt.col, tt.msg)
			}
		})
	}
}

func TestParseFileStorm(t *testing.T) {
	f, err := ParseFile(filepath.Join("testdata", "storm.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Sections) != 4 {
		t.Fatalf("%d sections, want 4", len(f.Sections))
	}
	srv := f.Section("PacemakerServer")
	if srv == nil {
		t.Fatal("no PacemakerServer")
	}
	if kt, _ := srv.Option("keyTab"); kt != "/etc/pacemaker/keytabs/pacemaker.keytab" {
		t.Errorf("keyTab = %q", kt)
	}
	if p, _ := f.Section("PacemakerClient").Option("serviceName"); p != "pacemaker" {
		t.Errorf("serviceName = %q", p)
	}
	if u, ok := f.Section("PacemakerDigest").Option("username"); !ok || u != "pmuser" {
		t.Errorf("username = %q %v", u, ok)
	}
	if _, ok := srv.Option("keytab"); ok {
		t.Error("option keys must be case-sensitive")
	}
	if f.Section("pacemakerserver") != nil {
		t.Error("section names must be case-sensitive")
	}
}

// TestParseShippedSamples parses the sample JAAS files the packages install.
func TestParseShippedSamples(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("..", "..", "..", "etc", "jaas", "*.sample"))
	if len(paths) != 3 {
		t.Fatalf("etc/jaas/*.sample: %v, want the three the packages install", paths)
	}
	for _, p := range paths {
		if _, err := ParseFile(p); err != nil {
			t.Errorf("%v", err)
		}
	}
}

func TestParseFileMissing(t *testing.T) {
	_, err := ParseFile(filepath.Join(t.TempDir(), "none.conf"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "none.conf") {
		t.Errorf("err = %v, want a not-exist error naming the file", err)
	}
}

func FuzzParse(f *testing.F) {
	seed, _ := os.ReadFile(filepath.Join("testdata", "storm.conf"))
	f.Add(seed)
	f.Add([]byte("S { a=\"b\"; };"))
	f.Add([]byte("S { m.M required k=v /* c */; }; // x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz.conf", data)
		if err != nil {
			var je *Error
			if !errors.As(err, &je) || je.Line < 1 || je.Col < 1 {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		for _, s := range file.Sections {
			if s.Name == "" || file.Section(s.Name) != s {
				t.Fatalf("bad section %q", s.Name)
			}
		}
	})
}
