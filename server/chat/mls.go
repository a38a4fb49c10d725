package chat

import (
	"context"
	"encoding/base64"
	"errors"
	"math"
	"slices"

	"relais/server/mls"
	"relais/server/proto"
	"relais/server/store"
)

// The node is the MLS Delivery Service (RFC 9420 §16) of encrypted rooms:
// each room is one MLS group whose group id is the room id. The node
// orders commits by epoch, keeps the latest GroupInfo, routes Welcomes,
// and tracks which devices the group holds from what it can check — the
// public framing of messages, the KeyPackageRefs of Welcomes, sessions —
// so that it can refuse early what clients would reject anyway. It never
// holds a key that opens anything; membership itself is cryptographic and
// checked by the clients.
//
// Epoch 0 is the founder's private draft: the group is published by its
// first commit (0 → 1), whose sender founds it. Application messages are
// relayed only from devices in the group, for the current epoch.

// notInGroup refuses a message from a device the group does not hold.
func notInGroup() error {
	return proto.Errorf(proto.CodeNotInGroup, "this device is not in the room's group: wait for a Welcome or join with group_info")
}

// commitInput is an mls frame decoded and checked on its own, before the
// writer's transaction.
type commitInput struct {
	msg       *mls.Message
	groupInfo []byte
	suite     mls.CipherSuite
	welcome   []byte
	refs      [][]byte // KeyPackageRefs of the Welcome
	removes   []store.DeviceRef
}

// decodeCommit decodes an mls frame: a commit of the room's group, the
// GroupInfo of the epoch it makes, and an optional Welcome in the same
// suite.
func decodeCommit(f *proto.ClientFrame) (*commitInput, error) {
	raw, err := proto.DecodeBase64("data", f.Data)
	if err != nil {
		return nil, err
	}
	m, err := mls.ParseMessage(raw)
	if err != nil {
		return nil, mlsRefusal("data", err)
	}
	if m.WireFormat != mls.WireFormatPublicMessage && m.WireFormat != mls.WireFormatPrivateMessage {
		return nil, refuseMLS(detailWireFormat, "data is a %v, not a commit", m.WireFormat)
	}
	if m.ContentType != mls.ContentCommit {
		return nil, refuseMLS(detailWrongContent, "data is a %v, not a commit: application messages go in send, proposals are committed by value", m.ContentType)
	}
	if string(m.GroupID) != f.Room {
		return nil, refuseMLS(detailWrongGroup, "the commit is for another group than this room's")
	}
	if m.Epoch == math.MaxUint64 {
		return nil, refuseMLS(detailWrongEpoch, "the group has run out of epochs")
	}
	in := &commitInput{msg: m}
	if in.groupInfo, err = proto.DecodeBase64("group_info", f.GroupInfo); err != nil {
		return nil, err
	}
	gi, err := mls.ParseGroupInfo(in.groupInfo)
	if err != nil {
		return nil, mlsRefusal("group_info", err)
	}
	switch {
	case string(gi.GroupID) != f.Room:
		return nil, refuseMLS(detailWrongGroup, "the GroupInfo is for another group than this room's")
	case gi.Epoch != m.Epoch+1:
		return nil, refuseMLS(detailWrongEpoch, "the GroupInfo is for epoch %d; the commit makes epoch %d", gi.Epoch, m.Epoch+1)
	case !suiteAllowed(gi.CipherSuite):
		return nil, refuseMLS(detailSuite, "cipher suite %v is not accepted here", gi.CipherSuite)
	}
	in.suite = gi.CipherSuite
	if f.Welcome != "" {
		if in.welcome, err = proto.DecodeBase64("welcome", f.Welcome); err != nil {
			return nil, err
		}
		w, err := mls.ParseMessage(in.welcome)
		if err != nil {
			return nil, mlsRefusal("welcome", err)
		}
		switch {
		case w.WireFormat != mls.WireFormatWelcome:
			return nil, refuseMLS(detailWireFormat, "welcome is a %v", w.WireFormat)
		case w.CipherSuite != in.suite:
			return nil, refuseMLS(detailSuite, "the Welcome's suite %v is not the group's %v", w.CipherSuite, in.suite)
		case len(w.KeyPackageRefs) == 0:
			return nil, refuseMLS(string(mls.CodeMalformed), "the Welcome is for nobody")
		}
		in.refs = w.KeyPackageRefs
	}
	for _, d := range f.Removes {
		user, device, _ := proto.ParseDeviceIdentity(d) // checked by proto
		ref := store.DeviceRef{User: user, Device: device}
		if !slices.Contains(in.removes, ref) {
			in.removes = append(in.removes, ref)
		}
	}
	return in, nil
}

