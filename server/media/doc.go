// Package media stores attachments on disk and decides whether they may be
// shared: resumable uploads with limits enforced while streaming,
// content-addressed blobs, safe downloads, the built-in content policy, the
// antivirus pipeline (with clamd), scanning of end-to-end encrypted files
// with a key sealed to the node's scanner key, and thumbnails.
//
// The package owns files, not metadata: which message refers to which blob,
// a blob's scan state, quotas and authorization belong to the caller, which
// keeps them in its own store. Nothing a user sends — a file name, a content
// type — is ever used in a path: uploads are named by random identifiers and
// blobs by the SHA-256 of their content.
//
// Layout of the directory given to Open:
//
//	blobs/ab/<sha256 hex>       finished content, 0600 (directories 0700)
//	uploads/<id>/data           bytes received so far of a resumable upload
//	uploads/<id>/state          its metadata and SHA-256 state (JSON)
//	scanner.key                 the scanner's HPKE private key (ScannerKey)
//
// Errors that reach clients carry a stable code, read with ErrorCode:
// not_found, bad_request, too_large, quota_exceeded, too_many_uploads,
// offset_mismatch, interrupted, incomplete, busy, blocked_type and the other
// policy codes of Verdict, image_too_large, image_invalid.
package media
