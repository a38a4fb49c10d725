package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// DeviceRef names one device of one user.
type DeviceRef struct {
	User   string
	Device string
}

// DeviceKey is the signature public key the node bound to a device when
// the device uploaded its first KeyPackage.
type DeviceKey struct {
	Key     []byte    `json:"key"`
	Created time.Time `json:"created"`
}

// DeviceKeyEntry is a device and its key.
type DeviceKeyEntry struct {
	DeviceID string
	DeviceKey
}

// DeviceKey returns the key bound to a device, or ErrNotFound.
func (tx *Tx) DeviceKey(userID, deviceID string) (DeviceKey, error) {
	var k DeviceKey
	err := decode(tx.bucket(bDeviceKeys).Get(join(userID, deviceID)), &k)
	return k, err
}

// PutDeviceKey binds a key to a device.
func (tx *Tx) PutDeviceKey(userID, deviceID string, k DeviceKey) error {
	return tx.bucket(bDeviceKeys).Put(join(userID, deviceID), encode(k))
}

// DeviceKeys returns the keys of every device of a user that ever
// registered one, ordered by device id.
func (tx *Tx) DeviceKeys(userID string) ([]DeviceKeyEntry, error) {
	var out []DeviceKeyEntry
	prefix := join(userID, "")
	c := tx.bucket(bDeviceKeys).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		e := DeviceKeyEntry{DeviceID: string(k[len(prefix):])}
		if err := decode(v, &e.DeviceKey); err != nil {
			return nil, fmt.Errorf("store: device key %q: %w", k, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// HasSession reports whether a device is signed in (not revoked).
func (tx *Tx) HasSession(userID, deviceID string) bool {
	return tx.bucket(bDevices).Get(join(userID, deviceID)) != nil
}

// KeyPackage is a stored KeyPackage of a device.
type KeyPackage struct {
	Suite      uint16
	Ref        []byte // KeyPackageRef (32 or 64 bytes)
	LastResort bool
	NotAfter   uint64 // end of its lifetime, Unix seconds
	Data       []byte // the MLSMessage as uploaded
}

// KeyPackageRef says whose KeyPackage a ref names.
type KeyPackageRef struct {
	User       string `json:"user"`
	Device     string `json:"device"`
	LastResort bool   `json:"last_resort,omitempty"`
	NotAfter   uint64 `json:"not_after"`
}

const lastResortMark = "~"

func kpPrefix(userID, deviceID string) []byte { return join(userID, deviceID, "") }

func kpKey(userID, deviceID string, suite uint16, ref []byte) []byte {
	k := binary.BigEndian.AppendUint16(kpPrefix(userID, deviceID), suite)
	return append(k, ref...)
}

// isLastResort reports whether the part of a keypackages key after the
// device prefix (suite and ref) names a last-resort package.
func isLastResort(rest []byte) bool { return len(rest) == 2+len(lastResortMark) }

// PutKeyPackage stores a KeyPackage of a device and indexes its ref. A
// last-resort package replaces the device's previous one of its suite
// (whose ref stays indexed: a Welcome may still name it).
func (tx *Tx) PutKeyPackage(userID, deviceID string, kp KeyPackage) error {
	var k []byte
	if kp.LastResort {
		k = kpKey(userID, deviceID, kp.Suite, []byte(lastResortMark))
	} else {
		k = kpKey(userID, deviceID, kp.Suite, kp.Ref)
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(kp.Data)), kp.NotAfter)
	if err := tx.bucket(bKeyPackages).Put(k, append(v, kp.Data...)); err != nil {
		return err
	}
	ref := KeyPackageRef{User: userID, Device: deviceID, LastResort: kp.LastResort, NotAfter: kp.NotAfter}
	return tx.bucket(bKeyPackageRefs).Put(kp.Ref, encode(ref))
}

// KeyPackageCount returns how many KeyPackages, last-resort ones left
// out, a device has in stock.
func (tx *Tx) KeyPackageCount(userID, deviceID string) int {
	prefix := kpPrefix(userID, deviceID)
	n := 0
	c := tx.bucket(bKeyPackages).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if !isLastResort(k[len(prefix):]) {
			n++
		}
	}
	return n
}

// TakeKeyPackage hands out one KeyPackage of a device in the given suite
// (0: any): a regular one, which is deleted, or else the last-resort one,
// which stays. Expired packages met on the way are deleted. ok is false
// when the device has nothing valid at now.
func (tx *Tx) TakeKeyPackage(userID, deviceID string, suite uint16, now time.Time) (kp KeyPackage, ok bool, err error) {
	dev := kpPrefix(userID, deviceID)
	prefix := dev
	if suite != 0 {
		prefix = binary.BigEndian.AppendUint16(clone(dev), suite)
	}
	cutoff := uint64(max(now.Unix(), 0))
	b := tx.bucket(bKeyPackages)
	var expired [][]byte
	var last *KeyPackage
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		rest := k[len(dev):]
		if len(v) < 8 || len(rest) < 2 {
			return kp, false, fmt.Errorf("store: key package %q: short record", k)
		}
		cand := KeyPackage{Suite: binary.BigEndian.Uint16(rest), NotAfter: binary.BigEndian.Uint64(v)}
		if cand.NotAfter < cutoff {
			expired = append(expired, clone(k))
			continue
		}
		if isLastResort(rest) {
			if last == nil {
				cand.LastResort, cand.Data = true, clone(v[8:])
				last = &cand
			}
			continue
		}
		cand.Ref, cand.Data = clone(rest[2:]), clone(v[8:])
		kp, ok = cand, true
		break
	}
	for _, k := range expired {
		if rest := k[len(dev):]; !isLastResort(rest) {
			if err := tx.bucket(bKeyPackageRefs).Delete(rest[2:]); err != nil {
				return kp, false, err
			}
		}
		if err := b.Delete(k); err != nil {
			return kp, false, err
		}
	}
	if ok {
		return kp, true, b.Delete(kpKey(userID, deviceID, kp.Suite, kp.Ref))
	}
	if last != nil {
		return *last, true, nil
	}
	return kp, false, nil
}

