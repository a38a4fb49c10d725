package media

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Encrypted files
//
// In encrypted rooms the client encrypts each attachment before upload,
// with a fresh random 32-byte file key K carried to the members inside the
// MLS message. The blob the server stores is, in the format "relais file
// v1", every step of which WebCrypto provides (HKDF, AES-GCM):
//
//	encKey     = HKDF-SHA256(ikm K, salt empty, info "relais file v1 aes-256-gcm", 32 bytes)
//	commitment = HKDF-SHA256(ikm K, salt empty, info "relais file v1 key commitment", 32 bytes)
//
//	blob  = "RELAISF1" (8 bytes) || commitment (32 bytes) || chunk_0 || … || chunk_n-1
//	chunk_i = AES-256-GCM(encKey, nonce_i, plaintext_i, no additional data)  (plaintext + 16-byte tag)
//	nonce_i = uint88 big-endian i (11 bytes) || last (1 byte: 1 for the final chunk, else 0)
//
// The plaintext is cut in chunks of exactly 65,536 bytes, the last one
// holding the rest (1 to 65,536 bytes; 0 only for an empty file, which is
// one empty final chunk). A reader checks the commitment before decrypting:
// AES-GCM alone does not bind a ciphertext to one key, and without the
// commitment a sender could craft a blob that decrypts to a harmless file
// under the key given to the scanner and to malware under the key given to
// the members. The last-chunk flag makes truncation detectable, the index
// reordering. Chunks let both sides work in bounded memory.
//
// Where the operator requires scanning encrypted rooms, the client also
// seals K to the node's scanner key (ScannerKey.PublicKey) with HPKE
// (RFC 9180, mode base) in the suite ScannerKey.Suite — KEM X-Wing
// (ML-KEM-768 + X25519, 0x647a, post-quantum), KDF HKDF-SHA256 (0x0001),
// AEAD AES-256-GCM (0x0002) — with info "relais media scanner v1" and no
// additional data, and sends enc and the sealed key with the upload. The
// node opens K, decrypts and scans in memory, writes no plaintext, and
// forgets K. (clamd itself spools a stream to its TemporaryDirectory while
// scanning it: point that at a tmpfs.)

// Parameters of the "relais file v1" format.
const (
	FileKeySize      = 32
	sealedMagic      = "RELAISF1"
	sealedHeaderSize = len(sealedMagic) + 32
	sealedChunkSize  = 64 << 10
	sealedTagSize    = 16
	sealedInfoEnc    = "relais file v1 aes-256-gcm"
	sealedInfoCommit = "relais file v1 key commitment"
	scannerInfo      = "relais media scanner v1"
)

// ScannerKeyFile is the name of the scanner key's file in the media
// directory, next to package blob's blobs/ and uploads/.
const ScannerKeyFile = "scanner.key"

// SealedMinSize is the size of the smallest "relais file v1" blob: the
// header, the key commitment and one empty chunk's tag. Every such blob
// starts with SealedMagic.
const (
	SealedMagic   = sealedMagic
	SealedMinSize = sealedHeaderSize + sealedTagSize
)

// fileKeys derives the encryption key and the key commitment from a file
// key.
func fileKeys(fileKey []byte) (cipher.AEAD, []byte, error) {
	if len(fileKey) != FileKeySize {
		return nil, nil, fmt.Errorf("file key of %d bytes, want %d: %w", len(fileKey), FileKeySize, ErrUndecryptable)
	}
	encKey, err := hkdf.Key(sha256.New, fileKey, nil, sealedInfoEnc, 32)
	if err != nil {
		return nil, nil, err
	}
	commitment, err := hkdf.Key(sha256.New, fileKey, nil, sealedInfoCommit, 32)
	if err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(encKey)
	clear(encKey)
	if err != nil {
		return nil, nil, err
	}
	aead, err := cipher.NewGCM(block)
	return aead, commitment, err
}

func chunkNonce(i int64, last bool) []byte {
	nonce := make([]byte, 12)
	binary.BigEndian.PutUint64(nonce[3:11], uint64(i))
	if last {
		nonce[11] = 1
	}
	return nonce
}

