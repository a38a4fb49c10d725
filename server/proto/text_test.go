package proto

import (
	"encoding/json"
	"errors"
	"testing"

	"relais/server/id"
)

// TestRoomNamesWithInvisibleCharactersRefused: a room's name, which every
// member reads, cannot reorder or hide its own characters; ordinary names
// in any script pass.
func TestRoomNamesWithInvisibleCharactersRefused(t *testing.T) {
	room := id.NewRoom(id.NewNode())
	for _, c := range []struct {
		name   string
		detail string // "" when accepted
	}{
		{"Paie de décembre", ""},
		{"Συμβούλιο", ""},
		{"مجلس البلدية", ""},
		{"Équipe 🚒 pompiers", ""},
		{"Paie\u202Ecod.exe", TextInvisible}, // right-to-left override
		{"Paie\u2066x\u2069", TextInvisible}, // isolates
		{"Pa\u200Bie", TextInvisible},        // zero-width space
		{"Paie\uFEFF", TextInvisible},        // byte order mark
		{"Paie\u00A0RH", TextInvisible},      // a space that is not one
		{"Paie\u0085", TextControl},          // C1
		{"Paie\x07", TextControl},            // C0
	} {
		for _, typ := range []string{"create_room", "update_room"} {
			name, _ := json.Marshal(c.name)
			frame := `{"t":"` + typ + `","id":"q1","room":"` + room + `","kind":"group","name":` + string(name) + `}`
			_, err := DecodeClient([]byte(frame))
			var e *Error
			switch {
			case c.detail == "" && errors.As(err, &e) && e.Code == CodeNameInvalid:
				t.Errorf("%s %q refused: %v", typ, c.name, err)
			case c.detail != "" && (!errors.As(err, &e) || e.Code != CodeNameInvalid || e.Detail != c.detail):
				t.Errorf("%s %q: %v, want %s (%s)", typ, c.name, err, CodeNameInvalid, c.detail)
			}
		}
	}
}
