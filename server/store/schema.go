package store

// The schema of the accounts, rooms and events: their buckets and key
// layouts live in this file. The other buckets are declared next to their
// code, each file with its own layout comment: MLS in mls.go
// (mlsBuckets), attachments in files.go (fileBuckets); migrate.go creates
// them all.
//
// Integers in keys are big-endian so that bbolt's byte order is numeric
// order. "\x00" separates variable-length parts of composite keys; no
// identifier, e-mail address or folded name contains a NUL byte.
//
//	meta        "schema" → uint64; "node" → node id; "created" → RFC 3339;
//	            "domains" → JSON []string; "feed_published" → uint64
//	users       user id → JSON User
//	emails      canonical e-mail → user id
//	names       folded display name \x00 user id → nil   (directory of active agents)
//	sessions    SHA-256(token) → JSON Session
//	devices     user id \x00 device id → SHA-256(token)
//	tokens      SHA-256(token) → JSON Token              (verification, reset, renewal, setup, invitation)
//	rooms       room id → JSON Room
//	members     room id \x00 user id → JSON Member
//	userrooms   user id \x00 room id → nil               (rooms a user is joined or invited to)
//	dms         user id \x00 user id (sorted) → room id
//	forums      folded name \x00 room id → nil           (room directory)
//	events      room id → bucket: seq (8) → event record (see events.go)
//	idem, idemb user id \x00 client id → room id \x00 seq (8) ts (8)
//	            (two generations of client ids, see IdemWindow; meta
//	            "idem_current" names the current one, "a" (idem) or "b",
//	            and "idem_since" → Unix ms (8) when it became current)
//	reads       room id \x00 user id → seq (8) ord (8)
//	mentions    user id \x00 room id \x00 seq (8) → nil
//	feed        gseq (8) → seq (8) room id               (transactional outbox, in commit order)
//	audit       Unix ns (8) seq (8) → JSON AuditEntry    (administrative actions, append-only; audit.go)
//	fedlog      room id \x00 seq (8) → signed record      (rooms shared with other administrations, fed.go)
//	fedhead     room id → seq (8) hash (32)              (the end of the room's hash chain)
//	fedrooms    room id \x00 admin id → JSON FedRoomPeer (at the home: who may pull the room, from where)
//	search      room id \x00 word \x00 seq (8) → nil     (words of unencrypted messages; search.go)
var (
	bMeta      = []byte("meta")
	bUsers     = []byte("users")
	bEmails    = []byte("emails")
	bNames     = []byte("names")
	bSessions  = []byte("sessions")
	bDevices   = []byte("devices")
	bTokens    = []byte("tokens")
	bRooms     = []byte("rooms")
	bMembers   = []byte("members")
	bUserRooms = []byte("userrooms")
	bDMs       = []byte("dms")
	bForums    = []byte("forums")
	bEvents    = []byte("events")
	bIdem      = []byte("idem")
	bIdemB     = []byte("idemb")
	bReads     = []byte("reads")
	bMentions  = []byte("mentions")
	bFeed      = []byte("feed")
	bFedLog    = []byte("fedlog")
	bFedHead   = []byte("fedhead")
	bFedRooms  = []byte("fedrooms")
)

var (
	kSchema        = []byte("schema")
	kNode          = []byte("node")
	kCreated       = []byte("created")
	kDomains       = []byte("domains")
	kFeedPublished = []byte("feed_published")
	kIdemCurrent   = []byte("idem_current")
	kIdemSince     = []byte("idem_since")
)
