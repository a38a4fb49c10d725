package chat

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"sync"
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

// Claim limits, with rate limits on (the bursts exported for tests). A claim takes one KeyPackage of
// each device of the people named, so that a claimer who shares a room
// with someone could otherwise empty that person's stock, and every
// later add would get the reused last-resort KeyPackage. Per target user,
// whoever claims: 30 at once then one every 6 s; per claimer and target:
// 5 then one every 30 s, so that one room-mate alone cannot spend the
// target's budget. Honest claims come once per room someone is added to.
// One's own devices are not limited.
const (
	claimTargetRate, ClaimTargetBurst = 1.0 / 6, 30
	claimPairRate, ClaimPairBurst     = 1.0 / 30, 5
)

// detailNotShared refines the forbidden answer to a claim naming nobody
// the claimer is adding to a room.
const detailNotShared = "mls_no_shared_room"

// ClaimKeys hands out one KeyPackage of every signed-in device of the
// given users (the actor's own device left out), in suite (0: any): a
// regular one, consumed, or the device's last-resort one, which is never
// consumed. Devices with none are listed as missing. Only the actor's own
// user and people the actor may be adding to an encrypted room are
// claimed from (see claimable); others, and users who are not active
// accounts, are left out, and a claim that leaves out everyone it names
// is refused. Devices whose stock runs low are asked for more (coalesced,
// see lowKeysNotices).
func (s *Service) ClaimKeys(ctx context.Context, a Actor, users []string, suite uint16) (proto.Claim, error) {
	if a.External {
		return proto.Claim{}, proto.Errorf(proto.CodeExternalForbidden, "external correspondents cannot add people to conversations")
	}
	if suite != 0 && !suiteAllowed(mls.CipherSuite(suite)) {
		return proto.Claim{}, refuseMLS(detailSuite, "cipher suite %d is not accepted here", suite)
	}
	users = dedupe(users, "")
	local, remote := s.byAdministration(users)
	out := proto.Claim{KeyPackages: []proto.ClaimedKey{}, Missing: []proto.DeviceName{}}
	var refused error
	claimed := false
	if len(local) > 0 || len(remote) == 0 {
		err := s.update(ctx, func(tx *store.Tx) error {
			out = proto.Claim{KeyPackages: []proto.ClaimedKey{}, Missing: []proto.DeviceName{}}
			return s.claimHere(tx, a.User, a.Device, local, suite, &out)
		})
		if pe := proto.AsError(err); pe != nil && pe.Detail == detailNotShared {
			refused = err
		} else if err != nil {
			return proto.Claim{}, err
		} else {
			claimed = true
		}
	}
	// Users of peered administrations: their own administration hands
	// out their KeyPackages (fedkeys.go).
	for admin, us := range remote {
		got, err := s.claimRemote(ctx, admin, a.User, us, suite)
		if pe := proto.AsError(err); pe != nil && pe.Code == proto.CodeForbidden {
			refused = err
			continue
		}
		if err != nil {
			return proto.Claim{}, err
		}
		claimed = true
		out.KeyPackages = append(out.KeyPackages, got.KeyPackages...)
		out.Missing = append(out.Missing, got.Missing...)
	}
	if !claimed {
		return proto.Claim{}, refused
	}
	return out, nil
}

// claimHere hands out, inside the writer's transaction, a KeyPackage of
// every device of those of users (all homed here) the claimer may claim
// from, except the claimer's own device, into out.
func (s *Service) claimHere(tx *store.Tx, claimer, claimerDevice string, users []string, suite uint16, out *proto.Claim) error {
	targets, err := claimable(tx, claimer, users, s.expired)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		e := proto.Errorf(proto.CodeForbidden, "KeyPackages are claimed only for people in an encrypted room you are in (joined or invited)")
		e.Detail = detailNotShared
		return e
	}
	if err := s.allowClaims(claimer, targets); err != nil {
		return err
	}
	now := s.now()
	for _, u := range targets {
		devices, err := tx.Devices(u)
		if err != nil {
			return err
		}
		for _, d := range devices {
			if u == claimer && d.DeviceID == claimerDevice {
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
				tx.OnCommit(func() { s.lowKeys.notify(s, u, d.DeviceID) })
			}
		}
	}
	return nil
}

