// Package password hashes and verifies passwords with argon2id (RFC 9106)
// and checks new passwords against the node's password policy.
//
// Hashes are stored as PHC strings, the format of the reference
// implementation:
//
//	$argon2id$v=19$m=65536,t=3,p=4$<salt>$<key>
//
// with salt and key in unpadded standard base64. The string carries its
// parameters, so a hash made with TestParams verifies like one made with
// Default, and NeedsRehash tells when a stored hash should be upgraded at
// the next successful login.
//
// Every hash computation, in Hash, Verify and DummyVerify, holds one slot of
// a process-wide semaphore with runtime.NumCPU() slots, so a flood of logins
// queues instead of allocating Memory KiB per request; a caller whose
// context ends while it waits gets the context's error. Stored hashes are
// parsed strictly and their parameters bounded (see MaxMemory and the other
// limits), so a corrupt or hostile hash cannot make the node allocate
// gigabytes or spin for minutes.
//
// Passwords are normalized to Unicode NFC before hashing, so the same
// password typed on systems that compose accents differently verifies.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Params are the argon2id cost parameters and output sizes.
type Params struct {
	Memory  uint32 // memory in KiB
	Time    uint32 // number of passes
	Threads uint8  // degree of parallelism (lanes)
	SaltLen uint32 // salt length in bytes
	KeyLen  uint32 // derived key length in bytes
}

// Default follows the second recommended option of RFC 9106 (section 4):
// argon2id, t=3, p=4, m=64 MiB, 128-bit salt, 256-bit key.
//
// Measured on the project's 2-core VM (Intel Xeon, Go 1.26, x/crypto
// v0.58.0, BenchmarkHashDefault): about 70 ms per hash on an idle machine,
// where the four lanes keep both cores busy (about 140 ms of CPU time, as
// measured with -cpu 1), 75–110 ms while other work shares the machine, and
// about 220 ms for the first hashes of a process, which fault in fresh
// memory. Such a machine therefore verifies about 14 passwords per second
// at most; with the semaphore at NumCPU, at most 2 × 64 MiB is held for
// hashing.
var Default = Params{Memory: 64 * 1024, Time: 3, Threads: 4, SaltLen: 16, KeyLen: 32}

// TestParams are cheap parameters (64 KiB, one pass, one lane; well under a
// millisecond per hash) for the test suites of other packages. Never use
// them in production: they offer little resistance to guessing.
var TestParams = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on parameters, checked by Hash and when parsing a stored hash.
const (
	MinMemory  = 8              // KiB per lane, the argon2 minimum (8 × Threads)
	MaxMemory  = 256 * 1024     // KiB (256 MiB): 4 × Default
	MaxTime    = 16             // passes
	MaxThreads = 16             // lanes
	MinSaltLen = 8              // bytes (RFC 9106 requires at least 8)
	MaxSaltLen = 64             // bytes
	MinKeyLen  = 16             // bytes
	MaxKeyLen  = 64             // bytes
	maxEncoded = 64 + 88 + 88   // prefix and parameters, salt and key in base64
	version    = argon2.Version // 0x13 = 19
)

// Errors. Wrapped errors carry details; test them with errors.Is.
var (
	// ErrMalformedHash: an encoded hash is not a valid argon2id PHC string
	// within the bounds above.
	ErrMalformedHash = errors.New("password: malformed hash")
	// ErrBadParams: Params out of bounds were given to Hash.
	ErrBadParams = errors.New("password: parameters out of bounds")
)

// Validate reports whether p is within the bounds Hash accepts.
func (p Params) Validate() error {
	switch {
	case p.Threads < 1 || p.Threads > MaxThreads:
		return fmt.Errorf("%w: threads %d not in [1, %d]", ErrBadParams, p.Threads, MaxThreads)
	case p.Memory < MinMemory*uint32(p.Threads) || p.Memory > MaxMemory:
		return fmt.Errorf("%w: memory %d KiB not in [%d, %d]", ErrBadParams, p.Memory, MinMemory*uint32(p.Threads), MaxMemory)
	case p.Time < 1 || p.Time > MaxTime:
		return fmt.Errorf("%w: time %d not in [1, %d]", ErrBadParams, p.Time, MaxTime)
	case p.SaltLen < MinSaltLen || p.SaltLen > MaxSaltLen:
		return fmt.Errorf("%w: salt length %d not in [%d, %d]", ErrBadParams, p.SaltLen, MinSaltLen, MaxSaltLen)
	case p.KeyLen < MinKeyLen || p.KeyLen > MaxKeyLen:
		return fmt.Errorf("%w: key length %d not in [%d, %d]", ErrBadParams, p.KeyLen, MinKeyLen, MaxKeyLen)
	}
	return nil
}

