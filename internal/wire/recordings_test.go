package wire_test

import (
	"bytes"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/stormwire"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// TestStormRecordings decodes every frame Storm's Java peers put on the
// wire, with both our decoders and Thrift's, and requires our encoder to
// give back the very same bytes.
func TestStormRecordings(t *testing.T) {
	frames := 0
	for _, name := range stormwire.Names() {
		for _, rec := range stormwire.Load(t, name) {
			for _, dec := range decoders {
				var m wire.Message
				if err := dec.fn(rec.Body(), &m); err != nil {
					t.Fatalf("%s line %d: %s: %v", name, rec.Line, dec.name, err)
				}
				if again := wire.AppendFrame(nil, &m); !bytes.Equal(again, rec.Raw) {
					t.Errorf("%s line %d (%v): re-encoded\n got % x\nwant % x", name, rec.Line, &m, again, rec.Raw)
				}
				if err := checkDifferential(&m); err != nil {
					t.Errorf("%s line %d: %v", name, rec.Line, err)
				}
				switch m.Type {
				case wire.ControlMessage:
					if _, err := wire.ParseControl(&m); err != nil {
						t.Errorf("%s line %d: %v", name, rec.Line, err)
					}
				case wire.SaslMessageToken:
					tok, err := wire.ParseSaslToken(&m)
					if err != nil {
						t.Errorf("%s line %d: %v", name, rec.Line, err)
					} else if again := wire.AppendFrame(nil, wire.NewSaslToken(tok)); !bytes.Equal(again, rec.Raw) {
						t.Errorf("%s line %d: NewSaslToken gives % x", name, rec.Line, again)
					}
				}
			}
			frames++
		}
	}
	t.Logf("%d recorded frames agree", frames)
}