// DeleteKeyPackage drops a regular KeyPackage from a device's stock (one a
// Welcome used without it being claimed here), if it is still there.
func (tx *Tx) DeleteKeyPackage(userID, deviceID string, suite uint16, ref []byte) error {
	return tx.bucket(bKeyPackages).Delete(kpKey(userID, deviceID, suite, ref))
}

// KeyPackageRef returns whose KeyPackage ref names, or ErrNotFound.
func (tx *Tx) KeyPackageRef(ref []byte) (KeyPackageRef, error) {
	var r KeyPackageRef
	err := decode(tx.bucket(bKeyPackageRefs).Get(ref), &r)
	return r, err
}

// PutKeyPackageRef records whose KeyPackage ref names without keeping the
// package: at a room's home, a KeyPackage of another administration's
// user that this administration vouched for (its own store keeps the
// package).
func (tx *Tx) PutKeyPackageRef(ref []byte, r KeyPackageRef) error {
	return tx.bucket(bKeyPackageRefs).Put(ref, encode(r))
}

// DeleteKeyPackageRef forgets a ref once a Welcome has consumed it.
func (tx *Tx) DeleteKeyPackageRef(ref []byte) error {
	return tx.bucket(bKeyPackageRefs).Delete(ref)
}

// MLSGroup is what the node knows of a room's MLS group.
type MLSGroup struct {
	// Epoch is the group's current epoch: the next commit must be for it.
	Epoch uint64 `json:"epoch"`
	// Suite is the group's cipher suite, known from its first GroupInfo.
	Suite uint16 `json:"suite,omitempty"`
	// Pending lists the users who left the room while devices of theirs
	// are still in the group: their removal must be committed before
	// anything else is sent.
	Pending []string `json:"pending,omitempty"`
}

