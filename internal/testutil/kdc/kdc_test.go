package kdc

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
)

func TestKDCIssuesTickets(t *testing.T) {
	start := time.Now()
	k := Start(t, Options{})
	t.Logf("KDC up on %s in %v", k.Addr, time.Since(start))
	k.MustAddPrincipal(t, "nimbus", "pacemaker/localhost")
	kt := filepath.Join(t.TempDir(), "nimbus.keytab")
	k.MustKeytab(t, kt, "nimbus")

	parsed, err := keytab.Load(kt)
	if err != nil {
		t.Fatalf("load keytab: %v", err)
	}
	types := map[int32]bool{}
	for _, e := range parsed.Entries {
		if strings.Join(e.Principal.Components, "/") != "nimbus" || e.Principal.Realm != k.Realm {
			t.Errorf("unexpected keytab entry %v", e)
		}
		types[e.Key.KeyType] = true
	}
	for _, want := range []int32{17, 18, 19, 20} {
		if !types[want] {
			t.Errorf("keytab has no key of enctype %d (has %v)", want, types)
		}
	}

	// MIT's own client gets a TGT from it over TCP.
	cc := filepath.Join(t.TempDir(), "cc")
	if err := k.Kinit(cc, kt, "nimbus"); err != nil {
		t.Fatal(err)
	}

	// Exporting again does not change the key: the first keytab stays valid.
	k.MustKeytab(t, filepath.Join(t.TempDir(), "again.keytab"), "nimbus")
	if err := k.Kinit(cc, kt, "nimbus"); err != nil {
		t.Fatalf("keytab invalidated by a second export: %v", err)
	}

	if _, err := k.Kadmin("addprinc -randkey nimbus"); err == nil {
		t.Error("adding an existing principal: no error from Kadmin")
	}
}
