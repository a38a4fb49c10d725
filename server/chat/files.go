package chat

import (
	"encoding/json"
	"errors"
	"fmt"

	"relais/server/proto"
	"relais/server/store"
)

// Attachments as seen from rooms: the files service (package files) keeps
// the files and the antivirus verdicts; the chat service asks it about the
// files that events carry (Files) and lets it check access and report
// verdicts to rooms through the functions below.

// Access checks, inside tx, that the actor is joined to the room and that
// their role allows act, with the errors of the websocket requests:
// not_found for a private room they are not in, not_member for a forum
// they have not joined, forbidden for their role. The files service uses
// it to authorize uploads (ActSend) and downloads (ActRead).
func Access(tx *store.Tx, a Actor, roomID string, act Action) (store.Room, error) {
	r, _, err := access(tx, a, roomID, act)
	return r, err
}

// attach asks the files service for the metadata of the file a send
// carries.
func (s *Service) attach(tx *store.Tx, a Actor, f *proto.ClientFrame) (*proto.File, error) {
	fl, err := s.files.Attach(tx, a.User, f.Room, f.File.ID)
	if err != nil {
		return nil, err
	}
	return &fl, nil
}

// AppendFileState reports the antivirus verdict on a posted file to its
// room, inside the transaction that records the verdict: it updates the
// stored copy of the file event seq (file.state, code, reason; a
// quarantined file loses its thumbnail), like an edit does, and appends a
// file_state event targeting it, through the normal path (ordered, stored,
// fanned out). A file event already deleted is left alone.
func (s *Service) AppendFileState(tx *store.Tx, roomID string, seq uint64, state proto.File) error {
	rec, err := tx.Event(roomID, seq)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	t := &targetEvent{rec: rec}
	if err := json.Unmarshal(rec.Frame, &t.ev); err != nil {
		return fmt.Errorf("decode stored event %s/%d: %w", roomID, seq, err)
	}
	if t.ev.Deleted || t.ev.File == nil || t.ev.File.ID != state.ID {
		return nil
	}
	t.ev.File.State, t.ev.File.Code, t.ev.File.Reason, t.ev.File.Checked = state.State, state.Code, state.Reason, state.Checked
	if state.State == proto.FileQuarantined {
		t.ev.File.Thumb = false
	}
	if err := t.save(tx); err != nil {
		return err
	}
	ev := &proto.Event{Room: roomID, Type: proto.EvFileState, Target: seq,
		File: &proto.File{ID: state.ID, State: state.State, Code: state.Code, Reason: state.Reason, Checked: state.Checked}}
	_, err = s.appendEvent(tx, ev, 0, proto.MemberNone, "")
	return err
}
