package chat

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"time"

	"relais/server/mls"
	"relais/server/proto"
	"relais/server/store"
)

// AllowedSuites are the MLS cipher suites the node accepts in KeyPackages,
// GroupInfos and Welcomes: the hybrid post-quantum X-Wing suite (the
// default of the web client) and the suite every MLS implementation has.
var AllowedSuites = []mls.CipherSuite{
	mls.CipherSuiteXWingAES256GCMSHA512Ed25519,
	mls.CipherSuiteX25519AES128GCMSHA256Ed25519,
}

// KeyPackage policy.
const (
	// maxKeyPackages bounds a device's stock of (non-last-resort)
	// KeyPackages.
	maxKeyPackages = 100
	// lowKeys is the stock under which a device is asked for more.
	lowKeys = 10
	// maxKeyPackageLifetime bounds notAfter - notBefore, so that stale
	// keys do not linger (ts-mls' own maximum is about a month).
	maxKeyPackageLifetime = 92 * 24 * time.Hour
	// clockSkew is how far in the future a KeyPackage may start.
	clockSkew = time.Hour
)

func suiteAllowed(s mls.CipherSuite) bool { return slices.Contains(AllowedSuites, s) }

// Details of bad_request (and forbidden) refusals of MLS input, beyond the
// codes of package mls (mls_malformed, mls_unsupported_wire_format, …)
// which are passed through as details too.
const (
	detailWrongGroup     = "mls_wrong_group"        // the group id is not the room's
	detailWrongContent   = "mls_wrong_content_type" // not a commit (mls) / not an application message (send)
	detailWrongEpoch     = "mls_wrong_epoch"        // GroupInfo or Welcome disagree with the commit
	detailSuite          = string(mls.CodeUnsupportedCipherSuite)
	detailWireFormat     = string(mls.CodeUnsupportedWireFormat)
	detailCredential     = "mls_bad_credential"      // not a basic credential naming this device
	detailKeyChanged     = "mls_key_changed"         // another signature key than the device's
	detailLifetime       = "mls_bad_lifetime"        // expired, not yet valid or too long
	detailUnknownPackage = "mls_unknown_key_package" // a Welcome for a KeyPackage the node did not hand out
)

// refuseMLS is a bad_request refusal of MLS input with a detail.
func refuseMLS(detail, format string, args ...any) *proto.Error {
	e := proto.Errorf(proto.CodeBadRequest, format, args...)
	e.Detail = detail
	return e
}

// mlsRefusal turns a parse error of package mls into a refusal whose
// detail is the parser's stable code.
func mlsRefusal(field string, err error) error {
	var me *mls.Error
	if !errors.As(err, &me) {
		return err
	}
	code := proto.CodeBadRequest
	if me.Code == mls.CodeTooLarge {
		code = proto.CodeTooLarge
	}
	e := proto.Errorf(code, "%s: %v", field, err)
	e.Detail = string(me.Code)
	return e
}

// parseKeyPackage decodes and checks one uploaded KeyPackage of the
// actor's device and returns it with its signature key.
func (s *Service) parseKeyPackage(a Actor, b64 string, lastResort bool) (store.KeyPackage, []byte, error) {
	raw, err := proto.DecodeBase64("key package", b64)
	if err != nil {
		return store.KeyPackage{}, nil, err
	}
	kp, err := mls.ParseKeyPackage(raw)
	if err != nil {
		return store.KeyPackage{}, nil, mlsRefusal("key package", err)
	}
	if !suiteAllowed(kp.CipherSuite) {
		return store.KeyPackage{}, nil, refuseMLS(detailSuite, "cipher suite %v is not accepted here", kp.CipherSuite)
	}
	want := proto.DeviceIdentity(a.User, a.Device)
	if kp.CredentialType != mls.CredentialBasic || string(kp.CredentialIdentity) != want {
		e := proto.Errorf(proto.CodeForbidden, "the credential must be a basic credential of identity %q", want)
		e.Detail = detailCredential
		return store.KeyPackage{}, nil, e
	}
	if bytes.Equal(kp.InitKey, kp.EncryptionKey) {
		return store.KeyPackage{}, nil, refuseMLS(string(mls.CodeMalformed), "init_key must differ from the leaf's encryption_key (RFC 9420 §10.1)")
	}
	now := s.now()
	lt := kp.Lifetime
	switch {
	case lt.NotAfter < lt.NotBefore || lt.NotAfter-lt.NotBefore > uint64(maxKeyPackageLifetime/time.Second):
		return store.KeyPackage{}, nil, refuseMLS(detailLifetime, "a KeyPackage lifetime must be at most %d days", int(maxKeyPackageLifetime/(24*time.Hour)))
	case !lt.Contains(now) && !lt.Contains(now.Add(clockSkew)):
		return store.KeyPackage{}, nil, refuseMLS(detailLifetime, "the KeyPackage is expired or not valid yet")
	}
	return store.KeyPackage{Suite: uint16(kp.CipherSuite), Ref: kp.Ref, LastResort: lastResort, NotAfter: lt.NotAfter, Data: raw}, kp.SignatureKey, nil
}