// Commit orders a commit of an encrypted room's group. It is accepted only
// for the room's current epoch (else epoch_mismatch with that epoch), from
// a device of a joined member that the group holds — or, for an external
// commit, from a registered device of a joined member, which it adds. It
// is appended to the room's log as an mls_commit event, the room moves to
// the next epoch, its GroupInfo is kept for external joins, and its
// Welcome is routed to the devices whose KeyPackages it names. Like send,
// f.ID is an idempotency key and the answer is an ack.
func (s *Service) Commit(ctx context.Context, a Actor, f *proto.ClientFrame) (proto.Ack, error) {
	in, err := decodeCommit(f)
	if err != nil {
		return proto.Ack{}, err
	}
	// KeyPackages of other administrations' users, vouched for by them.
	if err := s.resolveRemoteRefs(ctx, a, f, uint16(in.suite), in.refs); err != nil {
		return proto.Ack{}, err
	}
	self := store.DeviceRef{User: a.User, Device: a.Device}
	var ack proto.Ack
	err = s.update(ctx, func(tx *store.Tx) error {
		if prev, ok, err := replayed(tx, a, f); ok || err != nil {
			ack = prev
			return err
		}
		room, _, err := access(tx, a, f.Room, ActSend)
		if err != nil {
			return err
		}
		if !room.Encrypted {
			return proto.Errorf(proto.CodeBadRequest, "this room is not encrypted")
		}
		g, err := tx.MLSGroup(f.Room)
		if err != nil {
			return err
		}
		if in.msg.Epoch != g.Epoch {
			return proto.EpochMismatch(g.Epoch)
		}
		if g.Suite != 0 && g.Suite != uint16(in.suite) {
			return refuseMLS(detailSuite, "the group's cipher suite is %v", mls.CipherSuite(g.Suite))
		}
		external := in.msg.SenderType == mls.SenderNewMemberCommit
		switch {
		case external:
			if g.Epoch == 0 {
				return proto.Errorf(proto.CodeConflict, "the group is not published yet: wait for a Welcome")
			}
			// A device of another administration is vouched for by the
			// administration that forwarded its commit.
			if _, err := tx.DeviceKey(a.User, a.Device); errors.Is(err, store.ErrNotFound) && !s.remoteUser(a.User) {
				return proto.Errorf(proto.CodeForbidden, "upload this device's KeyPackages (which registers its key) before joining")
			} else if err != nil {
				return err
			}
			if in.welcome != nil || len(in.removes) > 0 {
				return proto.Errorf(proto.CodeBadRequest, "an external commit adds its sender and nobody else, and removes nobody")
			}
		case g.Epoch == 0:
			// The first commit publishes the group: its sender founds it.
		case !tx.InGroup(f.Room, self):
			return notInGroup()
		}
		if !external {
			if err := checkRemoves(tx, self, f.Room, in.removes, s.remoteUser); err != nil {
				return err
			}
			if left := pendingDevices(tx, f.Room, g.Pending, in.removes); len(left) > 0 {
				return proto.RemovePending(left)
			}
		}
		targets, consumed, err := welcomeTargets(tx, f.Room, uint16(in.suite), in.refs)
		if err != nil {
			return err
		}

		epoch := g.Epoch
		ev := &proto.Event{Room: f.Room, From: a.User, Dev: a.Device, CID: f.ID, Type: proto.EvMLSCommit, Data: f.Data, Epoch: &epoch}
		se, err := s.appendEvent(tx, ev, 0, proto.MemberNone, "")
		if err != nil {
			return err
		}
		if external || g.Epoch == 0 {
			if err := tx.SetGroupDevice(f.Room, self, true); err != nil {
				return err
			}
		}
		for _, d := range in.removes {
			if err := tx.SetGroupDevice(f.Room, d, false); err != nil {
				return err
			}
			if _, err := tx.DeleteWelcome(d, f.Room); err != nil {
				return err
			}
		}
		for _, d := range targets {
			if err := tx.SetGroupDevice(f.Room, d, true); err != nil {
				return err
			}
		}
		g.Epoch++
		g.Suite = uint16(in.suite)
		g.Pending = slices.DeleteFunc(g.Pending, func(u string) bool { return !tx.HasGroupDevices(f.Room, u) })
		if err := tx.PutMLSGroup(f.Room, g); err != nil {
			return err
		}
		if err := tx.PutGroupInfo(f.Room, in.groupInfo); err != nil {
			return err
		}
		if err := s.routeWelcome(tx, f, se.Seq, g.Epoch, in.welcome, targets, consumed); err != nil {
			return err
		}
		if err := tx.PutIdem(a.User, f.ID, f.Room, se.Seq, se.TS); err != nil {
			return err
		}
		ack = proto.Ack{T: proto.TAck, ID: f.ID, Room: f.Room, Seq: se.Seq, TS: se.TS}
		return nil
	})
	return ack, err
}

