package account

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"relais/server/bus"
	"relais/server/id"
	"relais/server/password"
	"relais/server/proto"
	"relais/server/store"
	"relais/server/store/storetest"
)

const testPassword = "Velours-Cuivre-42"

// clock is a settable time for the service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// accounts is a service on a real bbolt store, with agents.gouv.fr
// allowed by the configuration and no mail relay.
type accounts struct {
	t     *testing.T
	s     *Service
	db    *store.DB
	clock *clock
	ctx   context.Context
}

func newAccounts(t *testing.T) *accounts {
	t.Helper()
	db := storetest.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c := &clock{t: time.Now()}
	s, err := New(ctx, db, bus.Discard{}, Config{Domains: []string{"agents.gouv.fr"}, PublicURL: "https://relais.test",
		Password: password.TestParams, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &accounts{t: t, s: s, db: db, clock: c, ctx: ctx}
}

// user creates an account in state, with the test password.
func (a *accounts) user(email string, state store.UserState, external bool) store.User {
	a.t.Helper()
	hash, err := password.Hash(a.ctx, testPassword, password.TestParams)
	if err != nil {
		a.t.Fatal(err)
	}
	u := store.User{ID: id.NewUser(a.db.Node()), Email: email, Name: "Agent", Org: "agents.gouv.fr", Password: hash,
		State: state, External: external, Created: a.clock.now()}
	if err := a.db.Update(a.ctx, func(tx *store.Tx) error { return tx.CreateUser(u) }); err != nil {
		a.t.Fatal(err)
	}
	return u
}

// stored reads a user back.
func (a *accounts) stored(userID string) store.User {
	a.t.Helper()
	u, err := a.db.User(userID)
	if err != nil {
		a.t.Fatal(err)
	}
	return u
}

func (a *accounts) login(email, pw string) (Login, error) {
	return a.s.Login(a.ctx, proto.LoginRequest{Email: email, Password: pw, Device: "test"}, "192.0.2.1")
}

// code is the stable code of err, or "" for nil.
func code(err error) string {
	if err == nil {
		return ""
	}
	if pe := proto.AsError(err); pe != nil {
		return pe.Code
	}
	return "not a protocol error: " + err.Error()
}

// TestPromoteAdmin: only an active agent can be made an administrator.
func TestPromoteAdmin(t *testing.T) {
	a := newAccounts(t)
	active := a.user("jeanne.martin@agents.gouv.fr", store.UserActive, false)
	a.user("ancien@agents.gouv.fr", store.UserDeactivated, false)
	a.user("attente@agents.gouv.fr", store.UserPending, false)
	a.user("consultant@cabinet.fr", store.UserActive, true)
	for _, c := range []struct {
		email, code string
	}{
		{"jeanne.martin@agents.gouv.fr", ""},
		{"Jeanne.Martin@AGENTS.gouv.fr", ""}, // the same address, canonicalized; promoting twice is fine
		{"ancien@agents.gouv.fr", proto.CodeConflict},
		{"attente@agents.gouv.fr", proto.CodeConflict},
		{"consultant@cabinet.fr", proto.CodeConflict},
		{"personne@agents.gouv.fr", proto.CodeNotFound},
		{"x@gmail.com@agents.gouv.fr", proto.CodeEmailInvalid},
	} {
		t.Run(c.email, func(t *testing.T) {
			if got := code(a.s.PromoteAdmin(a.ctx, c.email)); got != c.code {
				t.Fatalf("PromoteAdmin = %q, want %q", got, c.code)
			}
		})
	}
	users, err := a.s.Users()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Admin != (u.ID == active.ID) {
			t.Errorf("%s admin = %v", u.Email, u.Admin)
		}
		if u.Password != "" {
			t.Errorf("Users shows %s's password hash", u.Email)
		}
	}
}

// TestAdminResetLink: the operator's reset link signs every device out,
// sets a new password once, and is refused for what is not an active
// account.
func TestAdminResetLink(t *testing.T) {
	a := newAccounts(t)
	u := a.user("jeanne.martin@agents.gouv.fr", store.UserActive, false)
	a.user("ancien@agents.gouv.fr", store.UserDeactivated, false)
	var sessions []Login
	for range 2 {
		l, err := a.login(u.Email, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, l)
	}
	for _, c := range []struct {
		email, code string
	}{
		{"ancien@agents.gouv.fr", proto.CodeNotFound},
		{"personne@agents.gouv.fr", proto.CodeNotFound},
		{"pas une adresse", proto.CodeEmailInvalid},
	} {
		if _, err := a.s.AdminResetLink(a.ctx, c.email); code(err) != c.code {
			t.Errorf("AdminResetLink(%q) = %v, want %s", c.email, err, c.code)
		}
	}
	link, err := a.s.AdminResetLink(a.ctx, u.Email)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range sessions {
		if _, err := a.s.Resolve(l.Token); err == nil {
			t.Errorf("session %d still signed in after the reset link", i)
		}
	}
	token, ok := strings.CutPrefix(link, "https://relais.test/reset?token=")
	if !ok {
		t.Fatalf("link %q", link)
	}
	const next = "Granit-Saule-Ocre-77"
	steps := []struct {
		name string
		do   func() error
		code string
	}{
		{"a wrong token", func() error { return a.s.ConfirmReset(a.ctx, token+"x", next, "192.0.2.1") }, proto.CodeInvalidToken},
		{"the new password", func() error { return a.s.ConfirmReset(a.ctx, token, next, "192.0.2.1") }, ""},
		{"the link again", func() error { return a.s.ConfirmReset(a.ctx, token, "Autre-Chose-Longue-99", "192.0.2.1") }, proto.CodeInvalidToken},
		{"the old password", func() error { _, err := a.login(u.Email, testPassword); return err }, proto.CodeBadCredentials},
		{"the new one", func() error { _, err := a.login(u.Email, next); return err }, ""},
	}
	for _, st := range steps {
		if got := code(st.do()); got != st.code {
			t.Fatalf("%s: %q, want %q", st.name, got, st.code)
		}
	}
	// A link expires.
	link, err = a.s.AdminResetLink(a.ctx, u.Email)
	if err != nil {
		t.Fatal(err)
	}
	a.clock.add(resetTTL + time.Minute)
	token, _ = strings.CutPrefix(link, "https://relais.test/reset?token=")
	if err := a.s.ConfirmReset(a.ctx, token, "Encore-Un-Autre-55", "192.0.2.1"); code(err) != proto.CodeInvalidToken {
		t.Fatalf("expired link: %v", err)
	}
}

// TestRemoveDomains: an operator removes what they added, not what the
// configuration sets; a removed domain no longer registers.
func TestRemoveDomains(t *testing.T) {
	a := newAccounts(t)
	if err := a.s.AddDomains(a.ctx, "mairie-exemple.fr", "*.region.fr"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		remove  []string
		code    string
		domains []string
	}{
		{"one set by the configuration", []string{"agents.gouv.fr"}, proto.CodeConflict, []string{"*.region.fr", "agents.gouv.fr", "mairie-exemple.fr"}},
		{"not a domain", []string{"pas un domaine"}, proto.CodeBadRequest, []string{"*.region.fr", "agents.gouv.fr", "mairie-exemple.fr"}},
		{"one added", []string{"mairie-exemple.fr"}, "", []string{"*.region.fr", "agents.gouv.fr"}},
		{"one not there", []string{"mairie-exemple.fr"}, "", []string{"*.region.fr", "agents.gouv.fr"}},
		{"a wildcard", []string{"*.region.fr"}, "", []string{"agents.gouv.fr"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := code(a.s.RemoveDomains(a.ctx, c.remove...)); got != c.code {
				t.Fatalf("RemoveDomains = %q, want %q", got, c.code)
			}
			if got := a.s.Domains(); !slices.Equal(got, c.domains) {
				t.Fatalf("Domains = %v, want %v", got, c.domains)
			}
			var stored []string
			if err := a.db.View(func(tx *store.Tx) error {
				var err error
				stored, err = tx.Domains()
				return err
			}); err != nil {
				t.Fatal(err)
			}
			slices.Sort(stored)
			if !slices.Equal(stored, c.domains) {
				t.Fatalf("stored domains = %v, want %v", stored, c.domains)
			}
		})
	}
	if _, err := a.s.Register(a.ctx, proto.RegisterRequest{Email: "agent@mairie-exemple.fr", Password: testPassword}, "192.0.2.1"); code(err) != proto.CodeEmailNotAllowed {
		t.Fatalf("registration on a removed domain: %v", err)
	}
}

// TestSetDisplayName: the name others read is stored tidied, and refused
// with its detail when it could mislead.
func TestSetDisplayName(t *testing.T) {
	a := newAccounts(t)
	u := a.user("jeanne.martin@agents.gouv.fr", store.UserActive, false)
	for _, c := range []struct {
		name, given, stored, detail string
	}{
		{"a plain name", "Jeanne Martin", "Jeanne Martin", ""},
		{"spaces tidied", "  Jeanne \t  Martin-Durand ", "Jeanne Martin-Durand", ""},
		{"accents", "Élodie Lefèvre", "Élodie Lefèvre", ""},
		{"empty", "   ", "", NameEmpty},
		{"too long", strings.Repeat("a", proto.MaxName+1), "", NameTooLong},
		{"a control character", "Jeanne\x07Martin", "", NameControl},
		{"a direction override", "Jeanne \u202enitraM", "", NameInvisible},
		{"not text", "Jeanne \xff", "", NameInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := a.stored(u.ID).Name
			err := a.s.SetDisplayName(a.ctx, u.ID, c.given)
			if c.detail == "" {
				if err != nil || a.stored(u.ID).Name != c.stored {
					t.Fatalf("SetDisplayName: %v, stored %q, want %q", err, a.stored(u.ID).Name, c.stored)
				}
				return
			}
			pe := proto.AsError(err)
			if pe == nil || pe.Code != proto.CodeNameInvalid || pe.Detail != c.detail {
				t.Fatalf("SetDisplayName = %v, want name_invalid/%s", err, c.detail)
			}
			if a.stored(u.ID).Name != before {
				t.Fatalf("a refused name changed the stored one to %q", a.stored(u.ID).Name)
			}
		})
	}
	if err := a.s.SetDisplayName(a.ctx, id.NewUser(a.db.Node()), "Personne"); err == nil {
		t.Fatal("renamed a user who does not exist")
	}
}

