// Package wire holds Pacemaker's frames and the HB* Thrift types of Storm's
// storm.thrift, encoded and decoded by hand in Thrift's strict binary protocol.
//
// The codec sits on every request's path, so it uses no reflection and, on the
// server's side, no allocation: DecodeView aliases the frame buffer and
// AppendFrame appends to a caller-owned buffer.
package wire

import "fmt"

// MessageType is Storm's HBServerMessageType.
type MessageType int32

// The values of HBServerMessageType, in Storm's order.
const (
	CreatePath MessageType = iota
	CreatePathResponse
	Exists
	ExistsResponse
	SendPulse
	SendPulseResponse
	GetAllPulseForPath
	GetAllPulseForPathResponse
	GetAllNodesForPath
	GetAllNodesForPathResponse
	GetPulse
	GetPulseResponse
	DeletePath
	DeletePathResponse
	DeletePulseID
	DeletePulseIDResponse
	ControlMessage
	SaslMessageToken
	NotAuthorized
)

var typeNames = [...]string{
	"CREATE_PATH", "CREATE_PATH_RESPONSE", "EXISTS", "EXISTS_RESPONSE",
	"SEND_PULSE", "SEND_PULSE_RESPONSE", "GET_ALL_PULSE_FOR_PATH",
	"GET_ALL_PULSE_FOR_PATH_RESPONSE", "GET_ALL_NODES_FOR_PATH",
	"GET_ALL_NODES_FOR_PATH_RESPONSE", "GET_PULSE", "GET_PULSE_RESPONSE",
	"DELETE_PATH", "DELETE_PATH_RESPONSE", "DELETE_PULSE_ID",
	"DELETE_PULSE_ID_RESPONSE", "CONTROL_MESSAGE", "SASL_MESSAGE_TOKEN",
	"NOT_AUTHORIZED",
}

// Valid reports whether t is one of the values Storm defines.
func (t MessageType) Valid() bool { return t >= 0 && int(t) < len(typeNames) }

func (t MessageType) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	return fmt.Sprintf("UNKNOWN(%d)", int32(t))
}

// ParseMessageType maps Storm's enum name (e.g. "SEND_PULSE") to its value.
func ParseMessageType(name string) (MessageType, bool) {
	for i, n := range typeNames {
		if n == name {
			return MessageType(i), true
		}
	}
	return 0, false
}

// Field names the member of the HBMessageData union a message carries.
type Field int16

// The union's field ids; NoData means field 2 of HBMessage is absent.
const (
	NoData      Field = 0
	FieldPath   Field = 1
	FieldPulse  Field = 2
	FieldBool   Field = 3
	FieldRecord Field = 4
	FieldNodes  Field = 5
	FieldBlob   Field = 7
)

// Pulse is HBPulse. Details == nil means the field is absent on the wire
// (GET_PULSE of a missing key); a present empty value is a non-nil empty slice.
type Pulse struct {
	ID      string
	Details []byte
}

// Message is one HBMessage. Only the member named by Field is meaningful.
type Message struct {
	Type    MessageType
	Field   Field
	Path    string
	Pulse   Pulse
	Bool    bool
	Records []Pulse
	Nodes   []string
	Blob    []byte
	// ID is message_id; HasID false means the field is absent on the wire
	// (control and SASL frames), which readers see as Storm's default -1.
	ID    int32
	HasID bool
}

// Reset clears m for reuse, keeping slice capacity.
func (m *Message) Reset() {
	*m = Message{Records: m.Records[:0], Nodes: m.Nodes[:0]}
}

// MessageID returns message_id with Thrift's default of -1 when absent.
func (m *Message) MessageID() int32 {
	if !m.HasID {
		return -1
	}
	return m.ID
}

func (m *Message) String() string {
	switch m.Field {
	case FieldPath:
		return fmt.Sprintf("%s{id=%d path=%q}", m.Type, m.MessageID(), m.Path)
	case FieldPulse:
		return fmt.Sprintf("%s{id=%d pulse=%q %d bytes}", m.Type, m.MessageID(), m.Pulse.ID, len(m.Pulse.Details))
	case FieldBool:
		return fmt.Sprintf("%s{id=%d bool=%v}", m.Type, m.MessageID(), m.Bool)
	case FieldRecord:
		return fmt.Sprintf("%s{id=%d records=%d}", m.Type, m.MessageID(), len(m.Records))
	case FieldNodes:
		return fmt.Sprintf("%s{id=%d nodes=%d}", m.Type, m.MessageID(), len(m.Nodes))
	case FieldBlob:
		return fmt.Sprintf("%s{id=%d blob=%d bytes}", m.Type, m.MessageID(), len(m.Blob))
	}
	return fmt.Sprintf("%s{id=%d}", m.Type, m.MessageID())
}
