package rfc4121

import (
	"fmt"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// ASN.1 application tags of RFC 4120 §5.5.2.
const (
	appTagAPRep        = 15
	appTagEncAPRepPart = 27
)

// apRep and encAPRepPart mirror gokrb5's messages types, which can only be
// unmarshalled.
type apRep struct {
	PVNO    int                 `asn1:"explicit,tag:0"`
	MsgType int                 `asn1:"explicit,tag:1"`
	EncPart types.EncryptedData `asn1:"explicit,tag:2"`
}

type encAPRepPart struct {
	CTime          time.Time           `asn1:"generalized,explicit,tag:0"`
	Cusec          int                 `asn1:"explicit,tag:1"`
	Subkey         types.EncryptionKey `asn1:"optional,explicit,tag:2"`
	SequenceNumber int64               `asn1:"optional,explicit,tag:3"`
}

// NewAPRepToken builds the acceptor's response to an initiator that asked
// for mutual authentication: a KRB_AP_REP echoing the authenticator's time
// and carrying the acceptor's initial sequence number, encrypted in the
// ticket's session key, framed as a context token. It asserts no acceptor
// subkey, so both sides go on using the initiator's subkey (or the session
// key).
func NewAPRepToken(sessionKey types.EncryptionKey, a types.Authenticator, seq uint32) ([]byte, error) {
	part, err := asn1.Marshal(encAPRepPart{
		CTime:          a.CTime.UTC().Truncate(time.Second),
		Cusec:          a.Cusec,
		SequenceNumber: int64(seq),
	})
	if err != nil {
		return nil, fmt.Errorf("marshal EncAPRepPart: %w", err)
	}
	enc, err := crypto.GetEncryptedData(asn1tools.AddASNAppTag(part, appTagEncAPRepPart), sessionKey, keyusage.AP_REP_ENCPART, 0)
	if err != nil {
		return nil, fmt.Errorf("encrypt EncAPRepPart: %w", err)
	}
	rep, err := asn1.Marshal(apRep{PVNO: 5, MsgType: msgtype.KRB_AP_REP, EncPart: enc})
	if err != nil {
		return nil, fmt.Errorf("marshal AP-REP: %w", err)
	}
	return FrameContextToken(TokIDAPRep, asn1tools.AddASNAppTag(rep, appTagAPRep)), nil
}

// VerifyAPRep checks an AP-REP (the message inside a TokIDAPRep context
// token) against the authenticator the initiator sent and returns the
// acceptor's sequence number and subkey (zero KeyType when none).
func VerifyAPRep(msg []byte, sessionKey types.EncryptionKey, sent types.Authenticator) (seq uint32, subkey types.EncryptionKey, err error) {
	var rep messages.APRep
	if err := rep.Unmarshal(msg); err != nil {
		return 0, subkey, fmt.Errorf("parse AP-REP: %w", err)
	}
	if err := CheckCiphertext(rep.EncPart, sessionKey); err != nil {
		return 0, subkey, fmt.Errorf("AP-REP: %w", err)
	}
	plain, err := crypto.DecryptEncPart(rep.EncPart, sessionKey, keyusage.AP_REP_ENCPART)
	if err != nil {
		return 0, subkey, fmt.Errorf("decrypt AP-REP: %w", err)
	}
	var part messages.EncAPRepPart
	if err := part.Unmarshal(plain); err != nil {
		return 0, subkey, fmt.Errorf("parse EncAPRepPart: %w", err)
	}
	if !part.CTime.Equal(sent.CTime.Truncate(time.Second)) || part.Cusec != sent.Cusec {
		return 0, subkey, fmt.Errorf("AP-REP time %v.%06d does not echo the authenticator's %v.%06d",
			part.CTime, part.Cusec, sent.CTime, sent.Cusec)
	}
	if part.Subkey.KeyType != 0 {
		if err := CheckKey(part.Subkey); err != nil {
			return 0, subkey, fmt.Errorf("AP-REP subkey: %w", err)
		}
	}
	return uint32(part.SequenceNumber), part.Subkey, nil
}