// EncryptFile writes r encrypted with fileKey in the "relais file v1"
// format. It is the reference the web client's implementation is tested
// against, and what Go clients use.
func EncryptFile(w io.Writer, r io.Reader, fileKey []byte) error {
	aead, commitment, err := fileKeys(fileKey)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, sealedMagic); err != nil {
		return err
	}
	if _, err := w.Write(commitment); err != nil {
		return err
	}
	// Read one chunk ahead to know which chunk is the last.
	cur := make([]byte, sealedChunkSize)
	next := make([]byte, sealedChunkSize)
	n, err := io.ReadFull(r, cur)
	out := make([]byte, 0, sealedChunkSize+sealedTagSize)
	for i := int64(0); ; i++ {
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return fmt.Errorf("encrypt file: %w", err)
		}
		m, nerr := 0, err
		if err == nil {
			m, nerr = io.ReadFull(r, next)
		}
		last := err != nil || m == 0 && nerr == io.EOF
		if nerr != nil && nerr != io.EOF && nerr != io.ErrUnexpectedEOF {
			return fmt.Errorf("encrypt file: %w", nerr)
		}
		out = aead.Seal(out[:0], chunkNonce(i, last), cur[:n], nil)
		if _, err := w.Write(out); err != nil {
			return err
		}
		if last {
			return nil
		}
		cur, next, n, err = next, cur, m, nerr
	}
}

// DecryptFile writes the plaintext of a "relais file v1" blob of size
// bytes read from r, checking every chunk; errors from a wrong key or a
// damaged blob wrap ErrUndecryptable. On error, w may have received the
// chunks before the damaged one.
func DecryptFile(w io.Writer, r io.ReaderAt, size int64, fileKey []byte) error {
	sf, err := openSealed(r, size, fileKey)
	if err != nil {
		return err
	}
	defer sf.close()
	_, err = io.Copy(w, io.NewSectionReader(sf, 0, sf.Size()))
	return err
}

// sealedFile reads the plaintext of a "relais file v1" blob, decrypting
// chunks on demand and keeping the last one. It is an io.ReaderAt over the
// plaintext; it never writes anything.
type sealedFile struct {
	r         io.ReaderAt
	aead      cipher.AEAD
	chunks    int64
	size      int64 // of the plaintext
	ctSize    int64
	cur       int64 // index of the chunk in plain, or -1
	plain, ct []byte
}

// openSealed checks the header and the key commitment of a blob of size
// bytes and returns a reader of its plaintext.
func openSealed(r io.ReaderAt, size int64, fileKey []byte) (*sealedFile, error) {
	aead, commitment, err := fileKeys(fileKey)
	if err != nil {
		return nil, err
	}
	payload := size - int64(sealedHeaderSize)
	if payload < sealedTagSize {
		return nil, fmt.Errorf("encrypted file of %d bytes is too short: %w", size, ErrUndecryptable)
	}
	hdr := make([]byte, sealedHeaderSize)
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("read encrypted file: %w", err)
	}
	if string(hdr[:len(sealedMagic)]) != sealedMagic {
		return nil, fmt.Errorf("not a relais encrypted file: %w", ErrUndecryptable)
	}
	if subtle.ConstantTimeCompare(hdr[len(sealedMagic):], commitment) != 1 {
		return nil, fmt.Errorf("key does not match the file's commitment: %w", ErrUndecryptable)
	}
	const full = sealedChunkSize + sealedTagSize
	chunks := (payload + full - 1) / full
	lastCT := payload - (chunks-1)*full
	if lastCT == sealedTagSize && chunks > 1 {
		return nil, fmt.Errorf("encrypted file ends with an empty chunk: %w", ErrUndecryptable)
	}
	return &sealedFile{
		r:      r,
		aead:   aead,
		chunks: chunks,
		size:   payload - chunks*sealedTagSize,
		ctSize: size,
		cur:    -1,
		plain:  make([]byte, 0, sealedChunkSize),
		ct:     make([]byte, full),
	}, nil
}

// Size returns the plaintext's size.
func (s *sealedFile) Size() int64 { return s.size }

