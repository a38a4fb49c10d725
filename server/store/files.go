package store

// Buckets of attachments (version 2 of the schema). Key layouts are
// documented next to each name; the records and their methods are in
// filesdb.go. Hashes in keys are the 32 raw bytes of a SHA-256, times are
// big-endian Unix milliseconds, and "\x00" ends a user id.
var fileBuckets = [][]byte{bFiles, bBlobs, bUploads, bPendingScans}

var (
	// files holds the file records and their indexes, told apart by the
	// first byte of the key:
	//
	//	'f' file id                      → JSON File
	//	'b' SHA-256 (32) file id         → nil         (the files of a blob)
	//	'o' owner \x00 file id           → uint64 size (bytes counted against the owner's quota)
	//	'a' created ms (8) file id       → nil         (files not yet posted in a message, oldest first)
	bFiles = []byte("files")
	// blobs: SHA-256 (32) → JSON Blob (size, type, scan state, reference
	// count, thumbnail).
	bBlobs = []byte("blobs")
	// uploads: upload id → JSON Upload (owner, room, name, declared size
	// and type, the sealed file key of an encrypted file): the record of
	// an upload, written before its bytes (package blob) and authoritative.
	bUploads = []byte("uploads")
	// pendingscans: SHA-256 (32) → JSON SealedKey ("{}" for a file of an
	// unencrypted room), the blobs waiting for the antivirus. The sealed
	// key of an encrypted file is kept only while its scan is pending.
	bPendingScans = []byte("pendingscans")
)
