package mls

import (
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
)

// CipherSuite is an MLS cipher suite identifier (RFC 9420 §17.1).
type CipherSuite uint16

// The cipher suites Relais uses. The package knows the hash of a few more
// (see Known).
const (
	// CipherSuiteX25519AES128GCMSHA256Ed25519 is
	// MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, mandatory to implement
	// in RFC 9420.
	CipherSuiteX25519AES128GCMSHA256Ed25519 CipherSuite = 0x0001
	// CipherSuiteXWingAES256GCMSHA512Ed25519 is
	// MLS_256_XWING_AES256GCM_SHA512_Ed25519, the hybrid post-quantum suite
	// (X25519 + ML-KEM-768) under the code point ts-mls 1.6.4 uses; other
	// ts-mls releases have used a private-use code point for it, so the
	// client and this table must move together.
	CipherSuiteXWingAES256GCMSHA512Ed25519 CipherSuite = 0x0053
)

type suiteInfo struct {
	name string
	hash func() hash.Hash
}

// suites maps the cipher suites whose hash is known: RFC 9420 §17.1 for
// 1-7, and the post-quantum table of ts-mls 1.6.4 (crypto/ciphersuite.js)
// for 77-88.
var suites = map[CipherSuite]suiteInfo{
	0x0001: {"MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519", sha256.New},
	0x0002: {"MLS_128_DHKEMP256_AES128GCM_SHA256_P256", sha256.New},
	0x0003: {"MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519", sha256.New},
	0x0004: {"MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448", sha512.New},
	0x0005: {"MLS_256_DHKEMP521_AES256GCM_SHA512_P521", sha512.New},
	0x0006: {"MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448", sha512.New},
	0x0007: {"MLS_256_DHKEMP384_AES256GCM_SHA384_P384", sha512.New384},
	77:     {"MLS_128_MLKEM512_AES128GCM_SHA256_Ed25519", sha256.New},
	78:     {"MLS_128_MLKEM512_CHACHA20POLY1305_SHA256_Ed25519", sha256.New},
	79:     {"MLS_256_MLKEM768_AES256GCM_SHA384_Ed25519", sha512.New384},
	80:     {"MLS_256_MLKEM768_CHACHA20POLY1305_SHA384_Ed25519", sha512.New384},
	81:     {"MLS_256_MLKEM1024_AES256GCM_SHA512_Ed25519", sha512.New},
	82:     {"MLS_256_MLKEM1024_CHACHA20POLY1305_SHA512_Ed25519", sha512.New},
	83:     {"MLS_256_XWING_AES256GCM_SHA512_Ed25519", sha512.New},
	84:     {"MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519", sha512.New},
	85:     {"MLS_256_MLKEM1024_AES256GCM_SHA512_MLDSA87", sha512.New},
	86:     {"MLS_256_MLKEM1024_CHACHA20POLY1305_SHA512_MLDSA87", sha512.New},
	87:     {"MLS_256_XWING_AES256GCM_SHA512_MLDSA87", sha512.New},
	88:     {"MLS_256_XWING_CHACHA20POLY1305_SHA512_MLDSA87", sha512.New},
}

// Known reports whether the package knows the suite's hash, and so can
// compute references (KeyPackageRef) for it.
func (s CipherSuite) Known() bool {
	_, ok := suites[s]
	return ok
}

// String returns the suite's name, or its number in hexadecimal.
func (s CipherSuite) String() string {
	if i, ok := suites[s]; ok {
		return i.name
	}
	return fmt.Sprintf("0x%04x", uint16(s))
}

// refHash computes RefHash(label, value) of RFC 9420 §5.2: the suite's hash
// of struct { opaque label<V>; opaque value<V>; }.
func refHash(s CipherSuite, label string, value []byte) ([]byte, bool) {
	i, ok := suites[s]
	if !ok {
		return nil, false
	}
	h := i.hash()
	var buf [4]byte
	h.Write(putVarint(buf[:], len(label)))
	h.Write([]byte(label))
	h.Write(putVarint(buf[:], len(value)))
	h.Write(value)
	return h.Sum(nil), true
}

// putVarint encodes n (at most maxVarint) minimally into buf and returns the
// encoding.
func putVarint(buf []byte, n int) []byte {
	switch {
	case n < 1<<6:
		buf[0] = byte(n)
		return buf[:1]
	case n < 1<<14:
		buf[0], buf[1] = 0x40|byte(n>>8), byte(n)
		return buf[:2]
	default:
		buf[0], buf[1], buf[2], buf[3] = 0x80|byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		return buf[:4]
	}
}