// claimable returns the users, of those named, whose KeyPackages the
// claimer may take: their own, and those of active people joined or
// invited in an encrypted room the claimer has joined. That is everyone a
// client adds to a group: the other person of a direct conversation it
// opened (both joined), the people it invited to a group it created or
// is in (invited before their devices are added), and the members whose
// new devices it adds. A stranger found in the directory is claimable
// once the direct conversation with them is opened.
func claimable(tx *store.Tx, claimer string, users []string, expired func(store.User) bool) ([]string, error) {
	var shared map[string]bool // the claimer's joined encrypted rooms
	var out []string
	for _, u := range users {
		if usr, err := tx.User(u); err != nil || usr.State != store.UserActive || expired(usr) {
			continue
		}
		if u == claimer {
			out = append(out, u)
			continue
		}
		if shared == nil {
			shared = map[string]bool{}
			rooms, err := tx.UserRooms(claimer)
			if err != nil {
				return nil, err
			}
			for _, r := range rooms {
				m, err := tx.Member(r, claimer)
				if err != nil || m.State != store.Joined {
					continue
				}
				if room, err := tx.Room(r); err == nil && room.Encrypted {
					shared[r] = true
				}
			}
		}
		// The room index lists joined and invited memberships only.
		theirs, err := tx.UserRooms(u)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(theirs, func(r string) bool { return shared[r] }) {
			out = append(out, u)
		}
	}
	return out, nil
}

// allowClaims takes a token per target (other than the claimer) from the
// target's bucket and the claimer's bucket for that target, all or none:
// a refused claim leaves every bucket as it was.
func (s *Service) allowClaims(claimer string, targets []string) error {
	if s.claimsByTarget == nil {
		return nil
	}
	var taken []string
	undo := func() {
		for _, k := range taken {
			s.claimsByTarget.Undo(k)
			s.claimsByPair.Undo(claimer + "\x00" + k)
		}
	}
	for _, u := range targets {
		if u == claimer {
			continue
		}
		ok, wait := s.claimsByPair.Allow(claimer + "\x00" + u)
		if ok {
			if ok, wait = s.claimsByTarget.Allow(u); !ok {
				s.claimsByPair.Undo(claimer + "\x00" + u)
			}
		}
		if !ok {
			undo()
			e := proto.Errorf(proto.CodeRateLimited, "too many KeyPackages claimed for this person: try again later")
			e.RetryAfter = int(wait/time.Second) + 1
			return e
		}
		taken = append(taken, u)
	}
	return nil
}

// lowKeysNotices coalesces low_keys: a device is told at once the first
// time, then at most once per interval, with its stock as it is then, so
// that a run of claims does not send it a frame each.
type lowKeysNotices struct {
	every time.Duration
	mu    sync.Mutex
	// byDevice holds, for devices told within the interval, whether
	// another notice is due at its end.
	byDevice map[store.DeviceRef]*lowKeysState
}

type lowKeysState struct{ due bool }

func (l *lowKeysNotices) notify(s *Service, user, device string) {
	ref := store.DeviceRef{User: user, Device: device}
	l.mu.Lock()
	if st := l.byDevice[ref]; st != nil {
		st.due = true
		l.mu.Unlock()
		return
	}
	if l.byDevice == nil {
		l.byDevice = map[store.DeviceRef]*lowKeysState{}
	}
	st := &lowKeysState{}
	l.byDevice[ref] = st
	l.mu.Unlock()
	s.sendLowKeys(ref)
	var end func()
	end = func() {
		l.mu.Lock()
		if !st.due {
			delete(l.byDevice, ref)
			l.mu.Unlock()
			return
		}
		st.due = false
		l.mu.Unlock()
		s.sendLowKeys(ref)
		time.AfterFunc(l.every, end)
	}
	time.AfterFunc(l.every, end)
}

// sendLowKeys tells a device's user its stock, if it is still low.
func (s *Service) sendLowKeys(ref store.DeviceRef) {
	frame, err := s.LowKeys(Actor{User: ref.User, Device: ref.Device})
	if err != nil {
		if !errors.Is(err, store.ErrClosed) {
			s.log.Error("low_keys", "err", err)
		}
		return
	}
	if frame != nil {
		s.PublishUser(ref.User, frame)
	}
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
//
// Devices of users of peered administrations are asked of their own
// administration (fedkeys.go); one that does not answer makes the whole
// answer home_unreachable rather than a list a client would take as
// "no devices".
func (s *Service) DeviceKeys(a Actor, users []string) ([]proto.DeviceKey, error) {
	local, remote := s.byAdministration(dedupe(users, ""))
	out, err := s.localDeviceKeys(a, local)
	if err != nil {
		return nil, err
	}
	for admin, us := range remote {
		if a.External {
			break // externals stay within their administration
		}
		keys, err := s.remoteDeviceKeys(context.Background(), admin, us)
		if err != nil {
			return nil, err
		}
		out = append(out, keys...)
	}
	return out, nil
}

// localDeviceKeys is DeviceKeys for users homed here.
func (s *Service) localDeviceKeys(a Actor, users []string) ([]proto.DeviceKey, error) {
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