// sem bounds the number of argon2 computations running at once.
var sem = make(chan struct{}, runtime.NumCPU())

// derive computes the argon2id key, holding a semaphore slot.
func derive(ctx context.Context, password string, salt []byte, p Params) ([]byte, error) {
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-sem }()
	// A caller may have given up while another slot was being freed.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pw := []byte(norm.NFC.String(password))
	return argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, p.KeyLen), nil
}

// Hash hashes password with a fresh random salt and returns the PHC string.
// It waits for a semaphore slot; if ctx ends first it returns ctx.Err().
func Hash(ctx context.Context, password string, p Params) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: salt: %w", err)
	}
	key, err := derive(ctx, password, salt, p)
	if err != nil {
		return "", err
	}
	return encode(p, salt, key), nil
}

func encode(p Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify reports whether password matches the encoded hash, comparing keys
// in constant time. A malformed or out-of-bounds hash returns an error
// wrapping ErrMalformedHash (and ok false) without computing anything; if
// ctx ends while waiting for a slot it returns ctx.Err().
func Verify(ctx context.Context, encoded, password string) (ok bool, err error) {
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, err
	}
	got, err := derive(ctx, password, salt, p)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// NeedsRehash reports whether encoded was not made with exactly p (or
// cannot be parsed), so that the caller should store a new Hash of the
// password after the next successful Verify.
func NeedsRehash(encoded string, p Params) bool {
	q, salt, key, err := decode(encoded)
	if err != nil {
		return true
	}
	q.SaltLen, q.KeyLen = uint32(len(salt)), uint32(len(key))
	return q != p
}

// dummySalt is the salt of the fixed hash DummyVerify computes against.
var dummySalt = []byte("relais-dummy-salt-relais-dummy-salt-relais-dummy-salt-relais-dum")

// DummyVerify does the work of Verify for a hash made with p and
// discards the result, so that a login for an unknown account takes as
// long as one for a known account (pass the parameters new hashes are made
// with). It returns ctx.Err() if ctx ends while waiting for a slot, and nil
// otherwise.
func DummyVerify(ctx context.Context, password string, p Params) error {
	if p.Validate() != nil {
		p = Default
	}
	// Same steps as Verify: parse an encoded string, derive, compare.
	q, salt, want, err := decode(encode(p, dummySalt[:p.SaltLen], make([]byte, p.KeyLen)))
	if err != nil {
		return err
	}
	got, err := derive(ctx, password, salt, q)
	if err != nil {
		return err
	}
	subtle.ConstantTimeCompare(got, want)
	return nil
}

// decode parses a PHC argon2id string strictly: exact field order and
// prefix, version 19 only, decimal numbers without sign or leading zeros,
// parameters within bounds, canonical unpadded base64.
func decode(s string) (p Params, salt, key []byte, err error) {
	bad := func(reason string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformedHash, reason)
	}
	if len(s) > maxEncoded {
		return bad("too long")
	}
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" {
		return bad("wrong number of fields")
	}
	if f[1] != "argon2id" {
		return bad("not argon2id")
	}
	if v, ok := strings.CutPrefix(f[2], "v="); !ok {
		return bad("missing version")
	} else if n, ok := number(v, 255); !ok || n != version {
		return bad("unsupported version")
	}
	ps := strings.Split(f[3], ",")
	if len(ps) != 3 {
		return bad("wrong parameters")
	}
	var vals [3]uint32
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(ps[i], name)
		if !ok {
			return bad("wrong parameters")
		}
		n, ok := number(v, MaxMemory)
		if !ok {
			return bad("parameter out of range")
		}
		vals[i] = n
	}
	if vals[2] > MaxThreads {
		return bad("parameter out of range")
	}
	p = Params{Memory: vals[0], Time: vals[1], Threads: uint8(vals[2])}
	b64 := base64.RawStdEncoding.Strict()
	// The decoder skips CR and LF; re-encoding catches them and any other
	// non-canonical form.
	if salt, err = b64.DecodeString(f[4]); err != nil || b64.EncodeToString(salt) != f[4] {
		return bad("bad salt encoding")
	}
	if key, err = b64.DecodeString(f[5]); err != nil || b64.EncodeToString(key) != f[5] {
		return bad("bad key encoding")
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.Validate(); err != nil {
		return bad(strings.TrimPrefix(err.Error(), ErrBadParams.Error()+": "))
	}
	return p, salt, key, nil
}

// number parses a canonical decimal number no greater than max.
func number(s string, max uint32) (uint32, bool) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > uint64(max) {
		return 0, false
	}
	return uint32(n), true
}
