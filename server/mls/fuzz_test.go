package mls

import (
	"bytes"
	"errors"
	"testing"
	"unsafe"
)

// aliases reports whether sub lies inside b.
func aliases(sub, b []byte) bool {
	if len(sub) == 0 {
		return true
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return p >= start && p+uintptr(len(sub)) <= start+uintptr(len(b))
}

func seed(f *testing.F) {
	for _, b := range allInputs(f) {
		f.Add(b)
	}
	f.Add(publicCommit(memberSender, commitWithPath(1)))
	f.Add(publicProposal(memberSender, enc{}.u16(uint16(ProposalPSK)).u8(2).u8(1).str("group").u64(3).str("nonce")))
	f.Add(keyPackageMsg(keyPackageBody(1, 1, leafNodeKP(enc{}.u16(2).vec(enc{}.str("c1").str("c2")), sourceKeyPackage))))
}

// checkError fails unless err is nil or an *Error with a known code.
func checkError(t *testing.T, err error) {
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	switch e.Code {
	case CodeMalformed, CodeUnsupportedVersion, CodeUnsupportedWireFormat, CodeUnsupportedCipherSuite, CodeTooLarge:
	default:
		t.Fatalf("unknown code in %v", err)
	}
}

func FuzzParseMessage(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		checkError(t, err)
		if err != nil {
			return
		}
		for _, s := range [][]byte{m.GroupID, m.AuthenticatedData} {
			if !aliases(s, b) || cap(s) != len(s) {
				t.Fatal("field does not alias the input with a clipped capacity")
			}
		}
		// The encoding is self-delimiting: no proper prefix and no
		// extension of a valid message is valid.
		if len(b) > 0 {
			if _, err := ParseMessage(b[:len(b)-1]); err == nil {
				t.Fatal("a proper prefix of a valid message parses")
			}
		}
		if _, err := ParseMessage(append(bytes.Clone(b), 0)); err == nil {
			t.Fatal("a valid message with a trailing byte parses")
		}
		switch m.WireFormat {
		case WireFormatKeyPackage:
			kp, err := ParseKeyPackage(b)
			if err != nil || !bytes.Equal(kp.Ref, m.KeyPackage.Ref) {
				t.Fatalf("ParseKeyPackage disagrees: %v", err)
			}
		case WireFormatGroupInfo:
			if _, err := ParseGroupInfo(b); err != nil {
				t.Fatalf("ParseGroupInfo disagrees: %v", err)
			}
		}
	})
}

func FuzzParseKeyPackage(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		kp, err := ParseKeyPackage(b)
		checkError(t, err)
		if err != nil {
			return
		}
		if !bytes.Equal(kp.Encoded, b[4:]) {
			t.Fatal("Encoded is not the input without its header")
		}
		want, _ := refHash(kp.CipherSuite, keyPackageRefLabel, kp.Encoded)
		if !bytes.Equal(kp.Ref, want) {
			t.Fatal("Ref mismatch")
		}
		for _, s := range [][]byte{kp.InitKey, kp.EncryptionKey, kp.SignatureKey, kp.CredentialIdentity, kp.Signature} {
			if !aliases(s, b) {
				t.Fatal("field does not alias the input")
			}
		}
		m, err := ParseMessage(b)
		if err != nil || !bytes.Equal(m.KeyPackage.Ref, kp.Ref) {
			t.Fatalf("ParseMessage disagrees: %v", err)
		}
	})
}

func TestAllocations(t *testing.T) {
	v := loadVectors(t)
	for _, name := range []string{"application_1k", "commit_add_public", "commit_add_private", "proposal_add_public", "commit_external_join"} {
		for _, file := range []string{"suite1.json", "suite83.json"} {
			b := findMessage(t, v[file], name)
			allocs := testing.AllocsPerRun(100, func() {
				if _, err := ParseMessage(b); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > 1 {
				t.Errorf("%s/%s: %.0f allocations, want at most 1", file, name, allocs)
			}
		}
	}
}

func BenchmarkParseMessage(b *testing.B) {
	v := loadVectors(b)
	for _, name := range []string{"application_1k", "commit_add_public"} {
		msg := findMessage(b, v["suite1.json"], name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseMessage(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
