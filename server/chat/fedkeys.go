package chat

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"relais/server/fed"
	"relais/server/id"
	"relais/server/mls"
	"relais/server/proto"
	"relais/server/store"
)

// End-to-end encryption across administrations (federation.go).
//
// A room's home is its MLS Delivery Service, as a node is for its own
// rooms (mls.go): it orders commits and application messages like any
// event, which reach the other administrations by the room's push and
// pull. What belongs to a user — their devices, signature keys,
// KeyPackages, the Welcomes that add their devices — stays with their own
// administration, which alone vouches for it:
//
//   - a claim of a remote user's KeyPackages goes to that user's
//     administration (fed.OpKeyClaim), which hands each out once, as on
//     one node, to a claimer sharing an encrypted room with them;
//   - a device list goes there too (fed.OpDeviceKeys);
//   - the home learns whose KeyPackages a Welcome names by asking the
//     administrations with members in the room (fed.OpKeyRefs); each
//     answers for its own users only, and consumes what it vouched for;
//   - a Welcome for a remote device is handed to that device's
//     administration (fed.OpWelcome), which keeps and delivers it.
//
// Every answer is checked to speak only of users of the administration
// whose link it came over; anything else is refused, logged, and dropped.

// byAdministration splits user ids into those homed here (or unknown:
// the local path refuses them as it always did) and those of each peered
// administration.
func (s *Service) byAdministration(users []string) (local []string, remote map[fed.AdminID][]string) {
	for _, u := range users {
		if !s.remoteUser(u) {
			local = append(local, u)
			continue
		}
		if remote == nil {
			remote = map[fed.AdminID][]string{}
		}
		a, _ := s.fed.dir.AdminOf(u)
		remote[a] = append(remote[a], u)
	}
	return local, remote
}

// askPeer sends a JSON request to a peer and decodes its JSON answer
// strictly. A refusal comes back as the proto error it was; no answer as
// home_unreachable, saying what did not answer.
func (s *Service) askPeer(ctx context.Context, peer fed.AdminID, op string, q, out any) error {
	body := proto.Encode(q)
	if len(body) > fed.MaxKeysBody {
		return proto.Errorf(proto.CodeTooLarge, "too much to ask of another administration at once")
	}
	rctx, cancel := context.WithTimeout(ctx, s.fed.SendTimeout)
	defer cancel()
	ans, err := s.fed.Transport.Request(rctx, peer, op, body)
	if err != nil {
		var re *fed.RemoteError
		if errors.As(err, &re) {
			return proto.Errorf(re.Code, "%s", re.Reason)
		}
		s.log.Warn("peer unreachable", "peer", peer, "op", op, "err", err)
		return proto.Errorf(proto.CodeHomeUnreachable, "another administration does not answer; retry later")
	}
	if len(ans) > fed.MaxKeysBody || decodeStrict(ans, out) != nil {
		return s.refuse(peer, op, proto.CodeInternal, errors.New("malformed answer"))
	}
	return nil
}

// peerError turns what a handler's chat call returned into the refusal
// the peer gets.
func peerError(err error) error {
	if pe := proto.AsError(err); pe != nil {
		return &fed.RemoteError{Code: pe.Code, Reason: pe.Message}
	}
	return err
}

// claimQuery is the body of fed.OpKeyClaim.
type claimQuery struct {
	Claimer string   `json:"claimer"`
	Users   []string `json:"users"`
	Suite   uint16   `json:"suite,omitempty"`
}

// maxClaimUsers bounds the users of one claim across the link.
const maxClaimUsers = 100