// UploadKeyPackages stores KeyPackages of the actor's device (and its
// last-resort one, replacing the previous) and returns the device's stock.
// The first upload binds the device's signature key, and tells the people
// who share a room with the user; later uploads must carry the same key.
func (s *Service) UploadKeyPackages(ctx context.Context, a Actor, packages []string, lastResort string) (int, error) {
	var kps []store.KeyPackage
	var key []byte
	add := func(b64 string, last bool) error {
		kp, sig, err := s.parseKeyPackage(a, b64, last)
		if err != nil {
			return err
		}
		if key != nil && !bytes.Equal(key, sig) {
			return refuseMLS(detailKeyChanged, "all KeyPackages of a device carry the same signature key")
		}
		key = sig
		kps = append(kps, kp)
		return nil
	}
	for _, b64 := range packages {
		if err := add(b64, false); err != nil {
			return 0, err
		}
	}
	if lastResort != "" {
		if err := add(lastResort, true); err != nil {
			return 0, err
		}
	}
	var stock int
	err := s.update(ctx, func(tx *store.Tx) error {
		dk, err := tx.DeviceKey(a.User, a.Device)
		fresh := errors.Is(err, store.ErrNotFound)
		switch {
		case fresh:
			if err := tx.PutDeviceKey(a.User, a.Device, store.DeviceKey{Key: key, Created: s.now()}); err != nil {
				return err
			}
			if err := s.announceDevice(tx, a, key); err != nil {
				return err
			}
		case err != nil:
			return err
		case !bytes.Equal(dk.Key, key):
			e := proto.Errorf(proto.CodeForbidden, "a device cannot change its signature key: sign in again to make a new device")
			e.Detail = detailKeyChanged
			return e
		}
		stock = tx.KeyPackageCount(a.User, a.Device)
		for _, kp := range kps {
			if _, err := tx.KeyPackageRef(kp.Ref); err == nil {
				continue // uploaded before (and perhaps used): never again
			}
			if !kp.LastResort {
				if stock >= maxKeyPackages {
					return proto.Errorf(proto.CodeTooLarge, "a device keeps at most %d KeyPackages", maxKeyPackages)
				}
				stock++
			}
			if err := tx.PutKeyPackage(a.User, a.Device, kp); err != nil {
				return err
			}
		}
		return nil
	})
	return stock, err
}

// announceDevice tells, once committed, every device of the people who
// share a room with the actor (the actor's own included) that the actor's
// device registered a key: a new device is never silent.
func (s *Service) announceDevice(tx *store.Tx, a Actor, key []byte) error {
	people, err := roommates(tx, a.User)
	if err != nil {
		return err
	}
	frame := proto.Encode(proto.DeviceNotice{T: proto.TDevice, User: a.User, Device: a.Device, Key: base64.StdEncoding.EncodeToString(key)})
	tx.OnCommit(func() {
		for u := range people {
			s.PublishUser(u, frame)
		}
	})
	return nil
}

