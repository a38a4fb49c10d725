package proto

import "time"

// The bodies of the plain HTTP endpoints (PROTOCOL.md, "HTTP endpoints"
// and "Files"), declared once for the node and for the Go client.

// RegisterRequest is the body of POST /api/v1/register.
type RegisterRequest struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	DisplayName string `json:"display_name,omitempty"`
}

// VerifyRequest is the body of POST /api/v1/verify: the token of the
// mail's link, or the address and the code of the mail.
type VerifyRequest struct {
	Token string `json:"token,omitempty"`
	Email string `json:"email,omitempty"`
	Code  string `json:"code,omitempty"`
	// Password is the password given at registration: only the person
	// who registered can complete the registration, even with the mail.
	Password string `json:"password,omitempty"`
}

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	// Device names the device in the list of devices ("Firefox on
	// Windows"); the web client derives it from the user agent.
	Device string `json:"device,omitempty"`
	// Bearer asks for the token in the answer instead of a cookie, for
	// non-browser clients.
	Bearer bool `json:"bearer,omitempty"`
}

// SetupRequest is the body of POST /api/v1/setup: the first
// administrator, with the token the operator was given.
type SetupRequest struct {
	Token       string   `json:"token"`
	Email       string   `json:"email"`
	Password    string   `json:"password"`
	DisplayName string   `json:"display_name,omitempty"`
	Domains     []string `json:"domains,omitempty"`
}

// AcceptRequest is the body of POST /api/v1/invitation/accept: an
// external correspondent accepting an invitation.
type AcceptRequest struct {
	Token       string `json:"token"`
	Password    string `json:"password"`
	DisplayName string `json:"display_name,omitempty"`
}

// DisplayNameRequest is the body of PATCH /api/v1/me.
type DisplayNameRequest struct {
	DisplayName string `json:"display_name"`
}

// DeviceRename is the body of PATCH /api/v1/devices/{id}, and its answer
// (the name as stored, spaces folded).
type DeviceRename struct {
	Name string `json:"name"`
}

// PasswordChange is the body of POST /api/v1/password.
type PasswordChange struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

// ResetRequest is the body of POST /api/v1/password/reset.
type ResetRequest struct {
	Email string `json:"email"`
}

// ResetConfirm is the body of POST /api/v1/password/reset/confirm.
type ResetConfirm struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

// RenewRequest is the body of POST /api/v1/renew: the token of the mail
// that extends an external account.
type RenewRequest struct {
	Token string `json:"token"`
}

// Me is what a signed-in user learns about themselves (GET /api/v1/me,
// and the answer of a sign-in).
type Me struct {
	Profile
	Email   string    `json:"email"`
	Admin   bool      `json:"admin,omitempty"`
	Device  string    `json:"device"`
	Expires time.Time `json:"expires,omitzero"`
}

// LoginAnswer is the answer of a successful sign-in.
type LoginAnswer struct {
	Me
	// Token is the session token, when LoginRequest.Bearer asked for it.
	Token string `json:"token,omitempty"`
}

// UploadRequest is the body of POST /api/v1/media/uploads.
type UploadRequest struct {
	Room string `json:"room"`
	// Name is the file's name, sanitized by the node; in an encrypted
	// room a client may send a neutral one (the real name travels inside
	// the MLS message).
	Name string `json:"name"`
	// Size is the exact number of bytes that will be sent.
	Size int64 `json:"size"`
	// Type is the content type the client believes the file has; it is
	// checked against the blocked types and never served.
	Type string `json:"type,omitempty"`
	// Encrypted is, in an encrypted room of a node that scans them, the
	// file key sealed to the node's scanner key.
	Encrypted *SealedKey `json:"encrypted,omitempty"`
}

// SealedKey is a file key sealed to the scanner key with HPKE: the
// encapsulated key and the ciphertext, in base64 in JSON.
type SealedKey struct {
	Enc    []byte `json:"enc"`
	Sealed []byte `json:"sealed"`
}

// UploadState is where an upload stands.
type UploadState struct {
	ID     string `json:"id"`
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	// ChunkSize is the suggested size of each PUT.
	ChunkSize int `json:"chunk_size,omitempty"`
}

// FileInfo is the answer of GET /api/v1/media/files/{id}/state.
type FileInfo struct {
	Room string `json:"room"`
	// Seq is the event that carries the file; 0 until it is posted.
	Seq  uint64 `json:"seq,omitempty"`
	File File   `json:"file"`
}

// ScannerKey is the answer of GET /api/v1/media/scanner-key.
type ScannerKey struct {
	// Enabled says that files of encrypted rooms must come with their key
	// sealed to PublicKey.
	Enabled bool `json:"enabled"`
	// PublicKey is the HPKE public key (base64 in JSON).
	PublicKey []byte `json:"public_key,omitempty"`
	// Suite names the HPKE suite by its RFC 9180 identifiers.
	Suite *HPKESuite `json:"suite,omitempty"`
	// Info is the HPKE info string of the seal.
	Info string `json:"info,omitempty"`
}

// HPKESuite is an HPKE suite: KEM 0x647a (X-Wing), KDF 1 (HKDF-SHA256),
// AEAD 2 (AES-256-GCM).
type HPKESuite struct {
	KEM  uint16 `json:"kem"`
	KDF  uint16 `json:"kdf"`
	AEAD uint16 `json:"aead"`
}
