package chat

import "relais/server/store"

// Action is something a member may or may not do in a room.
type Action string

// The actions the role table governs.
const (
	ActInvite       Action = "invite"        // invite people (and externals, where allowed)
	ActRemove       Action = "remove"        // remove a member of lower rank
	ActBan          Action = "ban"           // ban (and unban) a member of lower rank
	ActChangeRole   Action = "change_role"   // promote or demote
	ActRename       Action = "rename"        // change the name and topic
	ActSettings     Action = "settings"      // change whether externals are accepted
	ActDeleteOthers Action = "delete_others" // delete other people's messages
	ActSend         Action = "send"          // post messages, react, edit and delete one's own
	ActRead         Action = "read"          // read history, members, receipts; typing
	ActLeave        Action = "leave"         // leave (the last owner must hand over first)
)

// roleRules is the role table of group rooms and forums: who may do what.
// Direct rooms have no management at all: only ActSend, ActRead and
// ActLeave.
//
//	action          owner  moderator  member
//	invite            ✓        ✓
//	remove            ✓        ✓ (members only)
//	ban               ✓        ✓ (members only)
//	change_role       ✓
//	rename            ✓        ✓
//	settings          ✓
//	delete_others     ✓        ✓
//	send              ✓        ✓          ✓
//	read              ✓        ✓          ✓
//	leave             ✓*       ✓          ✓     (* not the last owner while others remain)
var roleRules = map[store.Role]map[Action]bool{
	store.Owner: {
		ActInvite: true, ActRemove: true, ActBan: true, ActChangeRole: true,
		ActRename: true, ActSettings: true, ActDeleteOthers: true, ActSend: true, ActRead: true, ActLeave: true,
	},
	store.Moderator: {
		ActInvite: true, ActRemove: true, ActBan: true,
		ActRename: true, ActDeleteOthers: true, ActSend: true, ActRead: true, ActLeave: true,
	},
	store.Member: {
		ActSend: true, ActRead: true, ActLeave: true,
	},
}

var directRules = map[Action]bool{ActSend: true, ActRead: true, ActLeave: true}

// rank orders roles: an actor may remove or ban only someone of strictly
// lower rank.
var rank = map[store.Role]int{store.Owner: 3, store.Moderator: 2, store.Member: 1}

// Allowed reports whether a member with role may do act in a room of kind.
func Allowed(kind store.RoomKind, role store.Role, act Action) bool {
	if kind == store.Direct {
		return directRules[act]
	}
	return roleRules[role][act]
}

// Outranks reports whether role a is strictly above role b.
func Outranks(a, b store.Role) bool { return rank[a] > rank[b] }
