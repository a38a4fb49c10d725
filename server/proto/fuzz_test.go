package proto

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeClient: the frame decoder never panics, and a frame it accepts
// has a known type, an id of bounded size, and decodes the same way again
// after a round trip through JSON.
func FuzzDecodeClient(f *testing.F) {
	for _, s := range []string{
		`{"t":"sync","id":"s1","rooms":{"r-nabcdefgh-abcdefghijklmnop":4}}`,
		`{"t":"send","id":"c1","room":"r-nabcdefgh-abcdefghijklmnop","type":"text","body":"Bonjour","mentions":["u-nabcdefgh-abcdefghijklmnop"]}`,
		`{"t":"send","id":"c2","room":"r-nabcdefgh-abcdefghijklmnop","type":"react","target":3,"key":"👍"}`,
		`{"t":"create_room","id":"q1","kind":"group","name":"G","externals":true,"users":["u-nabcdefgh-abcdefghijklmnop"]}`,
		`{"t":"history","id":"h","room":"r-nabcdefgh-abcdefghijklmnop","after":0,"limit":50}`,
		`{"t":"typing","room":"r-nabcdefgh-abcdefghijklmnop","on":true}`,
		`{"t":"call","room":"r-nabcdefgh-abcdefghijklmnop","data":"AAEAAg=="}`,
		`{"t":"turn","id":"t1","room":"r-nabcdefgh-abcdefghijklmnop"}`,
		`{"t":"search","id":"f1","q":"réunion budg","room":"r-nabcdefgh-abcdefghijklmnop","limit":20}`,
		`{"t":"search","id":"f2","q":"dossier","cursor":"1764686400000.12.r-nabcdefgh-abcdefghijklmnop"}`,
		`{"t":"ping"}`, `{}`, `[]`, `null`, `{"t":"send"`, `{"t":"x","id":"` + "\x00" + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeClient(b)
		if err != nil {
			if AsError(err) == nil {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		if fr.T == "" || len(fr.ID) > MaxClientID {
			t.Fatalf("accepted %+v", fr)
		}
		again, err := json.Marshal(fr)
		if err != nil {
			t.Fatal(err)
		}
		fr2, err := DecodeClient(again)
		if err != nil {
			t.Fatalf("re-encoded frame refused: %v\n%s", err, again)
		}
		if fr2.T != fr.T || fr2.ID != fr.ID || fr2.Room != fr.Room || fr2.Body != fr.Body {
			t.Fatalf("round trip changed the frame: %+v vs %+v", fr, fr2)
		}
	})
}
