package client

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"relais/server/proto"
)

// nodeFrames are frames as the node encodes them (proto.Encode): the
// direct decoder must take every one of them, or it speeds up nothing.
func nodeFrames() [][]byte {
	name, yes := "Salle <1> & \"co\"", true
	return [][]byte{
		proto.Encode(&proto.Event{T: proto.TEvent, Room: "r1", Seq: 42, TS: 1763900000000, From: "u1", Dev: "d1", CID: "c-1", Type: proto.EvText,
			Body: "Bonjour à tous 👋 <b>&</b>\n\t\"cité\" \\ \u2028 fin", Mentions: []string{"u2", "u3"},
			Reactions: map[string][]string{"👍": {"u2"}}}),
		proto.Encode(&proto.Event{T: proto.TEvent, Room: "r1", Seq: 43, TS: 1, From: "u1", Type: proto.EvEncrypted, Data: strings.Repeat("QUJD", 60),
			File: &proto.File{ID: "f1", Size: 1 << 20}}),
		proto.Encode(&proto.Event{T: proto.TEvent, Room: "r1", Seq: 44, From: "u1", Type: "create", Name: &name, Encrypted: &yes}),
		proto.Encode(proto.Ack{T: proto.TAck, ID: "q1", Room: "r1", Seq: 44, TS: 1763900000001}),
		proto.Encode(proto.ErrorFrame{T: proto.TError, ID: "q2", Code: proto.CodeForbidden, Message: "non"}),
		proto.Encode(proto.Room{T: proto.TRoom, ID: "r1", Kind: "group", Name: name, Role: "owner", State: "joined"}),
		[]byte(`{"t":"gap","room":"r1","first":1,"last":80}`),
		[]byte(`{"t":"typing","room":"r1","user":"u2","on":true}`),
		[]byte(`{"t":"synced","id":"q3"}`),
	}
}

func TestFrameDecodeTakesNodeFrames(t *testing.T) {
	for _, b := range nodeFrames() {
		var fast Frame
		if !fast.decodeFast(b) {
			t.Errorf("left to encoding/json: %s", b)
			continue
		}
		var want Frame
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Errorf("%s\ndirect:        %+v\nencoding/json: %+v", b, fast, want)
		}
	}
}

// FuzzFrameDecode: whatever the input, Frame.unmarshal gives exactly what
// encoding/json gives, error or frame.
func FuzzFrameDecode(f *testing.F) {
	for _, b := range nodeFrames() {
		f.Add(b)
	}
	for _, s := range []string{
		`{"T":"ev"}`, `{"seq":01}`, `{"seq":-1}`, `{"ts":-0}`, `{"ts":-9223372036854775808}`, `{"seq":18446744073709551616}`,
		`{"seq":1e3}`, `{"body":"\ud83d\udc4b"}`, `{"body":"\ud800"}`, `{"body":"a\u0000b"}`, "{\"body\":\"\xff\"}",
		`{"t":null}`, `{"on":1}`, `{"x":[1,{"y":[true,null,-0.5e+3]}],"t":"a"}`, `{"t":"a",}`, `{"t":"a"} x`, ` {"t" : "a" } `,
		`null`, `[]`, `{"t":"a","t":"b"}`, `{"ſeq":1}`, `{"\u0074":"a"}`, `{"raw":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got, want Frame
		gotErr := got.unmarshal(b)
		wantErr := json.Unmarshal(b, &want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: error %v, encoding/json says %v", b, gotErr, wantErr)
		}
		if gotErr != nil {
			return
		}
		want.Raw = b
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\ngot  %+v\nwant %+v", b, got, want)
		}
	})
}

func BenchmarkFrameDecode(b *testing.B) {
	line := nodeFrames()[0]
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var f Frame
			if err := f.unmarshal(line); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var f Frame
			if err := json.Unmarshal(line, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
}
