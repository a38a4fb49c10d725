package proto

// Attachments: the antivirus states of a file, the event that reports a
// verdict to a room and the live frame that reports it to the uploader.
// The HTTP endpoints of files are in PROTOCOL.md ("Files").

// EvFileState is the event type appended by the node when the antivirus
// decides on a posted file: {"type":"file_state","target":<seq of the
// file event>,"file":{"id","state","code"?,"reason"?}}. The target's
// stored copy carries the same state.
const EvFileState = "file_state"

// TFileState is the live frame sent to the uploader's devices when the
// antivirus decides on one of their files, posted or not:
// {"t":"file_state","room","file":{"id","state","code"?,"reason"?}}.
const TFileState = "file_state"

// The states of a file (File.State).
const (
	FilePending     = "pending"     // waiting for the antivirus: only the uploader may download it
	FileClean       = "clean"       // scanned, anyone in the room may download it
	FileQuarantined = "quarantined" // refused and deleted; Code says why
	FileUnscanned   = "unscanned"   // end-to-end encrypted, the node cannot open it (scanning is off)
)

// What became of an invitation of an external correspondent (the
// "invitation" of invite_external's result): the inviter is told the
// truth, never "sent" when nothing was.
const (
	InvitationMailed   = "mailed"   // a mail with the link went out
	InvitationApproval = "approval" // no mail relay: an administrator hands the link over
	InvitationPending  = "pending"  // an invitation to the address was pending: the room joins it, no new mail
	InvitationPeer     = "peer"     // the address is an agent of a peered administration: invited as such, no mail
)

// What passed a clean file (File.Checked).
const (
	CheckedAntivirus = "antivirus" // clamd, after the built-in policy
	CheckedPolicy    = "policy"    // the built-in policy only: the node has no antivirus
)

// FileStateFrame is the TFileState frame.
type FileStateFrame struct {
	T    string `json:"t"`
	Room string `json:"room"`
	File File   `json:"file"`
}

// Error codes of attachments (uploads, downloads, the antivirus), kept
// here next to the states they go with. The codes of the built-in policy
// and of the antivirus are also the "code" of a quarantined file.
const (
	CodeQuotaExceeded      = "quota_exceeded"      // the user's files would exceed their quota
	CodeTooManyUploads     = "too_many_uploads"    // too many unfinished uploads
	CodeOffsetMismatch     = "offset_mismatch"     // a chunk that does not start where the upload stands (Upload-Offset says where)
	CodeInterrupted        = "interrupted"         // a chunk ended early; resume from the upload's offset
	CodeIncomplete         = "incomplete"          // finishing an upload with fewer bytes than declared
	CodeBusy               = "busy"                // another request on this upload is under way
	CodeBlockedType        = "blocked_type"        // executables, scripts, installers… by name, declared type or content
	CodeArchiveBomb        = "archive_bomb"        // an archive that expands too much
	CodeArchiveNested      = "archive_nested"      // archives nested too deep, or too large to inspect
	CodeArchiveEncrypted   = "archive_encrypted"   // password-protected archive entries cannot be scanned
	CodeArchiveInvalid     = "archive_invalid"     // corrupt archive, or entry paths escaping it
	CodeImageTooLarge      = "image_too_large"     // an image with too many pixels (decompression bomb)
	CodeImageInvalid       = "image_invalid"       // not a readable image
	CodeUndecryptable      = "undecryptable"       // an encrypted file the sealed key does not open
	CodeInfected           = "infected"            // the antivirus found a signature
	CodeScannerUnavailable = "scanner_unavailable" // the antivirus is down and the operator chose to refuse files meanwhile
	CodeScanPending        = "scan_pending"        // the file waits for the antivirus: only its uploader may download it
	CodeQuarantined        = "quarantined"         // the file was refused and deleted; detail says why
	CodeNotEncrypted       = "not_encrypted"       // a file for an encrypted room that is not end-to-end encrypted
)