// checkRemoves checks the devices a commit says it removes: each must be
// in the group, and be the committer's own other device, a device of
// someone no longer in the room, or a signed-out device. Removing a
// device of someone in the room takes removing them from the room first,
// so that the room's membership and the group's agree. A device of
// another administration has no session here: only its membership says
// whether it may be removed.
func checkRemoves(tx *store.Tx, self store.DeviceRef, roomID string, removes []store.DeviceRef, remote func(string) bool) error {
	for _, d := range removes {
		name := proto.DeviceIdentity(d.User, d.Device)
		switch {
		case !tx.InGroup(roomID, d):
			return proto.Errorf(proto.CodeConflict, "device %s is not in the group", name)
		case d == self:
			return proto.Errorf(proto.CodeBadRequest, "a device cannot commit its own removal: leave the room, another member removes it")
		case d.User == self.User, !remote(d.User) && !tx.HasSession(d.User, d.Device):
			continue
		}
		m, err := tx.Member(roomID, d.User)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil && (m.State == store.Joined || m.State == store.Invited) {
			return proto.Errorf(proto.CodeForbidden, "device %s belongs to someone in the room: remove them from the room first", name)
		}
	}
	return nil
}

// pendingDevices returns the devices of the pending users (people who
// left) that removes leaves in the group, as MLS identities.
func pendingDevices(tx *store.Tx, roomID string, pending []string, removes []store.DeviceRef) []string {
	var out []string
	for _, u := range pending {
		for _, d := range tx.GroupDevices(roomID, u) {
			if !slices.Contains(removes, d) {
				out = append(out, proto.DeviceIdentity(d.User, d.Device))
			}
		}
	}
	return out
}