// claimRemote claims KeyPackages of users of admin from admin. A claim
// that races the push of the room that makes them claimable (the
// invitation just made at the home) is asked again a few times.
func (s *Service) claimRemote(ctx context.Context, admin fed.AdminID, claimer string, users []string, suite uint16) (proto.Claim, error) {
	if len(users) > maxClaimUsers {
		return proto.Claim{}, proto.Errorf(proto.CodeTooLarge, "at most %d people of another administration at once", maxClaimUsers)
	}
	var got proto.Claim
	err := s.askPeer(ctx, admin, fed.OpKeyClaim, claimQuery{Claimer: claimer, Users: users, Suite: suite}, &got)
	if err != nil {
		return proto.Claim{}, err
	}
	if err := checkClaim(users, suite, &got); err != nil {
		return proto.Claim{}, s.refuse(admin, fed.OpKeyClaim, proto.CodeForbidden, err)
	}
	return got, nil
}

// checkClaim checks a peer's claim answer: only the users asked for,
// each KeyPackage well formed, in the suite asked, with a basic
// credential naming the very device it is listed for. A peer vouches
// for its own users' devices, never for anyone else's.
func checkClaim(users []string, suite uint16, c *proto.Claim) error {
	for _, k := range c.KeyPackages {
		if !slices.Contains(users, k.User) || !id.Valid(id.Device, k.Device) {
			return fmt.Errorf("%w: a KeyPackage of %s, who was not asked for", fed.ErrAuthority, k.User)
		}
		raw, err := base64.StdEncoding.DecodeString(k.KeyPackage)
		if err != nil {
			return fmt.Errorf("%w: KeyPackage of %s: %v", fed.ErrMalformed, k.User, err)
		}
		kp, err := mls.ParseKeyPackage(raw)
		if err != nil {
			return fmt.Errorf("%w: KeyPackage of %s: %v", fed.ErrMalformed, k.User, err)
		}
		if kp.CredentialType != mls.CredentialBasic || string(kp.CredentialIdentity) != proto.DeviceIdentity(k.User, k.Device) ||
			!suiteAllowed(kp.CipherSuite) || suite != 0 && uint16(kp.CipherSuite) != suite {
			return fmt.Errorf("%w: a KeyPackage listed for %s/%s is of another device or suite", fed.ErrAuthority, k.User, k.Device)
		}
	}
	for _, m := range c.Missing {
		if !slices.Contains(users, m.User) || !id.Valid(id.Device, m.Device) {
			return fmt.Errorf("%w: a device of %s, who was not asked for", fed.ErrAuthority, m.User)
		}
	}
	return nil
}

// handleKeyClaim hands out, to a claimer of the requesting
// administration, KeyPackages of users of this one, by the rules of a
// local claim (claimable, rate limits, each consumed once).
func (s *Service) handleKeyClaim(ctx context.Context, from fed.AdminID, body []byte) ([]byte, error) {
	var q claimQuery
	if len(body) > fed.MaxKeysBody || decodeStrict(body, &q) != nil || !id.Valid(id.User, q.Claimer) || len(q.Users) > maxClaimUsers ||
		q.Suite != 0 && !suiteAllowed(mls.CipherSuite(q.Suite)) {
		return nil, s.refuse(from, fed.OpKeyClaim, proto.CodeBadRequest, errors.New("malformed claim"))
	}
	if a, _ := s.fed.dir.AdminOf(q.Claimer); a != from {
		return nil, s.refuse(from, fed.OpKeyClaim, proto.CodeForbidden, fmt.Errorf("%w: %s claimed for %s", fed.ErrAuthority, from, q.Claimer))
	}
	var mine []string
	for _, u := range dedupe(q.Users, q.Claimer) {
		if id.Valid(id.User, u) && !s.remoteUser(u) && id.Home(u) == s.node {
			mine = append(mine, u)
		}
	}
	var out proto.Claim
	err := s.update(ctx, func(tx *store.Tx) error {
		out = proto.Claim{KeyPackages: []proto.ClaimedKey{}, Missing: []proto.DeviceName{}}
		return s.claimHere(tx, q.Claimer, "", mine, q.Suite, &out)
	})
	if err != nil {
		return nil, peerError(err)
	}
	return proto.Encode(out), nil
}

// deviceQuery is the body of fed.OpDeviceKeys.
type deviceQuery struct {
	Users []string `json:"users"`
}