// TestInvitationList: the operator of a node without a relay sees the
// pending invitations of externals, each with its room and inviter, not
// those of agents' addresses nor expired ones, and approving one gives a
// fresh link that replaces the earlier ones.
func TestInvitationList(t *testing.T) {
	a := newAccounts(t)
	inviter := a.user("jeanne.martin@agents.gouv.fr", store.UserActive, false)
	room := store.Room{ID: id.NewRoom(a.db.Node()), Kind: store.Group, Externals: true}
	other := store.Room{ID: id.NewRoom(a.db.Node()), Kind: store.Group, Externals: true}
	invites := []struct {
		email   string
		room    store.Room
		code    string
		outcome string
	}{
		{"consultant@cabinet.fr", room, "", proto.InvitationApproval},
		{"avocate@barreau.fr", other, "", proto.InvitationApproval},
		{"consultant@cabinet.fr", other, "", proto.InvitationPending}, // pending: joins the first, no second link
		{"collegue@agents.gouv.fr", room, proto.CodeConflict, ""},
		{"pas une adresse", room, proto.CodeEmailInvalid, ""},
	}
	for _, in := range invites {
		_, outcome, err := a.s.InviteExternal(a.ctx, inviter, in.email, in.room)
		if code(err) != in.code || outcome != in.outcome {
			t.Fatalf("invite %s: %q, %v; want %q, %q", in.email, outcome, err, in.outcome, in.code)
		}
	}
	list := func() map[string]Invitation {
		t.Helper()
		invs, err := a.s.Invitations()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]Invitation{}
		for _, inv := range invs {
			out[inv.Email] = inv
		}
		return out
	}
	got := list()
	if len(got) != 2 || got["consultant@cabinet.fr"].RoomID != room.ID || got["avocate@barreau.fr"].RoomID != other.ID ||
		got["consultant@cabinet.fr"].By != inviter.ID {
		t.Fatalf("Invitations = %+v", got)
	}

	first, err := a.s.ApproveInvitation(a.ctx, "consultant@cabinet.fr")
	if err != nil {
		t.Fatal(err)
	}
	second, err := a.s.ApproveInvitation(a.ctx, "consultant@cabinet.fr")
	if err != nil || second == first {
		t.Fatalf("second approval: %q, %v", second, err)
	}
	peek := func(link string) error {
		token, _ := strings.CutPrefix(link, "https://relais.test/invite?token=")
		_, err := a.s.PeekInvitation(token)
		return err
	}
	if err := peek(first); err == nil {
		t.Error("the replaced link still opens the invitation")
	}
	if err := peek(second); err != nil {
		t.Errorf("the fresh link: %v", err)
	}
	for _, email := range []string{"collegue@agents.gouv.fr", "personne@cabinet.fr"} {
		if _, err := a.s.ApproveInvitation(a.ctx, email); code(err) != proto.CodeNotFound {
			t.Errorf("approving %s: %v", email, err)
		}
	}
	// Expired invitations leave the list (the approved one's term started
	// again at its approval, and is over too).
	a.clock.add(invitationTTL + time.Minute)
	if got := list(); len(got) != 0 {
		t.Fatalf("expired invitations listed: %+v", got)
	}
}
