package bench

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"relais/server/client"
	"relais/server/mls/mlsframe"
	"relais/server/proto"
)

// The encrypted rooms of dm and fanout get an MLS group the way clients
// make one, through the node's Delivery Service and its real rules: the
// room's founder publishes the group (its first commit), the other
// senders register KeyPackages and join by external commit. The MLS
// itself is make-believe (package mlsframe): the node parses the framing
// and never decrypts, so what it does per message is what it does for a
// real client.

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// publishGroup makes founder's device found the MLS group of room, an
// encrypted room it is joined to (epoch 0 → 1).
func publishGroup(ctx context.Context, founder *member, room string) error {
	return call(ctx, founder, proto.TMLS, map[string]any{"room": room, "data": b64(mlsframe.PrivateCommit(room, 0)),
		"group_info": b64(mlsframe.GroupInfo(mlsframe.Suite, room, 1))}, nil)
}

// joinGroup registers KeyPackages of m's device and adds it to the
// published group of room by external commit, retrying while other
// commits move the epoch.
func joinGroup(ctx context.Context, m *member, room string) error {
	sig := mlsframe.SignatureKey()
	identity := proto.DeviceIdentity(m.u.ID, m.conn.device())
	kp := b64(mlsframe.ValidKeyPackage(mlsframe.Suite, identity, sig))
	if err := call(ctx, m, proto.TKeyPackages, map[string]any{"key_packages": []string{kp}, "last_resort": kp}, nil); err != nil {
		return err
	}
	for range 100 {
		epoch, err := groupEpoch(ctx, m, room)
		if err != nil {
			return err
		}
		err = call(ctx, m, proto.TMLS, map[string]any{"room": room, "data": b64(mlsframe.ExternalCommit(mlsframe.Suite, room, epoch, identity, sig)),
			"group_info": b64(mlsframe.GroupInfo(mlsframe.Suite, room, epoch+1))}, nil)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != proto.CodeEpochMismatch {
			return err
		}
	}
	return fmt.Errorf("%s: could not join the group of %s: its epoch keeps moving", m.u.Name, room)
}

// groupEpoch returns the current epoch of room's group.
func groupEpoch(ctx context.Context, m *member, room string) (uint64, error) {
	var gi proto.GroupInfoAnswer
	err := call(ctx, m, proto.TGroupInfo, map[string]any{"room": room}, &gi)
	return gi.Epoch, err
}

// encrypted returns the base64 of an MLS application message of room at
// epoch whose ciphertext is as long as a text of size bytes once
// encrypted (AES-GCM: the text and a 16-byte tag). A sender sends the
// same one again and again: the node relays it without decrypting.
func encrypted(room string, epoch uint64, size int) string {
	return b64(mlsframe.Application(room, epoch, mlsframe.Random(size+16)))
}