// welcomeTargets maps the KeyPackageRefs of a Welcome to the devices they
// belong to, which must be of people joined to or invited in the room. It
// also returns the refs the Welcome consumes (all but last-resort ones).
func welcomeTargets(tx *store.Tx, roomID string, suite uint16, refs [][]byte) (targets []store.DeviceRef, consumed [][]byte, err error) {
	for _, ref := range refs {
		r, err := tx.KeyPackageRef(ref)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, refuseMLS(detailUnknownPackage, "the Welcome names a KeyPackage this node did not hand out")
		}
		if err != nil {
			return nil, nil, err
		}
		m, err := tx.Member(roomID, r.User)
		if err != nil || (m.State != store.Joined && m.State != store.Invited) {
			return nil, nil, proto.Errorf(proto.CodeForbidden, "the Welcome is for %s, who is not in the room: invite them first", r.User)
		}
		d := store.DeviceRef{User: r.User, Device: r.Device}
		if !slices.Contains(targets, d) {
			targets = append(targets, d)
		}
		if !r.LastResort {
			consumed = append(consumed, ref)
			// Used here even if it was not claimed here: never hand it out.
			if err := tx.DeleteKeyPackage(r.User, r.Device, suite, ref); err != nil {
				return nil, nil, err
			}
		}
	}
	return targets, consumed, nil
}

// routeWelcome keeps a Welcome for each device it adds until the device
// acknowledges it, and pushes it to them once committed.
func (s *Service) routeWelcome(tx *store.Tx, f *proto.ClientFrame, seq, epoch uint64, welcome []byte, targets []store.DeviceRef, consumed [][]byte) error {
	if len(targets) == 0 {
		return nil
	}
	if err := tx.PutWelcome(store.Welcome{Room: f.Room, Seq: seq, Epoch: epoch, Data: welcome}, targets); err != nil {
		return err
	}
	for _, ref := range consumed {
		if err := tx.DeleteKeyPackageRef(ref); err != nil {
			return err
		}
	}
	var remote []store.DeviceRef
	for _, d := range targets {
		if s.remoteUser(d.User) {
			remote = append(remote, d)
			continue
		}
		frame := proto.Encode(proto.WelcomeFrame{T: proto.TWelcome, Room: f.Room, Device: d.Device, Epoch: epoch, Seq: seq, Data: f.Welcome})
		tx.OnCommit(func() { s.PublishUser(d.User, frame) })
	}
	if len(remote) > 0 {
		// Kept here too until the devices' administration took it.
		w := store.Welcome{Room: f.Room, Seq: seq, Epoch: epoch, Data: welcome}
		tx.OnCommit(func() { go s.forwardWelcome(w, remote) })
	}
	return nil
}

// Welcomes returns the welcome frames waiting for the actor's device, for
// a resync.
func (s *Service) Welcomes(a Actor) ([][]byte, error) {
	var out [][]byte
	err := s.db.View(func(tx *store.Tx) error {
		ws, err := tx.Welcomes(store.DeviceRef{User: a.User, Device: a.Device})
		for _, w := range ws {
			out = append(out, proto.Encode(proto.WelcomeFrame{T: proto.TWelcome, Room: w.Room, Device: a.Device,
				Epoch: w.Epoch, Seq: w.Seq, Data: base64.StdEncoding.EncodeToString(w.Data)}))
		}
		return err
	})
	return out, err
}

// AckWelcome forgets the Welcome to a room the actor's device has
// processed. Acknowledging twice is harmless.
func (s *Service) AckWelcome(ctx context.Context, a Actor, roomID string) error {
	return s.update(ctx, func(tx *store.Tx) error {
		_, err := tx.DeleteWelcome(store.DeviceRef{User: a.User, Device: a.Device}, roomID)
		return err
	})
}

