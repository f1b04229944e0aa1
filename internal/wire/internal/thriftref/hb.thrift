// Reference definition of Pacemaker's heartbeat messages, written from the
// team's wire notes (protocol.md; Storm's storm.thrift defines the same
// shapes). It exists only so the tests can compare our hand-written codec
// in internal/wire with code that Apache Thrift's compilers generate: Go
// (this directory, committed) and Java (generated at test time by
// test/interop). Field ids and types are what matter on the wire; names are
// ours.

namespace go thriftref
namespace java pacemaker.thriftref

enum HBServerMessageType {
  CREATE_PATH = 0,
  CREATE_PATH_RESPONSE = 1,
  EXISTS = 2,
  EXISTS_RESPONSE = 3,
  SEND_PULSE = 4,
  SEND_PULSE_RESPONSE = 5,
  GET_ALL_PULSE_FOR_PATH = 6,
  GET_ALL_PULSE_FOR_PATH_RESPONSE = 7,
  GET_ALL_NODES_FOR_PATH = 8,
  GET_ALL_NODES_FOR_PATH_RESPONSE = 9,
  GET_PULSE = 10,
  GET_PULSE_RESPONSE = 11,
  DELETE_PATH = 12,
  DELETE_PATH_RESPONSE = 13,
  DELETE_PULSE_ID = 14,
  DELETE_PULSE_ID_RESPONSE = 15,
  CONTROL_MESSAGE = 16,
  SASL_MESSAGE_TOKEN = 17,
  NOT_AUTHORIZED = 18
}

// One stored heartbeat: its key and, unless absent, its bytes.
//
// details and HBMessage.data are marked optional here although Storm leaves
// them at default requiredness: the two mean the same on the wire, but
// Thrift's Go generator writes a default-requiredness field even when it is
// unset (an empty details, a nil data that fails to encode), while Java's
// writes it only when set. optional gives both generators Java's behaviour,
// which is what Storm's peers send: GET_PULSE of a missing key omits details
// and answers with nothing to carry omit data.
struct HBPulse {
  1: required string id
  2: optional binary details
}

struct HBRecords {
  1: list<HBPulse> pulses
}

struct HBNodes {
  1: list<string> pulseIds
}

// Exactly one member is set; a message with nothing to carry omits the
// whole union (HBMessage field 2).
union HBMessageData {
  1: string path
  2: HBPulse pulse
  3: bool boolval
  4: HBRecords records
  5: HBNodes nodes
  7: binary message_blob
}

struct HBMessage {
  1: HBServerMessageType type
  2: optional HBMessageData data
  3: optional i32 message_id = -1
}
