package backup

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// chunkSize is the plaintext size of every chunk but the last.
const chunkSize = 64 << 10

// maxChunks keeps the 11-byte counter of the nonce from wrapping; no
// archive comes near it (2^64 × 64 KiB), but the bound is what makes the
// nonces unique.
const maxChunks = 1<<64 - 1

func streamNonce(index uint64, last bool) []byte {
	var n [chacha20poly1305.NonceSize]byte
	binary.BigEndian.PutUint64(n[3:11], index)
	if last {
		n[11] = 1
	}
	return n[:]
}

// sealer encrypts a payload into chunks (see the package documentation).
type sealer struct {
	w     io.Writer
	aead  cipher.AEAD
	buf   []byte
	out   []byte
	index uint64
	err   error
}

func newSealer(w io.Writer, key []byte) (*sealer, error) {
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return &sealer{w: w, aead: aead, buf: make([]byte, 0, chunkSize), out: make([]byte, 0, chunkSize+chacha20poly1305.Overhead)}, nil
}

func (s *sealer) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n := 0
	for len(p) > 0 {
		// A full buffer is sealed only when more data follows, so that
		// the last chunk is never full.
		if len(s.buf) == chunkSize {
			if s.err = s.flush(false); s.err != nil {
				return n, s.err
			}
		}
		k := copy(s.buf[len(s.buf):chunkSize], p)
		s.buf = s.buf[:len(s.buf)+k]
		p = p[k:]
		n += k
	}
	return n, nil
}

func (s *sealer) flush(last bool) error {
	s.out = s.aead.Seal(s.out[:0], streamNonce(s.index, last), s.buf, nil)
	s.index++
	s.buf = s.buf[:0]
	if _, err := s.w.Write(s.out); err != nil {
		return fmt.Errorf("backup: write: %w", err)
	}
	return nil
}

// Close seals the last chunk (after a full one, an empty one).
func (s *sealer) Close() error {
	if s.err != nil {
		return s.err
	}
	if len(s.buf) == chunkSize {
		if s.err = s.flush(false); s.err != nil {
			return s.err
		}
	}
	s.err = s.flush(true)
	if s.err == nil {
		s.err = fmt.Errorf("backup: write after close")
		return nil
	}
	return s.err
}

// opener decrypts and authenticates chunks as they are read. It returns
// ErrDamaged for a chunk that fails authentication, ErrTruncated when the
// file ends before the last chunk, and io.EOF only after the last chunk
// (and nothing after it).
type opener struct {
	r     io.Reader
	aead  cipher.AEAD
	in    []byte
	plain []byte
	index uint64
	done  bool
	err   error
}

func newOpener(r io.Reader, key []byte) (*opener, error) {
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return &opener{r: r, aead: aead, in: make([]byte, chunkSize+chacha20poly1305.Overhead)}, nil
}

func (o *opener) Read(p []byte) (int, error) {
	for len(o.plain) == 0 {
		if o.err != nil {
			return 0, o.err
		}
		if o.done {
			return 0, io.EOF
		}
		o.err = o.next()
	}
	n := copy(p, o.plain)
	o.plain = o.plain[n:]
	return n, nil
}

// next reads and opens one chunk. A full chunk is never the last one (the
// sealer ends with a shorter, possibly empty, chunk), so a short read is the
// last chunk and the end of the file.
func (o *opener) next() error {
	const full = chunkSize + chacha20poly1305.Overhead
	n, err := io.ReadFull(o.r, o.in[:full])
	last := false
	switch {
	case err == io.EOF:
		return ErrTruncated
	case err == io.ErrUnexpectedEOF:
		last = true
	case err != nil:
		return fmt.Errorf("backup: read: %w", err)
	}
	if n < chacha20poly1305.Overhead {
		return ErrTruncated
	}
	if o.index == maxChunks {
		return ErrDamaged
	}
	plain, err := o.aead.Open(o.in[:0], streamNonce(o.index, last), o.in[:n], nil)
	if err != nil {
		if !last {
			// A full chunk that is not the last one may still be the
			// last one of a truncated file: both are damage.
			return fmt.Errorf("%w: chunk %d fails authentication", ErrDamaged, o.index)
		}
		// A short last chunk that fails is a file cut inside a chunk or
		// an altered one; telling them apart is not possible.
		return fmt.Errorf("%w: chunk %d fails authentication (or the archive is truncated)", ErrDamaged, o.index)
	}
	o.index++
	o.plain = plain
	if last {
		o.done = true
	}
	return nil
}