type deviceAnswer struct {
	Devices []proto.DeviceKey `json:"devices"`
}

// remoteDeviceKeys asks admin for the devices of its users.
func (s *Service) remoteDeviceKeys(ctx context.Context, admin fed.AdminID, users []string) ([]proto.DeviceKey, error) {
	if len(users) > maxClaimUsers {
		return nil, proto.Errorf(proto.CodeTooLarge, "at most %d people of another administration at once", maxClaimUsers)
	}
	var got deviceAnswer
	if err := s.askPeer(ctx, admin, fed.OpDeviceKeys, deviceQuery{Users: users}, &got); err != nil {
		return nil, err
	}
	for _, d := range got.Devices {
		key, err := base64.StdEncoding.DecodeString(d.Key)
		if !slices.Contains(users, d.User) || !id.Valid(id.Device, d.Device) || err != nil || len(key) == 0 {
			return nil, s.refuse(admin, fed.OpDeviceKeys, proto.CodeForbidden,
				fmt.Errorf("%w: %s listed a device of %s, who was not asked for or not its user", fed.ErrAuthority, admin, d.User))
		}
	}
	return got.Devices, nil
}

// handleDeviceKeys lists the devices of agents of this administration
// (never its externals, who are not shared) for a peer.
func (s *Service) handleDeviceKeys(_ context.Context, from fed.AdminID, body []byte) ([]byte, error) {
	var q deviceQuery
	if len(body) > fed.MaxKeysBody || decodeStrict(body, &q) != nil || len(q.Users) > maxClaimUsers {
		return nil, s.refuse(from, fed.OpDeviceKeys, proto.CodeBadRequest, errors.New("malformed query"))
	}
	var mine []string
	for _, u := range q.Users {
		if id.Valid(id.User, u) && !s.remoteUser(u) && id.Home(u) == s.node {
			mine = append(mine, u)
		}
	}
	// An actor that is nobody: agents are listed, externals are not.
	keys, err := s.localDeviceKeys(Actor{}, mine)
	if err != nil {
		return nil, err
	}
	return proto.Encode(deviceAnswer{Devices: keys}), nil
}

// refsQuery is the body of fed.OpKeyRefs.
type refsQuery struct {
	Room  string   `json:"room"`
	Suite uint16   `json:"suite"`
	Refs  [][]byte `json:"refs"`
}

type refAnswer struct {
	Ref        []byte `json:"ref"`
	User       string `json:"user"`
	Device     string `json:"device"`
	LastResort bool   `json:"last_resort,omitempty"`
	NotAfter   uint64 `json:"not_after"`
}

type refsAnswer struct {
	Refs []refAnswer `json:"refs"`
}

