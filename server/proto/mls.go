package proto

import (
	"encoding/base64"
	"strings"

	"relais/server/id"
)

// Frame types of end-to-end encryption: the node as MLS Delivery Service
// (PROTOCOL.md, "End-to-end encryption").
const (
	// Client requests.
	TKeyPackages = "key_packages" // upload KeyPackages of this device
	TClaimKeys   = "claim_keys"   // take one KeyPackage of each device of some users
	TDeviceKeys  = "device_keys"  // the signature keys of some users' devices
	TMLS         = "mls"          // a commit, with its Welcome and GroupInfo
	TGroupInfo   = "group_info"   // the latest GroupInfo of a room, for external joins
	TWelcomeAck  = "welcome_ack"  // this device has processed its Welcome to a room

	// Node frames.
	TWelcome = "welcome"  // a Welcome for one device
	TDevice  = "device"   // a user registered a new device key
	TLowKeys = "low_keys" // a device's KeyPackage stock is running out
)

// EvMLSCommit is the event type of an accepted commit in a room's log.
const EvMLSCommit = "mls_commit"

// Limits of end-to-end encryption frames.
const (
	MaxKeyPackagesPerFrame = 100
	MaxRemoves             = 1000
)

// DeviceIdentity is the identity of a device's MLS basic credential, which
// names it everywhere in the protocol: "<user id>/<device id>".
func DeviceIdentity(user, device string) string { return user + "/" + device }

// ParseDeviceIdentity splits a device identity into a user and a device
// id, both well-formed.
func ParseDeviceIdentity(s string) (user, device string, ok bool) {
	user, device, ok = strings.Cut(s, "/")
	if !ok || !id.Valid(id.User, user) || !id.Valid(id.Device, device) {
		return "", "", false
	}
	return user, device, true
}

// EpochMismatch refuses an MLS message made for another epoch than the
// room's current one, which it carries.
func EpochMismatch(current uint64) *Error {
	e := Errorf(CodeEpochMismatch, "the room is at epoch %d: process the commits you miss and try again", current)
	e.Epoch = &current
	return e
}

// RemovePending refuses a message while devices of people who left are
// still in the room's group.
func RemovePending(devices []string) *Error {
	e := Errorf(CodeRemovePending, "people left the room: commit the removal of their devices first")
	e.Devices = devices
	return e
}

// WelcomeFrame is a "welcome" frame: a Welcome for one device (Device), to
// be processed and then acknowledged with welcome_ack.
type WelcomeFrame struct {
	T      string `json:"t"`
	Room   string `json:"room"`
	Device string `json:"device"`
	Epoch  uint64 `json:"epoch"` // the epoch it welcomes into
	Seq    uint64 `json:"seq"`   // the room event of the commit it goes with
	Data   string `json:"data"`  // base64 MLSMessage (welcome)
}

// DeviceNotice is a "device" frame: a user registered the signature key of
// a new device.
type DeviceNotice struct {
	T      string `json:"t"`
	User   string `json:"user"`
	Device string `json:"device"`
	Key    string `json:"key"` // base64
}

// LowKeys is a "low_keys" frame: Device has Count KeyPackages left.
type LowKeys struct {
	T      string `json:"t"`
	Device string `json:"device"`
	Count  int    `json:"count"`
}

// DeviceKey is one device of a device_keys answer.
type DeviceKey struct {
	User    string `json:"user"`
	Device  string `json:"device"`
	Key     string `json:"key"`     // base64 signature public key
	Created int64  `json:"created"` // Unix ms
	// Active is false once the device was signed out or revoked: its key
	// stays listed so that history it signed can still be checked.
	Active bool `json:"active"`
}

// ClaimedKey is one KeyPackage handed out by claim_keys.
type ClaimedKey struct {
	User       string `json:"user"`
	Device     string `json:"device"`
	KeyPackage string `json:"key_package"` // base64 MLSMessage
	LastResort bool   `json:"last_resort,omitempty"`
}

// DeviceName names a device in answers.
type DeviceName struct {
	User   string `json:"user"`
	Device string `json:"device"`
}

// Claim answers claim_keys.
type Claim struct {
	KeyPackages []ClaimedKey `json:"key_packages"`
	Missing     []DeviceName `json:"missing"`
}

// GroupInfoAnswer answers group_info; GroupInfo is empty before the
// group's first commit.
type GroupInfoAnswer struct {
	Room      string `json:"room"`
	Epoch     uint64 `json:"epoch"`
	GroupInfo string `json:"group_info,omitempty"`
}

// validateMLS checks the frames of end-to-end encryption. MLS content is
// parsed by the chat service; here only the shape of the frame.
func (f *ClientFrame) validateMLS() error {
	if f.ID == "" && f.T != TWelcomeAck {
		return Errorf(CodeBadRequest, "%s needs an id", f.T)
	}
	needRoom := func() error {
		if !id.Valid(id.Room, f.Room) {
			return Errorf(CodeBadRequest, "%s needs a valid room", f.T)
		}
		return nil
	}
	switch f.T {
	case TKeyPackages:
		if len(f.KeyPackages) == 0 && f.LastResort == "" {
			return Errorf(CodeBadRequest, "key_packages needs key_packages or last_resort")
		}
		if len(f.KeyPackages) > MaxKeyPackagesPerFrame {
			return Errorf(CodeTooLarge, "at most %d key packages at once", MaxKeyPackagesPerFrame)
		}
		for _, kp := range f.KeyPackages {
			if kp == "" {
				return Errorf(CodeBadRequest, "empty key package")
			}
		}
		return nil
	case TClaimKeys, TDeviceKeys:
		if len(f.Users) == 0 || len(f.Users) > MaxIDs {
			return Errorf(CodeBadRequest, "%s needs 1 to %d users", f.T, MaxIDs)
		}
		for _, u := range f.Users {
			if !id.Valid(id.User, u) {
				return Errorf(CodeBadRequest, "invalid user %q", u)
			}
		}
		return nil
	case TMLS:
		if err := needRoom(); err != nil {
			return err
		}
		if f.Data == "" || f.GroupInfo == "" {
			return Errorf(CodeBadRequest, "mls needs data (the commit) and group_info")
		}
		if len(f.Removes) > MaxRemoves {
			return Errorf(CodeTooLarge, "at most %d removes", MaxRemoves)
		}
		for _, d := range f.Removes {
			if _, _, ok := ParseDeviceIdentity(d); !ok {
				return Errorf(CodeBadRequest, "invalid device %q in removes: want <user>/<device>", d)
			}
		}
		return nil
	case TGroupInfo, TWelcomeAck:
		return needRoom()
	}
	return Errorf(CodeUnknownType, "unknown frame type %q", f.T)
}

// DecodeBase64 decodes a base64 (standard alphabet, padded) field of a
// frame, naming the field in the error.
func DecodeBase64(field, s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, Errorf(CodeBadRequest, "%s is not base64", field)
	}
	return b, nil
}
