package chat

import (
	"testing"

	"relais/server/store"
)

// TestRoleTable pins the role table: every action for every role and kind
// of room. Changing a rule means changing this table on purpose.
func TestRoleTable(t *testing.T) {
	all := []Action{ActInvite, ActRemove, ActBan, ActChangeRole, ActRename, ActSettings, ActDeleteOthers, ActSend, ActRead, ActLeave}
	want := map[store.RoomKind]map[store.Role][]Action{
		store.Group: {
			store.Owner:     all,
			store.Moderator: {ActInvite, ActRemove, ActBan, ActRename, ActDeleteOthers, ActSend, ActRead, ActLeave},
			store.Member:    {ActSend, ActRead, ActLeave},
		},
		store.Forum: {
			store.Owner:     all,
			store.Moderator: {ActInvite, ActRemove, ActBan, ActRename, ActDeleteOthers, ActSend, ActRead, ActLeave},
			store.Member:    {ActSend, ActRead, ActLeave},
		},
		store.Direct: {
			store.Owner:     {ActSend, ActRead, ActLeave},
			store.Moderator: {ActSend, ActRead, ActLeave},
			store.Member:    {ActSend, ActRead, ActLeave},
		},
	}
	for kind, roles := range want {
		for role, allowed := range roles {
			set := map[Action]bool{}
			for _, a := range allowed {
				set[a] = true
			}
			for _, a := range all {
				if got := Allowed(kind, role, a); got != set[a] {
					t.Errorf("%s/%s/%s: allowed = %v, want %v", kind, role, a, got, set[a])
				}
			}
		}
	}
	for _, c := range []struct {
		a, b store.Role
		want bool
	}{
		{store.Owner, store.Moderator, true}, {store.Owner, store.Member, true}, {store.Moderator, store.Member, true},
		{store.Moderator, store.Moderator, false}, {store.Moderator, store.Owner, false}, {store.Owner, store.Owner, false},
		{store.Member, store.Member, false},
	} {
		if got := Outranks(c.a, c.b); got != c.want {
			t.Errorf("Outranks(%s, %s) = %v", c.a, c.b, got)
		}
	}
}