// resolveRemoteRefs, at a room's home, learns whose KeyPackages the refs
// of a commit's Welcome name when this node did not hand them out: it
// asks every administration with members in the room, each vouching for
// its own users', and records what they answer (store.PutKeyPackageRef),
// so that welcomeTargets finds them. A retried commit asks nothing.
func (s *Service) resolveRemoteRefs(ctx context.Context, a Actor, f *proto.ClientFrame, suite uint16, refs [][]byte) error {
	if s.fed == nil || len(refs) == 0 || s.Remote(f.Room) {
		return nil
	}
	var unknown [][]byte
	var peers map[fed.AdminID]bool
	err := s.db.View(func(tx *store.Tx) error {
		if _, ok, err := replayed(tx, a, f); ok || err != nil {
			return err
		}
		for _, ref := range refs {
			if _, err := tx.KeyPackageRef(ref); errors.Is(err, store.ErrNotFound) {
				unknown = append(unknown, ref)
			} else if err != nil {
				return err
			}
		}
		var err error
		if len(unknown) > 0 {
			peers, err = s.peersIn(tx, f.Room)
		}
		return err
	})
	if err != nil || len(unknown) == 0 {
		return err
	}
	var found []refAnswer
	for p := range peers {
		var got refsAnswer
		if err := s.askPeer(ctx, p, fed.OpKeyRefs, refsQuery{Room: f.Room, Suite: suite, Refs: unknown}, &got); err != nil {
			return err
		}
		for _, r := range got.Refs {
			if owner, _ := s.fed.dir.AdminOf(r.User); owner != p || !id.Valid(id.Device, r.Device) ||
				!slices.ContainsFunc(unknown, func(u []byte) bool { return string(u) == string(r.Ref) }) {
				return s.refuse(p, fed.OpKeyRefs, proto.CodeForbidden,
					fmt.Errorf("%w: %s vouched for a KeyPackage of %s", fed.ErrAuthority, p, r.User))
			}
			found = append(found, r)
		}
	}
	if len(found) == 0 {
		return nil // welcomeTargets refuses the unknown refs
	}
	return s.update(ctx, func(tx *store.Tx) error {
		for _, r := range found {
			if err := tx.PutKeyPackageRef(r.Ref, store.KeyPackageRef{User: r.User, Device: r.Device, LastResort: r.LastResort, NotAfter: r.NotAfter}); err != nil {
				return err
			}
		}
		return nil
	})
}

