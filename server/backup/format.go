package backup

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/scrypt"
)

// The errors of reading an archive. Their wording is stable: scripts and
// the documentation rely on it.
var (
	// ErrNotArchive: the file does not start like an archive.
	ErrNotArchive = errors.New("backup: not a relais backup archive")
	// ErrVersion: an archive of a newer format.
	ErrVersion = errors.New("backup: archive of a newer format than this relais reads (use a newer relais)")
	// ErrNeedPassphrase: the archive is encrypted and no passphrase was given.
	ErrNeedPassphrase = errors.New("backup: the archive is encrypted: give its passphrase (--passphrase-file, RELAIS_BACKUP_PASSPHRASE or the prompt)")
	// ErrWrongPassphrase: the header's MAC fails with the given passphrase.
	ErrWrongPassphrase = errors.New("backup: wrong passphrase (or a damaged archive header)")
	// ErrDamaged: some content of the archive fails its check.
	ErrDamaged = errors.New("backup: the archive is damaged or was altered")
	// ErrTruncated: the archive ends before its end.
	ErrTruncated = errors.New("backup: the archive is truncated")
)

const (
	magic         = "RELAISBK"
	formatVersion = 1
	modePlain     = 0
	modeScrypt    = 1

	plainHeaderLen = 10
	// scryptHeaderLen is plainHeaderLen + logN, r, p, salt, nonce, MAC.
	scryptHeaderLen = plainHeaderLen + 3 + 16 + 16 + 32

	// DefaultWorkFactor is scrypt's log2(N) of new archives: 2^18 × 8 ×
	// 128 bytes = 256 MiB of memory and about a second, as age does.
	DefaultWorkFactor = 18
	minWorkFactor     = 10
	// maxWorkFactor bounds the memory an archive can make a restore use
	// (1 GiB).
	maxWorkFactor = 20
	scryptR       = 8
	scryptP       = 1

	infoHeader  = "relais-backup v1 header"
	infoPayload = "relais-backup v1 payload"
)

// header is an archive's parsed header.
type header struct {
	encrypted bool
	logN      byte
	r, p      byte
	salt      [16]byte
	nonce     [16]byte
	mac       [32]byte
	raw       []byte // the header's bytes up to the MAC
}

// parseHeader reads a header from the start of b. It returns the header
// and its length, or ErrNotArchive, ErrVersion, ErrTruncated or
// ErrDamaged.
func parseHeader(b []byte) (header, int, error) {
	var h header
	if len(b) < plainHeaderLen {
		if k := min(len(b), len(magic)); k > 0 && string(b[:k]) == magic[:k] {
			return h, 0, ErrTruncated
		}
		return h, 0, ErrNotArchive
	}
	if string(b[:len(magic)]) != magic {
		return h, 0, ErrNotArchive
	}
	if b[8] != formatVersion {
		if b[8] > formatVersion {
			return h, 0, fmt.Errorf("%w: version %d", ErrVersion, b[8])
		}
		return h, 0, fmt.Errorf("%w: format version %d", ErrDamaged, b[8])
	}
	switch b[9] {
	case modePlain:
		return h, plainHeaderLen, nil
	case modeScrypt:
	default:
		return h, 0, fmt.Errorf("%w: unknown mode %d", ErrDamaged, b[9])
	}
	if len(b) < scryptHeaderLen {
		return h, 0, ErrTruncated
	}
	h.encrypted = true
	h.logN, h.r, h.p = b[10], b[11], b[12]
	if h.logN < minWorkFactor || h.logN > maxWorkFactor || h.r != scryptR || h.p != scryptP {
		return h, 0, fmt.Errorf("%w: scrypt parameters %d/%d/%d out of bounds", ErrDamaged, h.logN, h.r, h.p)
	}
	copy(h.salt[:], b[13:29])
	copy(h.nonce[:], b[29:45])
	copy(h.mac[:], b[45:77])
	h.raw = append([]byte(nil), b[:45]...)
	return h, scryptHeaderLen, nil
}

// keys derives the header and payload keys from a passphrase.
func (h *header) keys(passphrase []byte) (headerKey, payloadKey []byte, err error) {
	secret, err := scrypt.Key(passphrase, h.salt[:], 1<<h.logN, int(h.r), int(h.p), 32)
	if err != nil {
		return nil, nil, fmt.Errorf("backup: scrypt: %w", err)
	}
	if headerKey, err = hkdf.Key(sha256.New, secret, nil, infoHeader, 32); err != nil {
		return nil, nil, err
	}
	if payloadKey, err = hkdf.Key(sha256.New, secret, h.nonce[:], infoPayload, 32); err != nil {
		return nil, nil, err
	}
	return headerKey, payloadKey, nil
}

func headerMAC(key, raw []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(raw)
	return m.Sum(nil)
}

// open checks the passphrase against the header and returns the payload
// key.
func (h *header) open(passphrase []byte) ([]byte, error) {
	hk, pk, err := h.keys(passphrase)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(headerMAC(hk, h.raw), h.mac[:]) {
		return nil, ErrWrongPassphrase
	}
	return pk, nil
}

// newHeader makes the header of a new archive: plain when passphrase is
// nil. It returns the header's bytes and the payload key (nil if plain).
func newHeader(passphrase []byte, logN int) ([]byte, []byte, error) {
	b := append([]byte(magic), formatVersion, modePlain)
	if passphrase == nil {
		return b, nil, nil
	}
	if logN == 0 {
		logN = DefaultWorkFactor
	}
	if logN < minWorkFactor || logN > maxWorkFactor {
		return nil, nil, fmt.Errorf("backup: work factor %d out of %d–%d", logN, minWorkFactor, maxWorkFactor)
	}
	b[9] = modeScrypt
	h := header{encrypted: true, logN: byte(logN), r: scryptR, p: scryptP}
	rand.Read(h.salt[:])
	rand.Read(h.nonce[:])
	b = append(b, h.logN, h.r, h.p)
	b = append(b, h.salt[:]...)
	b = append(b, h.nonce[:]...)
	h.raw = b
	hk, pk, err := h.keys(passphrase)
	if err != nil {
		return nil, nil, err
	}
	return append(b, headerMAC(hk, b)...), pk, nil
}

// readHeader reads and parses the header at the start of r.
func readHeader(r io.Reader) (header, error) {
	b := make([]byte, scryptHeaderLen)
	n, err := io.ReadFull(r, b[:plainHeaderLen])
	if err != nil {
		h, _, perr := parseHeader(b[:n])
		if n == 0 {
			return h, ErrNotArchive
		}
		return h, perr
	}
	if string(b[:len(magic)]) == magic && b[8] == formatVersion && b[9] == modeScrypt {
		m, err := io.ReadFull(r, b[plainHeaderLen:])
		if err != nil {
			b = b[:plainHeaderLen+m]
		}
	} else {
		b = b[:plainHeaderLen]
	}
	h, _, err := parseHeader(b)
	return h, err
}