func (s *sealedFile) chunk(i int64) ([]byte, error) {
	if i == s.cur {
		return s.plain, nil
	}
	const full = sealedChunkSize + sealedTagSize
	off := int64(sealedHeaderSize) + i*full
	n := min(full, s.ctSize-off)
	ct := s.ct[:n]
	if _, err := s.r.ReadAt(ct, off); err != nil && !(err == io.EOF && len(ct) == int(n)) {
		return nil, fmt.Errorf("read encrypted file: %w", err)
	}
	s.cur = -1
	plain, err := s.aead.Open(s.plain[:0], chunkNonce(i, i == s.chunks-1), ct, nil)
	if err != nil {
		return nil, fmt.Errorf("chunk %d: %w", i, ErrUndecryptable)
	}
	s.plain, s.cur = plain, i
	return plain, nil
}

// ReadAt reads plaintext.
func (s *sealedFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	n := 0
	for n < len(p) {
		if off >= s.size {
			return n, io.EOF
		}
		i := off / sealedChunkSize
		c, err := s.chunk(i)
		if err != nil {
			return n, err
		}
		k := copy(p[n:], c[off-i*sealedChunkSize:])
		n += k
		off += int64(k)
	}
	return n, nil
}

// close forgets the plaintext and the key schedule's output.
func (s *sealedFile) close() {
	clear(s.plain[:cap(s.plain)])
	s.aead, s.cur = nil, -1
}

// ScanEncrypted decides on the blob at path, a "relais file v1" encrypted
// file, by decrypting it in memory with fileKey and running the policy and
// clamd on the plaintext, which is never written to disk. A blob the key
// does not open (wrong key, tampered, truncated) is quarantined with
// CodeUndecryptable. Like Scan, a quarantined blob is deleted. The caller
// clears fileKey afterwards.
func (p *Pipeline) ScanEncrypted(ctx context.Context, path string, fileKey []byte) (Outcome, error) {
	f, err := os.Open(path)
	if err != nil {
		return Outcome{}, fmt.Errorf("scan: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return Outcome{}, fmt.Errorf("scan: %w", err)
	}
	o, err := p.scanEncrypted(ctx, f, fi.Size(), fileKey)
	f.Close()
	if err != nil {
		return Outcome{}, fmt.Errorf("scan %s: %w", fi.Name(), err)
	}
	return o, quarantine(o, path)
}

func (p *Pipeline) scanEncrypted(ctx context.Context, r io.ReaderAt, size int64, fileKey []byte) (Outcome, error) {
	undecryptable := func(err error) Outcome {
		return Outcome{State: Quarantined, Code: CodeUndecryptable, Reason: err.Error()}
	}
	sf, err := openSealed(r, size, fileKey)
	if errors.Is(err, ErrUndecryptable) {
		return undecryptable(err), nil
	}
	if err != nil {
		return Outcome{}, err
	}
	defer sf.close()
	o, err := p.scan(ctx, sf, sf.Size())
	if errors.Is(err, ErrUndecryptable) {
		return undecryptable(err), nil
	}
	return o, err
}

// ScanSealed opens a file key sealed to key (see ScannerKey.OpenSealedKey)
// and runs ScanEncrypted with it, forgetting the key afterwards. A sealed
// key that does not open quarantines the blob with CodeUndecryptable.
func (p *Pipeline) ScanSealed(ctx context.Context, path string, key *ScannerKey, enc, sealed []byte) (Outcome, error) {
	fileKey, err := key.OpenSealedKey(enc, sealed)
	if err != nil {
		o := Outcome{State: Quarantined, Code: CodeUndecryptable, Reason: err.Error()}
		return o, quarantine(o, path)
	}
	defer clear(fileKey)
	return p.ScanEncrypted(ctx, path, fileKey)
}

// ScannerSuite identifies the HPKE suite of a scanner key by its RFC 9180
// identifiers.
type ScannerSuite struct {
	KEM, KDF, AEAD uint16
}

// ScannerKey is the node's HPKE key pair for scanning encrypted files.
type ScannerKey struct {
	priv hpke.PrivateKey
}

// ScannerKeyFile is the JSON kept in the key file.
type scannerKeyJSON struct {
	KEM     uint16 `json:"kem"`
	Private []byte `json:"private"`
}

func scannerSuite() (hpke.KEM, hpke.KDF, hpke.AEAD) {
	return hpke.MLKEM768X25519(), hpke.HKDFSHA256(), hpke.AES256GCM()
}

// OpenScannerKey loads the scanner key from path, creating it (0600) if it
// does not exist.
func OpenScannerKey(path string) (*ScannerKey, error) {
	kem, _, _ := scannerSuite()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createScannerKey(path, kem)
	}
	if err != nil {
		return nil, fmt.Errorf("scanner key: %w", err)
	}
	var kj scannerKeyJSON
	if err := json.Unmarshal(b, &kj); err != nil {
		return nil, fmt.Errorf("scanner key %s: %w", path, err)
	}
	if kj.KEM != kem.ID() {
		return nil, fmt.Errorf("scanner key %s: KEM %#04x, want %#04x", path, kj.KEM, kem.ID())
	}
	priv, err := kem.NewPrivateKey(kj.Private)
	if err != nil {
		return nil, fmt.Errorf("scanner key %s: %w", path, err)
	}
	return &ScannerKey{priv: priv}, nil
}

