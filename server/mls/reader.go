package mls

import (
	"encoding/binary"
	"fmt"
)

// maxVarint is the largest value of an RFC 9420 variable-length integer
// (30 bits).
const maxVarint = 1<<30 - 1

// reader decodes the TLS presentation language from the front of b. It never
// copies: values returned alias the input, with their capacity clipped. Its
// methods take the name of the field being read, used only to build an
// error, so that the success path does not allocate.
type reader struct {
	b []byte
}

func (r *reader) len() int { return len(r.b) }

func (r *reader) u8(field string) (uint8, error) {
	if len(r.b) < 1 {
		return 0, malformed(field, errTruncated)
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v, nil
}

func (r *reader) u16(field string) (uint16, error) {
	if len(r.b) < 2 {
		return 0, malformed(field, errTruncated)
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v, nil
}

func (r *reader) u32(field string) (uint32, error) {
	if len(r.b) < 4 {
		return 0, malformed(field, errTruncated)
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v, nil
}

func (r *reader) u64(field string) (uint64, error) {
	if len(r.b) < 8 {
		return 0, malformed(field, errTruncated)
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v, nil
}

// varint reads a variable-length integer (RFC 9420 §2.1.2): 1, 2 or 4 bytes
// by the 2-bit prefix, minimal encoding required, prefix 0b11 invalid.
func (r *reader) varint(field string) (int, error) {
	if len(r.b) < 1 {
		return 0, malformed(field, errTruncated)
	}
	b := r.b
	switch b[0] >> 6 {
	case 0:
		r.b = b[1:]
		return int(b[0]), nil
	case 1:
		if len(b) < 2 {
			return 0, malformed(field, errTruncated)
		}
		v := int(b[0]&0x3f)<<8 | int(b[1])
		if v < 1<<6 {
			return 0, malformed(field, errNonMinimal)
		}
		r.b = b[2:]
		return v, nil
	case 2:
		if len(b) < 4 {
			return 0, malformed(field, errTruncated)
		}
		v := int(b[0]&0x3f)<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		if v < 1<<14 {
			return 0, malformed(field, errNonMinimal)
		}
		r.b = b[4:]
		return v, nil
	default:
		return 0, malformed(field, errVarintPrefix)
	}
}

// opaque reads an opaque<V> vector and returns its content, aliasing the
// input. The declared length is checked against the remaining input before
// anything else.
func (r *reader) opaque(field string) ([]byte, error) {
	n, err := r.varint(field)
	if err != nil {
		return nil, err
	}
	if n > len(r.b) {
		return nil, malformed(field, fmt.Errorf("%w (%d > %d)", errBeyondEnd, n, len(r.b)))
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v, nil
}

// vector reads a vector<V> of structures and returns a reader over its
// content, for the caller to decode element by element until it is empty.
func (r *reader) vector(field string) (reader, error) {
	v, err := r.opaque(field)
	return reader{v}, err
}

// fixedVector reads a vector<V> of fixed-size elements of size bytes each
// and returns its content.
func (r *reader) fixedVector(field string, size int) ([]byte, error) {
	v, err := r.opaque(field)
	if err != nil {
		return nil, err
	}
	if len(v)%size != 0 {
		return nil, malformed(field, fmt.Errorf("%w (%d bytes, elements of %d)", errBadElements, len(v), size))
	}
	return v, nil
}

// present reads the presence octet of an optional<T> (RFC 9420 §2.1.1).
func (r *reader) present(field string) (bool, error) {
	p, err := r.u8(field)
	if err != nil {
		return false, err
	}
	switch p {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, badValue(field, "presence octet %d", p)
}

// end fails if input is left.
func (r *reader) end(field string) error {
	if len(r.b) != 0 {
		return malformed(field, fmt.Errorf("%w (%d)", errTrailingBytes, len(r.b)))
	}
	return nil
}
