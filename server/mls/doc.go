// Package mls parses the public framing of MLS (RFC 9420) objects for the
// node's Delivery Service.
//
// The node never decrypts: it reads what MLS leaves in clear so that it can
// order handshake messages by epoch, route Welcome messages to the devices
// whose KeyPackage they consume, keep KeyPackages, and refuse malformed
// input with a clear error. Everything that is encrypted stays opaque.
//
// # Encoding
//
// MLS uses the TLS presentation language (RFC 8446 §3) with the variable
// length vectors of RFC 9420 §2.1.2: a length prefixed by a 2-bit size class
// (1, 2 or 4 bytes; prefix 0b11 is invalid) that must use the minimal
// encoding, then that many bytes. The decoder here is strict:
//
//   - every structure is parsed to its end and the outer MLSMessage must
//     consume the whole input exactly (no trailing bytes);
//   - non-minimal lengths, the 0b11 prefix, optional presence octets other
//     than 0 and 1, vectors of fixed-size elements whose length is not a
//     multiple of the element size, and unknown enum values where the RFC
//     gives no way to skip them (content type, sender type, leaf node source,
//     credential type, proposal type, PSK type) are rejected;
//   - a vector whose declared length exceeds the remaining input fails at
//     once: nothing is ever allocated from a declared length;
//   - inputs larger than a configurable cap are refused before parsing.
//
// Strictness matters beyond hygiene: a KeyPackageRef is a hash of the
// encoded KeyPackage, and clients re-encode what they decode, so accepting
// a non-canonical encoding would let the node store a KeyPackage under a
// reference that clients compute differently.
//
// # Aliasing
//
// Byte slices in the returned values (GroupID, AuthenticatedData, keys,
// KeyPackageRefs of a Welcome, ...) alias the input; their capacity is
// clipped so appending to them never writes into the input. Copy them
// before reusing or releasing the input buffer. KeyPackage.Ref is freshly
// allocated.
//
// # Rules beyond syntax
//
// A few rules of RFC 9420 §6 are checked because they are cheap and a
// Delivery Service must not relay their violations: application data is
// never accepted as a PublicMessage (§6: applications MUST use
// PrivateMessage for it); a PublicMessage from an external sender or a
// new_member_proposal sender must carry a proposal (an Add for the latter),
// and one from a new_member_commit sender must carry a commit. Signatures,
// membership tags and everything else that needs keys are the clients' job.
//
// # Errors
//
// Every error returned is an *Error with a stable Code (mls_malformed,
// mls_unsupported_version, mls_unsupported_wire_format,
// mls_unsupported_cipher_suite, mls_too_large), the dotted path of the
// field at fault ("public_message.epoch") and what was wrong ("truncated").
// Test for a class with errors.Is(err, ErrMalformed) and friends.
package mls
