package chat

import (
	"relais/server/proto"
	"relais/server/store"
)

// Calls happen only in end-to-end encrypted rooms, between their joined
// members: their signalling is an MLS application message of the room's
// group, so the node relays what it can neither read nor alter, and there
// is no way to address anyone but the members of a room one is in.

// Signal relays one signalling message of a call to the room's connected
// members without storing it (PROTOCOL.md, "Calls"). It is checked like
// an encrypted message (chat/mls.go): a PrivateMessage of the room's
// group, from a device in the group, in the current epoch, while nobody
// who left still holds the keys.
func (s *Service) Signal(a Actor, roomID, data string) error {
	app, err := parseApplication(roomID, data)
	if err != nil {
		return err
	}
	err = s.db.View(func(tx *store.Tx) error {
		if err := callRoom(tx, a, roomID); err != nil {
			return err
		}
		return checkApplication(tx, a, roomID, app)
	})
	if err != nil {
		return err
	}
	s.publishEphemeral(roomID, proto.Encode(proto.CallSignal{T: proto.TCall, Room: roomID, From: a.User, Dev: a.Device, Data: data}))
	return nil
}

// CallAccess checks that the actor may call in a room: a joined member
// allowed to send, of an encrypted room. The TURN credentials of a call
// are handed out only after it.
func (s *Service) CallAccess(a Actor, roomID string) error {
	return s.db.View(func(tx *store.Tx) error { return callRoom(tx, a, roomID) })
}

func callRoom(tx *store.Tx, a Actor, roomID string) error {
	room, _, err := access(tx, a, roomID, ActSend)
	if err != nil {
		return err
	}
	if !room.Encrypted {
		return proto.Errorf(proto.CodeForbidden, "calls are end-to-end encrypted: only in encrypted rooms")
	}
	return nil
}