// GroupInfo returns the latest GroupInfo of an encrypted room's group and
// its epoch, for a device of a joined member to join by external commit.
// For a room homed elsewhere it is asked of the home, the room's
// Delivery Service.
func (s *Service) GroupInfo(a Actor, roomID string) (proto.GroupInfoAnswer, error) {
	if s.Remote(roomID) {
		return s.remoteGroupInfo(a, roomID)
	}
	var out proto.GroupInfoAnswer
	err := s.db.View(func(tx *store.Tx) error {
		room, _, err := access(tx, a, roomID, ActRead)
		if err != nil {
			return err
		}
		if !room.Encrypted {
			return proto.Errorf(proto.CodeBadRequest, "this room is not encrypted")
		}
		g, err := tx.MLSGroup(roomID)
		if err != nil {
			return err
		}
		out = proto.GroupInfoAnswer{Room: roomID, Epoch: g.Epoch}
		if gi := tx.GroupInfo(roomID); gi != nil {
			out.GroupInfo = base64.StdEncoding.EncodeToString(gi)
		}
		return nil
	})
	return out, err
}

// parseApplication decodes the data of an encrypted event: an MLS
// application message (always a PrivateMessage) of the room's group.
func parseApplication(roomID, data string) (*mls.Message, error) {
	raw, err := proto.DecodeBase64("data", data)
	if err != nil {
		return nil, err
	}
	m, err := mls.ParseMessage(raw)
	if err != nil {
		return nil, mlsRefusal("data", err)
	}
	if m.WireFormat != mls.WireFormatPrivateMessage || m.ContentType != mls.ContentApplication {
		return nil, refuseMLS(detailWrongContent, "encrypted events carry MLS application messages; commits go in the mls frame")
	}
	if string(m.GroupID) != roomID {
		return nil, refuseMLS(detailWrongGroup, "the message is for another group than this room's")
	}
	return m, nil
}

// checkApplication checks, in the writer's transaction, that an
// application message can be relayed: its device is in the group, it is
// for the current epoch (so every member can decrypt it), and nobody who
// left the room still holds the group's keys.
func checkApplication(tx *store.Tx, a Actor, roomID string, m *mls.Message) error {
	if !tx.InGroup(roomID, store.DeviceRef{User: a.User, Device: a.Device}) {
		return notInGroup()
	}
	g, err := tx.MLSGroup(roomID)
	if err != nil {
		return err
	}
	if m.Epoch != g.Epoch {
		return proto.EpochMismatch(g.Epoch)
	}
	if len(g.Pending) > 0 {
		return proto.RemovePending(pendingDevices(tx, roomID, g.Pending, nil))
	}
	return nil
}

// mlsMembership keeps an encrypted room's group in step with a change of
// userID's membership: someone who leaves while devices of theirs are in
// the group makes their removal pending (nothing else may be sent until
// it is committed); someone who comes back before that is no longer
// pending. Welcomes to a room one has left are dropped.
func mlsMembership(tx *store.Tx, roomID, userID string, state store.MemberState) error {
	in := state == store.Joined || state == store.Invited
	if !in {
		keys, err := tx.DeviceKeys(userID)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := tx.DeleteWelcome(store.DeviceRef{User: userID, Device: k.DeviceID}, roomID); err != nil {
				return err
			}
		}
		// At a room's home, the devices of another administration's
		// user are known by the group only.
		for _, d := range tx.GroupDevices(roomID, userID) {
			if _, err := tx.DeleteWelcome(d, roomID); err != nil {
				return err
			}
		}
	}
	if !tx.HasGroupDevices(roomID, userID) {
		return nil
	}
	g, err := tx.MLSGroup(roomID)
	if err != nil {
		return err
	}
	pending := slices.Contains(g.Pending, userID)
	switch {
	case !in && !pending:
		g.Pending = append(g.Pending, userID)
	case in && pending:
		g.Pending = slices.DeleteFunc(g.Pending, func(u string) bool { return u == userID })
	default:
		return nil
	}
	return tx.PutMLSGroup(roomID, g)
}

// mlsEpoch returns the epoch of an encrypted room's group for room frames.
func mlsEpoch(tx *store.Tx, roomID string) (*uint64, error) {
	g, err := tx.MLSGroup(roomID)
	if err != nil {
		return nil, err
	}
	return &g.Epoch, nil
}
