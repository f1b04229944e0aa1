package wire

import (
	"encoding/binary"
	"fmt"
)

// Control codes carried in a CONTROL_MESSAGE's message_blob (Storm's
// ControlMessage), as 2-byte big-endian shorts.
const (
	ControlSaslRequest  int16 = -202 // client: "start SASL"
	ControlSaslComplete int16 = -203 // server: "authenticated"
)

// saslTokenIdentifier starts every SaslMessageToken blob.
const saslTokenIdentifier uint16 = 0xfe0c // the short -500

// NewControl returns a CONTROL_MESSAGE frame's message (no message_id, as
// Storm sends it).
func NewControl(code int16) *Message {
	return &Message{Type: ControlMessage, Field: FieldBlob, Blob: binary.BigEndian.AppendUint16(nil, uint16(code))}
}

// ParseControl returns the code of a CONTROL_MESSAGE.
func ParseControl(m *Message) (int16, error) {
	if m.Field != FieldBlob || len(m.Blob) < 2 {
		return 0, fmt.Errorf("%w: CONTROL_MESSAGE without a 2-byte code", ErrMalformed)
	}
	return int16(binary.BigEndian.Uint16(m.Blob)), nil
}

// NewSaslToken returns a SASL_MESSAGE_TOKEN frame's message carrying token.
func NewSaslToken(token []byte) *Message {
	blob := make([]byte, 0, 6+len(token))
	blob = binary.BigEndian.AppendUint16(blob, saslTokenIdentifier)
	blob = binary.BigEndian.AppendUint32(blob, uint32(len(token)))
	blob = append(blob, token...)
	return &Message{Type: SaslMessageToken, Field: FieldBlob, Blob: blob}
}

// ParseSaslToken returns the token inside a SASL_MESSAGE_TOKEN (aliasing m.Blob).
func ParseSaslToken(m *Message) ([]byte, error) {
	if m.Field != FieldBlob || len(m.Blob) < 6 {
		return nil, fmt.Errorf("%w: SASL_MESSAGE_TOKEN blob shorter than its 6-byte header", ErrMalformed)
	}
	if id := binary.BigEndian.Uint16(m.Blob); id != saslTokenIdentifier {
		return nil, fmt.Errorf("%w: SASL_MESSAGE_TOKEN blob starts with %d, want -500", ErrMalformed, int16(id))
	}
	n := int(int32(binary.BigEndian.Uint32(m.Blob[2:])))
	if n < 0 || n != len(m.Blob)-6 {
		return nil, fmt.Errorf("%w: SASL token length %d, blob holds %d", ErrMalformed, n, len(m.Blob)-6)
	}
	return m.Blob[6:], nil
}
