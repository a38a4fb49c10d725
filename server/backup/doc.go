// Package backup makes and restores a node's backup archive: the store as
// one transaction saw it, the media files that store names, the scanner
// key and the TLS state, in one file, optionally encrypted to a
// passphrase.
//
// # Archive format, version 1
//
// A file is a header followed by a body. The header is
//
//	offset  size  field
//	0       8     magic "RELAISBK"
//	8       1     format version: 1
//	9       1     mode: 0 plain, 1 encrypted to a passphrase
//
// and, in mode 1 only,
//
//	10      1     scrypt log2(N), 10 to 20 (18 written)
//	11      1     scrypt r (8)
//	12      1     scrypt p (1)
//	13      16    scrypt salt
//	29      16    payload nonce
//	45      32    HMAC-SHA256 of bytes 0–44 under the header key
//
// The passphrase and the salt give a 32-byte secret through scrypt; HKDF-
// SHA256 of that secret gives the header key (info "relais-backup v1
// header") and, salted with the payload nonce, the payload key (info
// "relais-backup v1 payload"). A wrong passphrase fails the header's MAC
// before any of the body is read.
//
// In mode 0 the body is the payload. In mode 1 it is the payload cut into
// chunks of 64 KiB, each sealed with ChaCha20-Poly1305 under the payload
// key with the nonce: chunk index (11 bytes, big-endian) then 1 for the
// last chunk and 0 for the others. Every chunk but the last is full; the
// last one is shorter (empty when the payload is a multiple of 64 KiB), so
// cutting the file, dropping, repeating or reordering chunks all fail
// authentication (the construction of age's STREAM).
//
// The payload is a tar stream (POSIX ustar/PAX, regular files only) of
//
//	relais-backup.json      what the archive is: format, node id, schema version, time, relais version
//	relais.db               the store, as one read transaction saw it
//	media/scanner.key       the key the antivirus opens encrypted files with, if any
//	media/blobs/ab/<hash>   the content of every blob the store names (quarantined ones have none)
//	tls/…                   the local CA and the certificates (not certmagic's lock files)
//	manifest.json           last: the SHA-256 and size of every file above
//
// # Consistency
//
// The store is copied first, inside a read transaction that also lists the
// blobs it names; content is removed only through the files service, and
// the node holds every removal from before the snapshot until the last
// blob is copied (files.Service.HoldRemovals). So every blob the copied
// store needs is on disk while it is copied. Blobs uploaded after the
// snapshot are not in the archive, nor are unfinished uploads: the
// restored node forgets their records at its first sweep, and their
// senders start them again.
package backup