func groupInfoKey(roomID string) []byte { return join(roomID, "i") }

func groupDevicePrefix(roomID, userID string) []byte {
	if userID == "" {
		return join(roomID, "d", "")
	}
	return join(roomID, "d", userID, "")
}

// MLSGroup returns a room's group state; a room whose group has not been
// published yet has the zero state (epoch 0).
func (tx *Tx) MLSGroup(roomID string) (MLSGroup, error) {
	k := []byte(roomID)
	return tx.cache.groups.read(k, func() (g MLSGroup, err error) {
		if v := tx.bucket(bMLSGroups).Get(k); v != nil {
			err = decode(v, &g)
		}
		return g, err
	})
}

// PutMLSGroup stores a room's group state.
func (tx *Tx) PutMLSGroup(roomID string, g MLSGroup) error {
	k := []byte(roomID)
	if err := tx.bucket(bMLSGroups).Put(k, encode(g)); err != nil {
		return err
	}
	tx.cache.groups.written(k, g)
	return nil
}

// GroupInfo returns the latest GroupInfo of a room's group, nil if none.
func (tx *Tx) GroupInfo(roomID string) []byte {
	return clone(tx.bucket(bMLSGroups).Get(groupInfoKey(roomID)))
}

// PutGroupInfo stores the latest GroupInfo of a room's group.
func (tx *Tx) PutGroupInfo(roomID string, gi []byte) error {
	return tx.bucket(bMLSGroups).Put(groupInfoKey(roomID), gi)
}

// SetGroupDevice adds a device to a room's group (in) or removes it.
func (tx *Tx) SetGroupDevice(roomID string, d DeviceRef, in bool) error {
	k := append(groupDevicePrefix(roomID, d.User), d.Device...)
	if in {
		return tx.bucket(bMLSGroups).Put(k, nil)
	}
	return tx.bucket(bMLSGroups).Delete(k)
}

// InGroup reports whether a device is in a room's group.
func (tx *Tx) InGroup(roomID string, d DeviceRef) bool {
	k := append(groupDevicePrefix(roomID, d.User), d.Device...)
	return tx.bucket(bMLSGroups).Get(k) != nil
}

// GroupDevices returns the devices of a room's group, all of them or
// those of one user, ordered by user then device.
func (tx *Tx) GroupDevices(roomID, userID string) []DeviceRef {
	all := groupDevicePrefix(roomID, "")
	prefix := groupDevicePrefix(roomID, userID)
	var out []DeviceRef
	c := tx.bucket(bMLSGroups).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		rest := k[len(all):]
		if i := bytes.IndexByte(rest, 0); i > 0 {
			out = append(out, DeviceRef{User: string(rest[:i]), Device: string(rest[i+1:])})
		}
	}
	return out
}

// HasGroupDevices reports whether a user has a device in a room's group.
func (tx *Tx) HasGroupDevices(roomID, userID string) bool {
	prefix := groupDevicePrefix(roomID, userID)
	k, _ := tx.bucket(bMLSGroups).Cursor().Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix)
}

// Welcome is a Welcome message waiting for the devices it adds.
type Welcome struct {
	Room  string
	Seq   uint64 // the room event of the commit it goes with
	Epoch uint64 // the epoch it welcomes into
	Data  []byte // the MLSMessage
}

func welcomeBlobKey(roomID string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte("w"), join(roomID, "")...), seq)
}

func welcomePtrKey(d DeviceRef, roomID string) []byte {
	return append([]byte("d"), join(d.User, d.Device, roomID)...)
}

func welcomeRevPrefix(roomID string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte("r"), join(roomID, "")...), seq)
}

