package store

// Buckets of the MLS Delivery Service (version 2 of the schema). Key
// layouts are documented next to each name; the methods are in mlsdb.go.
// The node keeps only public MLS data and ciphertext here: KeyPackages,
// signature public keys, GroupInfos, Welcomes and encrypted backups.
//
// A device is named by the pair user id, device id: the identity of its
// MLS credential is "<user id>/<device id>".
var mlsBuckets = [][]byte{
	bKeyPackages, bKeyPackageRefs, bDeviceKeys, bMLSGroups, bWelcomes, bKeyBackups,
}

var (
	// keypackages: user id \x00 device id \x00 suite (2) ref → not_after (8) | KeyPackage
	// (the MLSMessage bytes as uploaded). The device's last-resort package
	// of a suite is under suite (2) "~" instead of suite (2) ref: a ref is
	// 32 or 64 bytes, so the length of what follows the second NUL tells
	// them apart. not_after is the end of the package's lifetime, Unix
	// seconds, so that claims skip expired packages without parsing.
	bKeyPackages = []byte("keypackages")
	// kprefs: ref → JSON KeyPackageRef {user, device, last_resort,
	// not_after}, for routing Welcomes. It outlives the claim of its
	// package (the Welcome comes after the claim) and is deleted when a
	// Welcome consumes it (last-resort refs stay).
	bKeyPackageRefs = []byte("kprefs")
	// devicekeys: user id \x00 device id → JSON DeviceKey {key, created}:
	// the signature public key bound to the device by its first KeyPackage.
	bDeviceKeys = []byte("devicekeys")
	// mlsgroups, per room (room ids contain no NUL):
	//	room id                                  → JSON MLSGroup {epoch, suite, pending}
	//	room id \x00 "i"                         → latest GroupInfo (MLSMessage bytes)
	//	room id \x00 "d" \x00 user id \x00 device id → nil   (devices in the group)
	bMLSGroups = []byte("mlsgroups")
	// welcomes, one blob per commit and one pointer per target device:
	//	"w" room id \x00 seq (8)                      → epoch (8) | Welcome (MLSMessage bytes)
	//	"d" user id \x00 device id \x00 room id       → seq (8)   (waiting for the device's ack)
	//	"r" room id \x00 seq (8) user id \x00 device id → nil     (who still needs blob seq)
	// seq is the room event of the commit the Welcome goes with; a blob is
	// deleted with its last "r" key.
	bWelcomes = []byte("welcomes")
	// keybackups: user id \x00 name → updated (8, Unix ms) | ciphertext.
	bKeyBackups = []byte("keybackups")
)