// handleKeyRefs answers a room's home: which of these refs name
// KeyPackages of this administration's users. It answers only the home
// of the room named, for users of its own, and consumes what it vouches
// for (a last-resort KeyPackage excepted), so that no KeyPackage is used
// twice.
func (s *Service) handleKeyRefs(ctx context.Context, from fed.AdminID, body []byte) ([]byte, error) {
	var q refsQuery
	if len(body) > fed.MaxKeysBody || decodeStrict(body, &q) != nil || !id.Valid(id.Room, q.Room) || len(q.Refs) > maxClaimUsers*4 {
		return nil, s.refuse(from, fed.OpKeyRefs, proto.CodeBadRequest, errors.New("malformed query"))
	}
	if home, _ := s.fed.dir.AdminOf(q.Room); home != from || id.Home(q.Room) == s.node {
		return nil, s.refuse(from, fed.OpKeyRefs, proto.CodeForbidden, fmt.Errorf("%w: %s asked for the Welcome of %s, which it is not the home of", fed.ErrAuthority, from, q.Room))
	}
	out := refsAnswer{Refs: []refAnswer{}}
	err := s.update(ctx, func(tx *store.Tx) error {
		out.Refs = out.Refs[:0]
		for _, ref := range q.Refs {
			r, err := tx.KeyPackageRef(ref)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if s.remoteUser(r.User) || id.Home(r.User) != s.node {
				continue // a ref this node keeps as some room's home: not its to vouch for
			}
			out.Refs = append(out.Refs, refAnswer{Ref: ref, User: r.User, Device: r.Device, LastResort: r.LastResort, NotAfter: r.NotAfter})
			if !r.LastResort {
				if err := tx.DeleteKeyPackage(r.User, r.Device, q.Suite, ref); err != nil {
					return err
				}
				if err := tx.DeleteKeyPackageRef(ref); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return proto.Encode(out), nil
}

// welcomeQuery is the body of fed.OpWelcome.
type welcomeQuery struct {
	Room    string             `json:"room"`
	Seq     uint64             `json:"seq"`
	Epoch   uint64             `json:"epoch"`
	Data    []byte             `json:"data"`
	Devices []proto.DeviceName `json:"devices"`
}

// forwardWelcome hands a Welcome the home keeps for remote devices to
// their administrations, and forgets it for those that took it. What
// fails is handed again when the link comes back (retryWelcomes).
func (s *Service) forwardWelcome(w store.Welcome, to []store.DeviceRef) {
	byAdmin := map[fed.AdminID][]proto.DeviceName{}
	for _, d := range to {
		a, _ := s.fed.dir.AdminOf(d.User)
		byAdmin[a] = append(byAdmin[a], proto.DeviceName{User: d.User, Device: d.Device})
	}
	for admin, devices := range byAdmin {
		var ok struct{}
		err := s.askPeer(context.Background(), admin, fed.OpWelcome, welcomeQuery{Room: w.Room, Seq: w.Seq, Epoch: w.Epoch, Data: w.Data, Devices: devices}, &ok)
		if err != nil {
			s.log.Warn("welcome not handed over", "peer", admin, "room", w.Room, "err", err)
			continue
		}
		err = s.update(context.Background(), func(tx *store.Tx) error {
			for _, d := range devices {
				ref := store.DeviceRef{User: d.User, Device: d.Device}
				ws, err := tx.Welcomes(ref)
				if err != nil {
					return err
				}
				if slices.ContainsFunc(ws, func(x store.Welcome) bool { return x.Room == w.Room && x.Seq == w.Seq }) {
					if _, err := tx.DeleteWelcome(ref, w.Room); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, store.ErrClosed) {
			s.log.Error("forget a handed-over welcome", "room", w.Room, "err", err)
		}
	}
}

// retryWelcomes hands peer the Welcomes still kept here for its devices,
// in the rooms homed here it has members in.
func (s *Service) retryWelcomes(peer fed.AdminID) {
	type pending struct {
		w  store.Welcome
		to []store.DeviceRef
	}
	var todo []pending
	s.db.View(func(tx *store.Tx) error {
		rooms, err := tx.FedPeerRooms(string(peer))
		if err != nil {
			return err
		}
		for _, r := range rooms {
			if id.Home(r) != s.node {
				continue
			}
			bySeq := map[uint64]int{}
			for _, d := range tx.GroupDevices(r, "") {
				if a, _ := s.fed.dir.AdminOf(d.User); a != peer || !s.remoteUser(d.User) {
					continue
				}
				ws, err := tx.Welcomes(d)
				if err != nil {
					return err
				}
				for _, w := range ws {
					if w.Room != r {
						continue
					}
					i, ok := bySeq[w.Seq]
					if !ok {
						i = len(todo)
						bySeq[w.Seq] = i
						todo = append(todo, pending{w: w})
					}
					todo[i].to = append(todo[i].to, d)
				}
			}
		}
		return nil
	})
	for _, p := range todo {
		s.forwardWelcome(p.w, p.to)
	}
}

// handleWelcome takes, from a room's home, a Welcome for devices of this
// administration: only from the room's home, only for devices of its own
// users who are in the room (the replica is caught up first if they are
// not yet), each a device that registered a key here. It is kept for the
// devices until they acknowledge it, and pushed to them now.
func (s *Service) handleWelcome(ctx context.Context, from fed.AdminID, body []byte) ([]byte, error) {
	var q welcomeQuery
	if len(body) > fed.MaxKeysBody || decodeStrict(body, &q) != nil || !id.Valid(id.Room, q.Room) || len(q.Devices) == 0 || len(q.Devices) > maxClaimUsers*4 {
		return nil, s.refuse(from, fed.OpWelcome, proto.CodeBadRequest, errors.New("malformed welcome"))
	}
	if home, _ := s.fed.dir.AdminOf(q.Room); home != from || id.Home(q.Room) == s.node {
		return nil, s.refuse(from, fed.OpWelcome, proto.CodeForbidden, fmt.Errorf("%w: %s sent a Welcome to %s, which it is not the home of", fed.ErrAuthority, from, q.Room))
	}
	if w, err := mls.ParseMessage(q.Data); err != nil || w.WireFormat != mls.WireFormatWelcome {
		return nil, s.refuse(from, fed.OpWelcome, proto.CodeBadRequest, errors.New("not a Welcome"))
	}
	var targets []store.DeviceRef
	for _, d := range q.Devices {
		if !id.Valid(id.User, d.User) || !id.Valid(id.Device, d.Device) || s.remoteUser(d.User) || id.Home(d.User) != s.node {
			return nil, s.refuse(from, fed.OpWelcome, proto.CodeForbidden, fmt.Errorf("%w: %s sent a Welcome for %s/%s, a device of another administration", fed.ErrAuthority, from, d.User, d.Device))
		}
		targets = append(targets, store.DeviceRef{User: d.User, Device: d.Device})
	}
	check := func(tx *store.Tx) error {
		for _, d := range targets {
			if _, err := tx.DeviceKey(d.User, d.Device); err != nil {
				return fmt.Errorf("%w: a Welcome for %s/%s, which registered no key here", fed.ErrAuthority, d.User, d.Device)
			}
			m, err := tx.Member(q.Room, d.User)
			if err != nil || m.State != store.Joined && m.State != store.Invited {
				return errNotInRoom
			}
		}
		return nil
	}
	if err := s.db.View(check); errors.Is(err, errNotInRoom) {
		s.pull(from, q.Room) // the invitation may not have been pulled yet
	}
	err := s.update(ctx, func(tx *store.Tx) error {
		if err := check(tx); err != nil {
			return err
		}
		if err := tx.PutWelcome(store.Welcome{Room: q.Room, Seq: q.Seq, Epoch: q.Epoch, Data: q.Data}, targets); err != nil {
			return err
		}
		data := base64.StdEncoding.EncodeToString(q.Data)
		for _, d := range targets {
			frame := proto.Encode(proto.WelcomeFrame{T: proto.TWelcome, Room: q.Room, Device: d.Device, Epoch: q.Epoch, Seq: q.Seq, Data: data})
			tx.OnCommit(func() { s.PublishUser(d.User, frame) })
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, errNotInRoom) {
			err = fmt.Errorf("%w: a Welcome to %s for someone not in it", fed.ErrAuthority, q.Room)
		}
		return nil, s.refuse(from, fed.OpWelcome, proto.CodeForbidden, err)
	}
	return []byte("{}"), nil
}

var errNotInRoom = errors.New("chat: not in the room")

// groupInfoQuery is the body of fed.OpGroupInfo.
type groupInfoQuery struct {
	Room string `json:"room"`
	User string `json:"user"`
}

// remoteGroupInfo asks a room's home for its group's GroupInfo.
func (s *Service) remoteGroupInfo(a Actor, roomID string) (proto.GroupInfoAnswer, error) {
	home, ok := s.fed.dir.AdminOf(roomID)
	if !ok || a.External {
		return proto.GroupInfoAnswer{}, errNotFound()
	}
	var got proto.GroupInfoAnswer
	if err := s.askPeer(context.Background(), home, fed.OpGroupInfo, groupInfoQuery{Room: roomID, User: a.User}, &got); err != nil {
		return proto.GroupInfoAnswer{}, err
	}
	if got.Room != roomID {
		return proto.GroupInfoAnswer{}, s.refuse(home, fed.OpGroupInfo, proto.CodeInternal, errors.New("the GroupInfo of another room"))
	}
	return got, nil
}

// handleGroupInfo answers, at a room's home, a member's administration.
func (s *Service) handleGroupInfo(_ context.Context, from fed.AdminID, body []byte) ([]byte, error) {
	var q groupInfoQuery
	if len(body) > 1024 || decodeStrict(body, &q) != nil || !id.Valid(id.Room, q.Room) || !id.Valid(id.User, q.User) {
		return nil, s.refuse(from, fed.OpGroupInfo, proto.CodeBadRequest, errors.New("malformed query"))
	}
	if a, _ := s.fed.dir.AdminOf(q.User); a != from || id.Home(q.Room) != s.node {
		return nil, s.refuse(from, fed.OpGroupInfo, proto.CodeForbidden, fmt.Errorf("%w: %s asked for %s as %s", fed.ErrAuthority, from, q.Room, q.User))
	}
	gi, err := s.GroupInfo(Actor{User: q.User}, q.Room)
	if err != nil {
		return nil, peerError(err)
	}
	return proto.Encode(gi), nil
}