// PutWelcome stores a Welcome once and a pointer to it for each device it
// is for, replacing what such a device still had waiting for the room.
func (tx *Tx) PutWelcome(w Welcome, to []DeviceRef) error {
	b := tx.bucket(bWelcomes)
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(w.Data)), w.Epoch)
	if err := b.Put(welcomeBlobKey(w.Room, w.Seq), append(v, w.Data...)); err != nil {
		return err
	}
	for _, d := range to {
		if _, err := tx.DeleteWelcome(d, w.Room); err != nil {
			return err
		}
		if err := b.Put(welcomePtrKey(d, w.Room), u64(w.Seq)); err != nil {
			return err
		}
		if err := b.Put(append(welcomeRevPrefix(w.Room, w.Seq), join(d.User, d.Device)...), nil); err != nil {
			return err
		}
	}
	return nil
}

// Welcomes returns the Welcomes waiting for a device, by room id.
func (tx *Tx) Welcomes(d DeviceRef) ([]Welcome, error) {
	b := tx.bucket(bWelcomes)
	prefix := append([]byte("d"), join(d.User, d.Device, "")...)
	var out []Welcome
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(v) != 8 {
			return nil, fmt.Errorf("store: welcome pointer %q: bad record", k)
		}
		w := Welcome{Room: string(k[len(prefix):]), Seq: binary.BigEndian.Uint64(v)}
		blob := b.Get(welcomeBlobKey(w.Room, w.Seq))
		if len(blob) < 8 {
			return nil, fmt.Errorf("store: welcome %s/%d: missing", w.Room, w.Seq)
		}
		w.Epoch, w.Data = binary.BigEndian.Uint64(blob), clone(blob[8:])
		out = append(out, w)
	}
	return out, nil
}

// DeleteWelcome drops the Welcome a device had waiting for a room (once
// acknowledged), and the Welcome itself when no device needs it any
// more. It reports whether there was one.
func (tx *Tx) DeleteWelcome(d DeviceRef, roomID string) (bool, error) {
	b := tx.bucket(bWelcomes)
	pk := welcomePtrKey(d, roomID)
	v := b.Get(pk)
	if len(v) != 8 {
		return false, nil
	}
	seq := binary.BigEndian.Uint64(v)
	if err := b.Delete(pk); err != nil {
		return false, err
	}
	rev := welcomeRevPrefix(roomID, seq)
	if err := b.Delete(append(rev, join(d.User, d.Device)...)); err != nil {
		return false, err
	}
	if k, _ := b.Cursor().Seek(rev); k != nil && bytes.HasPrefix(k, rev) {
		return true, nil // other devices still need it
	}
	return true, b.Delete(welcomeBlobKey(roomID, seq))
}

// BackupInfo describes one encrypted backup of a user.
type BackupInfo struct {
	Name    string
	Size    int
	Updated int64 // Unix milliseconds
}

// PutBackup stores (or replaces) an encrypted backup of a user.
func (tx *Tx) PutBackup(userID, name string, updated int64, data []byte) error {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(data)), uint64(updated))
	return tx.bucket(bKeyBackups).Put(join(userID, name), append(v, data...))
}

// Backup returns an encrypted backup of a user, or ErrNotFound.
func (tx *Tx) Backup(userID, name string) (data []byte, updated int64, err error) {
	v := tx.bucket(bKeyBackups).Get(join(userID, name))
	if len(v) < 8 {
		return nil, 0, ErrNotFound
	}
	return clone(v[8:]), int64(binary.BigEndian.Uint64(v)), nil
}

// Backups lists the encrypted backups of a user, by name.
func (tx *Tx) Backups(userID string) []BackupInfo {
	var out []BackupInfo
	prefix := join(userID, "")
	c := tx.bucket(bKeyBackups).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(v) >= 8 {
			out = append(out, BackupInfo{Name: string(k[len(prefix):]), Size: len(v) - 8, Updated: int64(binary.BigEndian.Uint64(v))})
		}
	}
	return out
}

// DeleteBackup deletes an encrypted backup of a user; ErrNotFound if none.
func (tx *Tx) DeleteBackup(userID, name string) error {
	b := tx.bucket(bKeyBackups)
	k := join(userID, name)
	if b.Get(k) == nil {
		return ErrNotFound
	}
	return b.Delete(k)
}
