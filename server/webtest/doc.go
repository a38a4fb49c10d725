// Package webtest drives the embedded web client in a real headless
// Chromium (Debian's chromium, through chromedp): two people register,
// talk, react, edit and delete, a message typed while the node is down is
// delivered after it restarts, and the bundle, first render, room switch
// and long-room scrolling budgets are measured. End-to-end encryption
// (e2e_test.go): encrypted direct and group conversations, a removed
// member who cannot read what follows, a second device restoring history
// with the recovery key, forged commits injected by the test acting as a
// malicious node, a search of the node's files for plaintext, and the MLS
// // figures of both cipher suites measured in the browser. References
// between encrypted messages (refs_test.go): a node that swaps
// ciphertexts cannot re-point edits, replies and reactions, nor wipe a
// decrypted message by deleting it on its own; a member cannot edit or
// delete someone else's; authors' edits and deletions work; payloads of
// the version before message ids still show. Files
// (files_test.go): drag and drop, upload progress and resumption, pictures
// and documents, the antivirus states seen live with a real clamd, and
// encrypted files checked against the Go format. Console errors and CSP
// violations fail the tests; screenshots of every screen go to
// test-artifacts/screenshots/<test>/ at the repository root.
//
// The package holds tests only; run scripts/setup-test-tools first if
// chromium is missing.
package webtest
