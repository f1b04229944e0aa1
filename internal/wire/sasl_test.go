package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

func TestControlFrames(t *testing.T) {
	for _, tc := range []struct {
		code  int16
		frame string // as Storm sends it
	}{
		{wire.ControlSaslRequest, "00000015 080001000000100c00020b000700000002ff360000"},
		{wire.ControlSaslComplete, "00000015 080001000000100c00020b000700000002ff350000"},
	} {
		m := wire.NewControl(tc.code)
		if m.HasID {
			t.Errorf("control %d carries a message_id", tc.code)
		}
		frame := wire.AppendFrame(nil, m)
		if want := unhex(t, tc.frame); !bytes.Equal(frame, want) {
			t.Errorf("control %d:\n got % x\nwant % x", tc.code, frame, want)
		}
		var back wire.Message
		if err := wire.Decode(frame[4:], &back); err != nil {
			t.Fatal(err)
		}
		if code, err := wire.ParseControl(&back); err != nil || code != tc.code {
			t.Errorf("ParseControl = %d, %v; want %d", code, err, tc.code)
		}
	}
}

func TestParseControlRejects(t *testing.T) {
	for name, m := range map[string]*wire.Message{
		"no data":      {Type: wire.ControlMessage},
		"path":         {Type: wire.ControlMessage, Field: wire.FieldPath, Path: "ab"},
		"empty blob":   {Type: wire.ControlMessage, Field: wire.FieldBlob, Blob: []byte{}},
		"1-byte blob":  {Type: wire.ControlMessage, Field: wire.FieldBlob, Blob: []byte{0xff}},
		"stale blob":   {Type: wire.ControlMessage, Field: wire.FieldPath, Blob: []byte{0xff, 0x36}},
		"nil blob set": {Type: wire.ControlMessage, Field: wire.FieldBlob},
	} {
		if code, err := wire.ParseControl(m); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%s: ParseControl = %d, %v; want ErrMalformed", name, code, err)
		}
	}
}

func TestSaslTokenRoundTrip(t *testing.T) {
	for _, token := range [][]byte{
		nil,
		{},
		[]byte(`realm="default",nonce="abc",charset=utf-8,algorithm=md5-sess`),
		bytes.Repeat([]byte{0x60, 0x82}, 40000), // a Kerberos AP-REQ can be large
	} {
		m := wire.NewSaslToken(token)
		if m.Type != wire.SaslMessageToken || m.Field != wire.FieldBlob || m.HasID {
			t.Fatalf("NewSaslToken: %v", m)
		}
		if want := append([]byte{0xfe, 0x0c, byte(len(token) >> 24), byte(len(token) >> 16), byte(len(token) >> 8), byte(len(token))}, token...); !bytes.Equal(m.Blob, want) {
			t.Fatalf("blob % x, want % x", m.Blob[:min(len(m.Blob), 16)], want[:min(len(want), 16)])
		}
		frame := wire.AppendFrame(nil, m)
		for _, dec := range decoders {
			var back wire.Message
			if err := dec.fn(frame[4:], &back); err != nil {
				t.Fatal(err)
			}
			got, err := wire.ParseSaslToken(&back)
			if err != nil || !bytes.Equal(got, token) || got == nil {
				t.Errorf("%s: ParseSaslToken = %d bytes (nil %v), %v; want %d bytes", dec.name, len(got), got == nil, err, len(token))
			}
		}
	}
}

func TestParseSaslTokenRejects(t *testing.T) {
	blob := func(b ...byte) *wire.Message {
		return &wire.Message{Type: wire.SaslMessageToken, Field: wire.FieldBlob, Blob: b}
	}
	for name, m := range map[string]*wire.Message{
		"no data":              {Type: wire.SaslMessageToken},
		"path":                 {Type: wire.SaslMessageToken, Field: wire.FieldPath, Path: "\xfe\x0c\x00\x00\x00\x00"},
		"5-byte blob":          blob(0xfe, 0x0c, 0, 0, 0),
		"wrong identifier":     blob(0xfe, 0x0d, 0, 0, 0, 1, 'x'),
		"control code instead": blob(0xff, 0x36, 0, 0, 0, 0),
		"length too long":      blob(0xfe, 0x0c, 0, 0, 0, 2, 'x'),
		"length too short":     blob(0xfe, 0x0c, 0, 0, 0, 0, 'x'),
		"negative length":      blob(0xfe, 0x0c, 0xff, 0xff, 0xff, 0xff),
		"min int32 length":     blob(0xfe, 0x0c, 0x80, 0, 0, 0),
	} {
		if tok, err := wire.ParseSaslToken(m); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%s: ParseSaslToken = % x, %v; want ErrMalformed", name, tok, err)
		}
	}
}