// ClaimKeys hands out one KeyPackage of every signed-in device of the
// given users (the actor's own device left out), in suite (0: any): a
// regular one, consumed, or the device's last-resort one. Devices with
// none are listed as missing. Users who are not active accounts are left
// out. Devices whose stock runs low are asked for more.
func (s *Service) ClaimKeys(ctx context.Context, a Actor, users []string, suite uint16) (proto.Claim, error) {
	if a.External {
		return proto.Claim{}, proto.Errorf(proto.CodeExternalForbidden, "external correspondents cannot add people to conversations")
	}
	if suite != 0 && !suiteAllowed(mls.CipherSuite(suite)) {
		return proto.Claim{}, refuseMLS(detailSuite, "cipher suite %d is not accepted here", suite)
	}
	var out proto.Claim
	err := s.update(ctx, func(tx *store.Tx) error {
		out = proto.Claim{KeyPackages: []proto.ClaimedKey{}, Missing: []proto.DeviceName{}}
		now := s.now()
		for _, u := range dedupe(users, "") {
			if usr, err := tx.User(u); err != nil || usr.State != store.UserActive {
				continue
			}
			devices, err := tx.Devices(u)
			if err != nil {
				return err
			}
			for _, d := range devices {
				if u == a.User && d.DeviceID == a.Device {
					continue
				}
				kp, ok, err := tx.TakeKeyPackage(u, d.DeviceID, suite, now)
				if err != nil {
					return err
				}
				if !ok {
					out.Missing = append(out.Missing, proto.DeviceName{User: u, Device: d.DeviceID})
					continue
				}
				out.KeyPackages = append(out.KeyPackages, proto.ClaimedKey{User: u, Device: d.DeviceID,
					KeyPackage: base64.StdEncoding.EncodeToString(kp.Data), LastResort: kp.LastResort})
				if n := tx.KeyPackageCount(u, d.DeviceID); n < lowKeys {
					frame := proto.Encode(proto.LowKeys{T: proto.TLowKeys, Device: d.DeviceID, Count: n})
					tx.OnCommit(func() { s.PublishUser(u, frame) })
				}
			}
		}
		return nil
	})
	return out, err
}

// LowKeys returns the low_keys frame a device should get when it
// connects, nil if its stock is fine or it never registered a key.
func (s *Service) LowKeys(a Actor) ([]byte, error) {
	var frame []byte
	err := s.db.View(func(tx *store.Tx) error {
		if _, err := tx.DeviceKey(a.User, a.Device); errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if n := tx.KeyPackageCount(a.User, a.Device); n < lowKeys {
			frame = proto.Encode(proto.LowKeys{T: proto.TLowKeys, Device: a.Device, Count: n})
		}
		return nil
	})
	return frame, err
}

// DeviceKeys lists the devices of the given users with the signature keys
// bound to them, so that clients can check credentials and compute safety
// numbers. Agents may look up any agent and the externals they share a
// room with; externals only the people of their rooms. Others are left
// out.
func (s *Service) DeviceKeys(a Actor, users []string) ([]proto.DeviceKey, error) {
	out := []proto.DeviceKey{}
	err := s.db.View(func(tx *store.Tx) error {
		var mates map[string]bool
		visible := func(u store.User) (bool, error) {
			if !a.External && !u.External {
				return true, nil
			}
			if mates == nil {
				var err error
				if mates, err = roommates(tx, a.User); err != nil {
					return false, err
				}
			}
			return mates[u.ID], nil
		}
		for _, uid := range dedupe(users, "") {
			u, err := tx.User(uid)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if ok, err := visible(u); err != nil {
				return err
			} else if !ok {
				continue
			}
			keys, err := tx.DeviceKeys(uid)
			if err != nil {
				return err
			}
			// An expired account's sessions are revoked by the account
			// service's sweep; until it passes, they are inactive too.
			live := u.State == store.UserActive && !s.expired(u)
			for _, k := range keys {
				out = append(out, proto.DeviceKey{User: uid, Device: k.DeviceID, Key: base64.StdEncoding.EncodeToString(k.Key),
					Created: k.Created.UnixMilli(), Active: live && tx.HasSession(uid, k.DeviceID)})
			}
		}
		return nil
	})
	return out, err
}
