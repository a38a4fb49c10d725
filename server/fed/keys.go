package fed

// Operations of end-to-end encryption across administrations. A room's
// home is its MLS Delivery Service; the devices, KeyPackages and
// Welcomes of a user are their own administration's, which alone vouches
// for them: every answer is checked to speak only of users of the
// administration whose link it came over. Bodies are JSON (server/chat).
const (
	// OpKeyClaim: the claimer's administration takes one KeyPackage of
	// each device of users of the answering one, consumed there as on one
	// node.
	OpKeyClaim = "key_claim"
	// OpDeviceKeys: the devices and signature keys of users of the
	// answering administration.
	OpDeviceKeys = "device_keys"
	// OpKeyRefs: a room's home asks whose KeyPackages the refs of a
	// Welcome name; the answering administration vouches for its users'
	// and consumes them.
	OpKeyRefs = "key_refs"
	// OpWelcome: a room's home hands a Welcome to the administration of
	// the devices it adds, which keeps it for them until acknowledged.
	OpWelcome = "welcome"
	// OpGroupInfo: a member's administration asks the room's home for
	// the group's latest GroupInfo (an external join).
	OpGroupInfo = "group_info"
)

// MaxKeysBody bounds the body of a key operation's request or answer,
// the link's own bound: some 300 X-Wing KeyPackages (~3.6 KB each in
// base64).
const MaxKeysBody = 1 << 20
