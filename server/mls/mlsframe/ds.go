package mlsframe

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"relais/server/client"
	"relais/server/mls"
	"relais/server/proto"
)

// Helpers that drive the node's Delivery Service over a connection, for
// tests and benchmarks that need devices in a room's MLS group before
// they can send "encrypted" events there. The MLS is make-believe (see
// the package comment); the node's rules are the real ones.

// Suite is the cipher suite of the groups made by these helpers.
const Suite = mls.CipherSuiteXWingAES256GCMSHA512Ed25519

// request sends a request with a random id (mls frames are idempotent by
// id per user, so ids must not repeat across a user's connections) and
// decodes the data of its result into out.
func request(ctx context.Context, c *client.Conn, t string, fields map[string]any, out any) error {
	id := "mlsframe-" + hex.EncodeToString(Random(8))
	frame := map[string]any{"t": t, "id": id}
	maps.Copy(frame, fields)
	f, err := c.Request(ctx, id, frame)
	if err != nil || out == nil {
		return err
	}
	var res struct {
		Data json.RawMessage `json:"data"`
	}
	if err := f.Decode(&res); err != nil {
		return err
	}
	return json.Unmarshal(res.Data, out)
}

func identity(c *client.Conn) string { return proto.DeviceIdentity(c.Hello.User.ID, c.Hello.Device) }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// Register uploads n KeyPackages and a last-resort one of the connection's
// device, which binds sig as its signature key.
func Register(ctx context.Context, c *client.Conn, sig []byte, n int) error {
	kps := make([]string, n)
	for i := range kps {
		kps[i] = b64(ValidKeyPackage(Suite, identity(c), sig))
	}
	return request(ctx, c, proto.TKeyPackages, map[string]any{"key_packages": kps, "last_resort": b64(ValidKeyPackage(Suite, identity(c), sig))}, nil)
}

// Publish makes the connection's device found the MLS group of an
// encrypted room it is joined to: the group's first commit (epoch 0 → 1).
func Publish(ctx context.Context, c *client.Conn, room string) error {
	return request(ctx, c, proto.TMLS, map[string]any{"room": room, "data": b64(PrivateCommit(room, 0)),
		"group_info": b64(GroupInfo(Suite, room, 1))}, nil)
}

// Join adds the connection's device, registered with sig (Register), to
// the published group of a room its user is joined to, by external
// commit, retrying while other commits move the epoch. It returns the
// room's epoch after the join.
func Join(ctx context.Context, c *client.Conn, room string, sig []byte) (uint64, error) {
	for {
		epoch, err := Epoch(ctx, c, room)
		if err != nil {
			return 0, err
		}
		if epoch == 0 {
			return 0, fmt.Errorf("mlsframe: the group of %s is not published", room)
		}
		err = request(ctx, c, proto.TMLS, map[string]any{"room": room, "data": b64(ExternalCommit(Suite, room, epoch, identity(c), sig)),
			"group_info": b64(GroupInfo(Suite, room, epoch+1))}, nil)
		var ce *client.Error
		if errors.As(err, &ce) && ce.Code == proto.CodeEpochMismatch && ctx.Err() == nil {
			continue
		}
		return epoch + 1, err
	}
}

// Epoch returns the current epoch of an encrypted room's group.
func Epoch(ctx context.Context, c *client.Conn, room string) (uint64, error) {
	var gi proto.GroupInfoAnswer
	err := request(ctx, c, proto.TGroupInfo, map[string]any{"room": room}, &gi)
	return gi.Epoch, err
}
