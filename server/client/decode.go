package client

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// unmarshal decodes one frame. Frames as the node writes them (one flat
// object, keys in lower case, strings in UTF-8, integers) take a direct
// path that is several times faster than encoding/json, which matters for
// a client catching up with a thousand frames; anything else, including
// every malformed input, goes to encoding/json, so that the result is
// always exactly what json.Unmarshal gives (FuzzFrameDecode checks it).
func (f *Frame) unmarshal(b []byte) error {
	if !f.decodeFast(b) {
		*f = Frame{}
		if err := json.Unmarshal(b, f); err != nil {
			return err
		}
	}
	f.Raw = b
	return nil
}

// frameDecoder reads a frame's top-level object. Its methods return false
// for anything they do not handle, and the caller then leaves the frame to
// encoding/json.
type frameDecoder struct {
	b []byte
	i int
}

// decodeFast decodes b into f, which must be zero, and reports whether it
// could; when it could not, f holds partial values.
func (f *Frame) decodeFast(b []byte) bool {
	d := &frameDecoder{b: b}
	d.space()
	return d.byte('{') && d.list('}', func() bool {
		return d.member(func(key []byte) bool { return f.field(d, key) })
	}) && d.end()
}

// list reads the items of an object or array, its opening byte read, up
// to its closing byte.
func (d *frameDecoder) list(end byte, item func() bool) bool {
	d.space()
	if d.byte(end) {
		return true
	}
	for {
		d.space()
		if !item() {
			return false
		}
		d.space()
		if !d.byte(',') {
			return d.byte(end)
		}
	}
}

// member reads one "key": value of an object, the value with value.
func (d *frameDecoder) member(value func(key []byte) bool) bool {
	key, ok := d.key()
	if !ok {
		return false
	}
	d.space()
	if !d.byte(':') {
		return false
	}
	d.space()
	return value(key)
}

// frameFields are the JSON names of Frame's fields.
var frameFields = []string{"t", "id", "room", "seq", "ts", "from", "cid", "type", "body", "user", "on", "code", "detail", "message", "first", "last"}

func (f *Frame) field(d *frameDecoder, key []byte) bool {
	var ok bool
	switch string(key) {
	case "t":
		f.T, ok = d.str()
	case "id":
		f.ID, ok = d.str()
	case "room":
		f.Room, ok = d.str()
	case "from":
		f.From, ok = d.str()
	case "cid":
		f.CID, ok = d.str()
	case "type":
		f.Type, ok = d.str()
	case "body":
		f.Body, ok = d.str()
	case "user":
		f.User, ok = d.str()
	case "code":
		f.Code, ok = d.str()
	case "detail":
		f.Detail, ok = d.str()
	case "message":
		f.Message, ok = d.str()
	case "seq":
		f.Seq, ok = d.uint()
	case "first":
		f.First, ok = d.uint()
	case "last":
		f.Last, ok = d.uint()
	case "ts":
		var neg bool
		if neg = d.byte('-'); neg && (d.i >= len(d.b) || d.b[d.i] == '0') {
			return false
		}
		var u uint64
		if u, ok = d.uint(); ok && u <= 1<<63-1 {
			f.TS = int64(u)
			if neg {
				f.TS = -f.TS
			}
		} else {
			ok = false
		}
	case "on":
		switch {
		case d.literal("true"):
			f.On, ok = true, true
		case d.literal("false"):
			f.On, ok = false, true
		}
	default:
		// encoding/json matches keys without regard to case, with
		// Unicode folding: leave any near miss to it.
		for _, c := range key {
			if c >= utf8.RuneSelf {
				return false
			}
		}
		for _, name := range frameFields {
			if strings.EqualFold(name, string(key)) {
				return false
			}
		}
		return d.skip(0)
	}
	return ok
}

func (d *frameDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *frameDecoder) byte(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *frameDecoder) end() bool {
	d.space()
	return d.i == len(d.b)
}

func (d *frameDecoder) literal(s string) bool {
	if len(d.b)-d.i >= len(s) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}

// key reads an object key without escapes.
func (d *frameDecoder) key() ([]byte, bool) {
	if !d.byte('"') {
		return nil, false
	}
	start := d.i
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c == '"':
			d.i++
			return d.b[start : d.i-1], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
		d.i++
	}
	return nil, false
}

// str reads a string value: valid UTF-8, escapes other than surrogate
// pairs decoded.
func (d *frameDecoder) str() (string, bool) {
	if !d.byte('"') {
		return "", false
	}
	start := d.i
	ascii := true
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if !ascii && !utf8.Valid(s) {
				return "", false // encoding/json replaces bad bytes
			}
			return string(s), true
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	return "", false
}

// escaped finishes a string that has escapes, from its first backslash.
func (d *frameDecoder) escaped(start int) (string, bool) {
	out := make([]byte, 0, len(d.b)-start)
	out = append(out, d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(out) {
				return "", false
			}
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.b) {
			return "", false
		}
		e := d.b[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok || !utf8.ValidRune(rune(r)) {
				return "", false // surrogates: left to encoding/json
			}
			out = utf8.AppendRune(out, rune(r))
		default:
			return "", false
		}
	}
	return "", false
}

func (d *frameDecoder) hex4() (uint32, bool) {
	if len(d.b)-d.i < 4 {
		return 0, false
	}
	var r uint32
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | uint32(c)
	}
	d.i += 4
	return r, true
}

// uint reads a non-negative integer: no fraction, no exponent, no leading
// zero, no overflow.
func (d *frameDecoder) uint() (uint64, bool) {
	start := d.i
	var u uint64
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		digit := uint64(d.b[d.i] - '0')
		if u > (1<<64-1-digit)/10 {
			return 0, false
		}
		u = u*10 + digit
		d.i++
	}
	n := d.i - start
	if n == 0 || (n > 1 && d.b[start] == '0') {
		return 0, false
	}
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return u, true
}

// maxDepth bounds the nesting of skipped values; deeper ones are left to
// encoding/json.
const maxDepth = 64

// skip passes over any valid JSON value.
func (d *frameDecoder) skip(depth int) bool {
	if d.i >= len(d.b) || depth > maxDepth {
		return false
	}
	switch c := d.b[d.i]; {
	case c == '"':
		_, ok := d.str()
		return ok
	case c == '{':
		d.i++
		return d.list('}', func() bool {
			return d.member(func([]byte) bool { return d.skip(depth + 1) })
		})
	case c == '[':
		d.i++
		return d.list(']', func() bool { return d.skip(depth + 1) })
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	default:
		return d.literal("true") || d.literal("false") || d.literal("null")
	}
}

// number passes over a JSON number.
func (d *frameDecoder) number() bool {
	d.byte('-')
	digits := func() int {
		start := d.i
		for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
			d.i++
		}
		return d.i - start
	}
	if d.byte('0') {
		if d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
			return false
		}
	} else if digits() == 0 {
		return false
	}
	if d.byte('.') && digits() == 0 {
		return false
	}
	if d.byte('e') || d.byte('E') {
		if !d.byte('+') {
			d.byte('-')
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}