func createScannerKey(path string, kem hpke.KEM) (*ScannerKey, error) {
	priv, err := kem.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generate scanner key: %w", err)
	}
	raw, err := priv.Bytes()
	if err != nil {
		return nil, fmt.Errorf("generate scanner key: %w", err)
	}
	b, err := json.Marshal(scannerKeyJSON{KEM: kem.ID(), Private: raw})
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".scanner-key-*")
	if err != nil {
		return nil, fmt.Errorf("write scanner key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write scanner key: %w", err)
	}
	// Link fails if another process created the key first: use theirs.
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return OpenScannerKey(path)
	} else if err != nil {
		return nil, fmt.Errorf("write scanner key: %w", err)
	}
	return &ScannerKey{priv: priv}, nil
}

// PublicKey returns the public key clients seal file keys to (1,216 bytes
// for X-Wing).
func (k *ScannerKey) PublicKey() []byte { return k.priv.PublicKey().Bytes() }

// Suite returns the HPKE suite clients must use with PublicKey.
func (k *ScannerKey) Suite() ScannerSuite {
	kem, kdf, aead := scannerSuite()
	return ScannerSuite{KEM: kem.ID(), KDF: kdf.ID(), AEAD: aead.ID()}
}

// OpenSealedKey opens a file key sealed by a client to the scanner key:
// enc is the HPKE encapsulated key, sealed the HPKE ciphertext of the
// 32-byte file key. Errors wrap ErrUndecryptable.
func (k *ScannerKey) OpenSealedKey(enc, sealed []byte) ([]byte, error) {
	_, kdf, aead := scannerSuite()
	rcpt, err := hpke.NewRecipient(enc, k.priv, kdf, aead, []byte(scannerInfo))
	if err != nil {
		return nil, fmt.Errorf("open sealed file key: %w: %w", ErrUndecryptable, err)
	}
	fileKey, err := rcpt.Open(nil, sealed)
	if err != nil {
		return nil, fmt.Errorf("open sealed file key: %w: %w", ErrUndecryptable, err)
	}
	if len(fileKey) != FileKeySize {
		clear(fileKey)
		return nil, fmt.Errorf("open sealed file key: %d bytes, want %d: %w", len(fileKey), FileKeySize, ErrUndecryptable)
	}
	return fileKey, nil
}

// SealFileKey seals a file key to a scanner's public key, as a client
// does; it returns the encapsulated key and the ciphertext.
func SealFileKey(publicKey, fileKey []byte) (enc, sealed []byte, err error) {
	kem, kdf, aead := scannerSuite()
	pub, err := kem.NewPublicKey(publicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("seal file key: %w", err)
	}
	enc, snd, err := hpke.NewSender(pub, kdf, aead, []byte(scannerInfo))
	if err != nil {
		return nil, nil, fmt.Errorf("seal file key: %w", err)
	}
	sealed, err = snd.Seal(nil, fileKey)
	if err != nil {
		return nil, nil, fmt.Errorf("seal file key: %w", err)
	}
	return enc, sealed, nil
}

// NewFileKey returns a fresh random file key.
func NewFileKey() []byte {
	k := make([]byte, FileKeySize)
	rand.Read(k)
	return k
}
