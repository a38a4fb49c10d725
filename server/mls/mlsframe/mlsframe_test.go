package mlsframe

import (
	"bytes"
	"testing"

	"relais/server/mls"
)

// TestFramingParses checks that everything built here is accepted by the
// node's parser, with the fields the builders were given.
func TestFramingParses(t *testing.T) {
	const group = "r-nabcdefgh-abcdefghijklmnop"
	const identity = "u-nabcdefgh-abcdefghijklmnop/d-abcdefghijklmnop"
	for _, suite := range []mls.CipherSuite{mls.CipherSuiteX25519AES128GCMSHA256Ed25519, mls.CipherSuiteXWingAES256GCMSHA512Ed25519} {
		sig := SignatureKey()
		kpBytes := ValidKeyPackage(suite, identity, sig)
		kp, err := mls.ParseKeyPackage(kpBytes)
		if err != nil {
			t.Fatalf("suite %v: key package: %v", suite, err)
		}
		if string(kp.CredentialIdentity) != identity || !bytes.Equal(kp.SignatureKey, sig) || kp.CipherSuite != suite {
			t.Errorf("key package = %+v", kp)
		}
		cases := []struct {
			name    string
			b       []byte
			wire    mls.WireFormat
			content mls.ContentType
			sender  mls.SenderType
		}{
			{"private commit", PrivateCommit(group, 3), mls.WireFormatPrivateMessage, mls.ContentCommit, 0},
			{"application", Application(group, 3, bytes.Repeat([]byte("x"), 100)), mls.WireFormatPrivateMessage, mls.ContentApplication, 0},
			{"private proposal", PrivateProposal(group, 3), mls.WireFormatPrivateMessage, mls.ContentProposal, 0},
			{"public commit", PublicCommit(group, 3, 2), mls.WireFormatPublicMessage, mls.ContentCommit, mls.SenderMember},
			{"external commit", ExternalCommit(suite, group, 3, identity, sig), mls.WireFormatPublicMessage, mls.ContentCommit, mls.SenderNewMemberCommit},
			{"public proposal", PublicProposal(group, 3, 0), mls.WireFormatPublicMessage, mls.ContentProposal, mls.SenderMember},
			{"group info", GroupInfo(suite, group, 3), mls.WireFormatGroupInfo, 0, 0},
			{"welcome", Welcome(suite, kp.Ref), mls.WireFormatWelcome, 0, 0},
		}
		if ct := Ciphertext(Application(group, 3, bytes.Repeat([]byte("y"), 20000))); !bytes.Equal(ct, bytes.Repeat([]byte("y"), 20000)) {
			t.Errorf("Ciphertext gives %d bytes", len(ct))
		}
		for _, c := range cases {
			m, err := mls.ParseMessage(c.b)
			if err != nil {
				t.Fatalf("suite %v: %s: %v", suite, c.name, err)
			}
			if m.WireFormat != c.wire || m.ContentType != c.content || m.SenderType != c.sender {
				t.Errorf("suite %v: %s: got %v %v %v", suite, c.name, m.WireFormat, m.ContentType, m.SenderType)
			}
			if c.wire != mls.WireFormatWelcome && (string(m.GroupID) != group || m.Epoch != 3) {
				t.Errorf("suite %v: %s: group %q epoch %d", suite, c.name, m.GroupID, m.Epoch)
			}
			if c.wire == mls.WireFormatWelcome && (len(m.KeyPackageRefs) != 1 || !bytes.Equal(m.KeyPackageRefs[0], kp.Ref)) {
				t.Errorf("suite %v: welcome refs %x", suite, m.KeyPackageRefs)
			}
		}
	}
}
