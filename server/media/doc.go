// Package media decides whether attachments may be shared, and shapes
// them: the built-in content policy, the antivirus pipeline (with clamd),
// scanning of end-to-end encrypted files with a key sealed to the node's
// scanner key, thumbnails and the one image sniffer (ImageSize), safe
// names and downloads.
//
// The package owns no bytes and no metadata: the bytes on disk are
// package blob's (content-addressed blobs, partial uploads), the records
// — which message refers to which blob, a blob's scan state, uploads and
// quotas — package files' and the store's. Nothing a user sends — a file
// name, a content type — is ever used in a path.
//
// The scanner's HPKE private key is kept in the media directory, as
// ScannerKeyFile (OpenScannerKey).
//
// Errors that reach clients carry a stable code, read with ErrorCode
// (which also reads those of package blob): blocked_type and the other
// policy codes of Verdict, image_too_large, image_invalid, undecryptable.
package media
