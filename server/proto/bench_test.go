package proto_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"relais/server/proto"
)

// A "send" of an encrypted message as a browser sends it: an MLS
// ciphertext of a short message (about 160 bytes, base64).
var sendFrame = []byte(`{"t":"send","id":"c-1763900000123-42","room":"r-nabcdefgh-abcdefghijklmnop","type":"encrypted","data":"` +
	base64.StdEncoding.EncodeToString([]byte(strings.Repeat("ciphertext ", 15))) + `"}`)

// A "send" of a text message in a forum, with a mention.
var textFrame = []byte(`{"t":"send","id":"c-2","room":"r-nabcdefgh-abcdefghijklmnop","type":"text","body":"Bonjour **à tous**, la réunion de 15 h est déplacée en salle 204.","mentions":["u-nabcdefgh-abcdefghijklmnop"]}`)

func BenchmarkDecodeClient(b *testing.B) {
	for _, c := range []struct {
		name  string
		frame []byte
	}{{"encrypted", sendFrame}, {"text", textFrame}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.frame)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := proto.DecodeClient(c.frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	ev := proto.Event{T: proto.TEvent, Room: "r-nabcdefgh-abcdefghijklmnop", Seq: 123456, TS: 1763900000123,
		From: "u-nabcdefgh-abcdefghijklmnop", Dev: "d-abcdefghijklmnop", CID: "c-1763900000123-42", Type: proto.EvEncrypted,
		Data: base64.StdEncoding.EncodeToString([]byte(strings.Repeat("ciphertext ", 15)))}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = len(proto.Encode(&ev))
	}
	b.SetBytes(int64(n))
}

func BenchmarkEnvelope(b *testing.B) {
	frame := proto.Encode(proto.Event{T: proto.TEvent, Room: "r-nabcdefgh-abcdefghijklmnop", Seq: 1, Type: proto.EvText, Body: "Bonjour"})
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = proto.AppendEnvelope(buf[:0], proto.Envelope{Kind: proto.EnvEvent, Seq: 1, Frame: frame})
		if _, err := proto.ParseEnvelope(buf); err != nil {
			b.Fatal(err)
		}
	}
}
