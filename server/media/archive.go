package media

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// inspector walks a file and the archives nested in it, counting entries
// and expanded bytes across all levels.
type inspector struct {
	lim     ArchiveLimits
	exts    []string
	entries int
	total   int64 // expanded bytes, all levels together
	// inflate holds one reusable deflate reader per depth: a nested
	// archive must not reset the reader its parent is still reading.
	inflate map[int]io.ReadCloser
}

type archiveKind int

const (
	notArchive archiveKind = iota
	kindZip
	kindGzip
	kindBzip2
	kindTar
)

func archiveKindOf(head []byte) archiveKind {
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return kindZip
	case bytes.HasPrefix(head, []byte("\x1f\x8b")):
		return kindGzip
	case bytes.HasPrefix(head, []byte("BZh")) && len(head) >= 4 && head[3] >= '1' && head[3] <= '9':
		return kindBzip2
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return kindTar
	}
	return notArchive
}

// file inspects a whole file.
func (in *inspector) file(r io.ReaderAt, size int64) error {
	head, err := readHeadAt(r, size)
	if err != nil {
		return err
	}
	if kind := executable(head, r, size); kind != "" {
		return refused(CodeBlockedType, "%s", kind)
	}
	switch archiveKindOf(head) {
	case kindZip:
		return in.zip(r, size, 1)
	case kindGzip, kindBzip2:
		return in.stream(io.NewSectionReader(r, 0, size), size, 1)
	case kindTar:
		return in.tar(io.NewSectionReader(r, 0, size), 1)
	}
	return nil
}

// entryName checks an entry's name: no escaping path, no blocked
// extension.
func (in *inspector) entryName(name string) error {
	clean := strings.ReplaceAll(name, `\`, "/")
	if strings.HasPrefix(clean, "/") || len(clean) > 1 && clean[1] == ':' || slices.Contains(strings.Split(clean, "/"), "..") {
		return refused(CodeArchiveInvalid, "entry %s escapes the archive", quoteName(name))
	}
	base := clean[strings.LastIndexByte(clean, '/')+1:]
	if ext := extension(SanitizeName(base)); ext != "" && containsFold(in.exts, ext) {
		return refused(CodeBlockedType, "archive holds %s: files of type .%s are not accepted", quoteName(name), ext)
	}
	return nil
}

func quoteName(name string) string {
	return strconv.Quote(SanitizeName(name[strings.LastIndexAny(name, `/\`)+1:]))
}

func (in *inspector) countEntry() error {
	in.entries++
	if in.entries > in.lim.MaxEntries {
		return refused(CodeArchiveBomb, "archive holds more than %d entries", in.lim.MaxEntries)
	}
	return nil
}

func (in *inspector) countBytes(n int64) error {
	in.total += n
	if in.total > in.lim.MaxUncompressed || in.total < 0 {
		return refused(CodeArchiveBomb, "archive expands beyond %d bytes", in.lim.MaxUncompressed)
	}
	return nil
}

func (in *inspector) ratioExceeded(expanded, compressed int64) bool {
	return expanded > 1<<20 && expanded/max(compressed, 1) > in.lim.MaxRatio
}

// content inspects the start of an entry (head) and, if it is an archive
// itself, the entry as a whole through open, which returns a fresh reader
// of its expanded bytes. usize and csize are the entry's sizes when known
// (-1 otherwise).
func (in *inspector) content(name string, head []byte, open func() (io.Reader, error), usize, csize int64, depth int) error {
	label := "the compressed content"
	if name != "" {
		label = quoteName(name)
	}
	if kind := executable(head, nil, 0); kind != "" {
		return refused(CodeBlockedType, "archive holds %s, a %s", label, kind)
	}
	kind := archiveKindOf(head)
	if kind == notArchive {
		return nil
	}
	if depth+1 > in.lim.MaxDepth {
		return refused(CodeArchiveNested, "archives nested more than %d deep", in.lim.MaxDepth)
	}
	r, err := open()
	if err != nil {
		return err
	}
	switch kind {
	case kindZip:
		if usize > in.lim.MaxNestedSize {
			return refused(CodeArchiveNested, "nested archive %s of %d bytes is too large to inspect", label, usize)
		}
		b, err := io.ReadAll(io.LimitReader(r, in.lim.MaxNestedSize+1))
		if err != nil {
			return fmt.Errorf("entry %s: %w", label, err)
		}
		if int64(len(b)) > in.lim.MaxNestedSize {
			return refused(CodeArchiveNested, "nested archive %s is too large to inspect", label)
		}
		return in.zip(bytes.NewReader(b), int64(len(b)), depth+1)
	case kindGzip, kindBzip2:
		return in.stream(r, csize, depth+1)
	default:
		return in.tar(r, depth+1)
	}
}

// zip inspects a zip archive by its central directory, reading only the
// first bytes of each entry.
func (in *inspector) zip(r io.ReaderAt, size int64, depth int) error {
	type span struct{ start, end uint64 }
	var spans []span
	err := walkZip(r, size, func(e zipEntry) error {
		if err := in.countEntry(); err != nil {
			return err
		}
		if err := in.entryName(e.name); err != nil {
			return err
		}
		if e.offset >= uint64(size) || e.csize > uint64(size)-e.offset {
			return fmt.Errorf("entry %s: data beyond the end of the archive", quoteName(e.name))
		}
		spans = append(spans, span{e.offset, e.offset + e.csize})
		if e.usize > 1<<62 {
			return refused(CodeArchiveBomb, "entry %s claims %d bytes", quoteName(e.name), e.usize)
		}
		if err := in.countBytes(int64(e.usize)); err != nil {
			return err
		}
		if in.ratioExceeded(int64(e.usize), int64(e.csize)) {
			return refused(CodeArchiveBomb, "entry %s expands %d times", quoteName(e.name), int64(e.usize)/max(int64(e.csize), 1))
		}
		if e.flags&1 != 0 {
			if in.lim.AllowEncrypted {
				return nil
			}
			return refused(CodeArchiveEncrypted, "entry %s is password-protected and cannot be scanned", quoteName(e.name))
		}
		if strings.HasSuffix(e.name, "/") || e.usize == 0 || e.method != zipStore && e.method != zipDeflate {
			return nil // a directory, empty, or a method we cannot read (clamd may)
		}
		open := func() (io.Reader, error) { return in.openEntry(r, size, e, depth) }
		er, err := open()
		if err != nil {
			return err
		}
		head := make([]byte, min(e.usize, headSize))
		n, err := io.ReadFull(er, head)
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return fmt.Errorf("entry %s: %w", quoteName(e.name), err)
		}
		return in.content(e.name, head[:n], open, int64(e.usize), int64(e.csize), depth)
	})
	if err != nil {
		return err
	}
	// Entries sharing their data is the trick of non-recursive zip bombs.
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end || spans[i].start == spans[i-1].start {
			return refused(CodeArchiveBomb, "archive entries overlap")
		}
	}
	return nil
}

// openEntry returns a reader of the expanded bytes of a stored or deflated
// entry, bounded by its declared size.
func (in *inspector) openEntry(r io.ReaderAt, size int64, e zipEntry, depth int) (io.Reader, error) {
	var lh [30]byte
	if _, err := r.ReadAt(lh[:], int64(e.offset)); err != nil {
		return nil, fmt.Errorf("entry %s: local header: %w", quoteName(e.name), err)
	}
	if le32(lh[:]) != zipLocalSig {
		return nil, fmt.Errorf("entry %s: bad local header", quoteName(e.name))
	}
	start := e.offset + 30 + uint64(le16(lh[26:])) + uint64(le16(lh[28:]))
	if start > uint64(size) || e.csize > uint64(size)-start {
		return nil, fmt.Errorf("entry %s: data beyond the end of the archive", quoteName(e.name))
	}
	data := io.NewSectionReader(r, int64(start), int64(e.csize))
	if e.method == zipStore {
		return io.LimitReader(data, int64(e.usize)), nil
	}
	fr := in.inflate[depth]
	if fr == nil {
		fr = flate.NewReader(data)
		if in.inflate == nil {
			in.inflate = make(map[int]io.ReadCloser)
		}
		in.inflate[depth] = fr
	} else if err := fr.(flate.Resetter).Reset(data, nil); err != nil {
		return nil, err
	}
	return io.LimitReader(fr, int64(e.usize)), nil
}

// countingReader counts expanded bytes against the limits.
type countingReader struct {
	in    *inspector
	r     io.Reader
	csize int64 // compressed size, or -1 when unknown
	n     int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if cerr := c.in.countBytes(int64(n)); cerr != nil {
		return n, cerr
	}
	if c.csize >= 0 && c.in.ratioExceeded(c.n, c.csize) {
		return n, refused(CodeArchiveBomb, "compressed stream expands more than %d times", c.in.lim.MaxRatio)
	}
	return n, err
}

// stream inspects a gzip or bzip2 stream by expanding it, never beyond the
// limits, without keeping it. A tar inside is walked at the same depth.
func (in *inspector) stream(src io.Reader, csize int64, depth int) error {
	br := bufio.NewReader(src)
	magic, _ := br.Peek(4)
	var dr io.Reader
	switch archiveKindOf(magic) {
	case kindGzip:
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		dr = gz
	case kindBzip2:
		dr = bzip2.NewReader(br)
	default:
		return errors.New("not a gzip or bzip2 stream")
	}
	cr := &countingReader{in: in, r: dr, csize: csize}
	head := make([]byte, headSize)
	n, err := io.ReadFull(cr, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return err
	}
	head = head[:n]
	rest := io.MultiReader(bytes.NewReader(head), cr)
	if archiveKindOf(head) == kindTar {
		return in.tar(rest, depth)
	}
	used := false
	open := func() (io.Reader, error) {
		if used {
			return nil, errors.New("stream read twice")
		}
		used = true
		return rest, nil
	}
	if err := in.content("", head, open, -1, -1, depth); err != nil {
		return err
	}
	if !used {
		// Expand the rest only to measure it.
		if _, err := io.Copy(io.Discard, cr); err != nil {
			return err
		}
	}
	return nil
}

// tar inspects a tar archive read sequentially.
func (in *inspector) tar(r io.Reader, depth int) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var ref *refusal
			if errors.As(err, &ref) {
				return err
			}
			return fmt.Errorf("tar: %w", err)
		}
		if err := in.countEntry(); err != nil {
			return err
		}
		if err := in.entryName(hdr.Name); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
			continue
		}
		head := make([]byte, min(hdr.Size, headSize))
		n, err := io.ReadFull(tr, head)
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return err
		}
		used := false
		open := func() (io.Reader, error) {
			if used {
				return nil, errors.New("tar entry read twice")
			}
			used = true
			return io.MultiReader(bytes.NewReader(head[:n]), tr), nil
		}
		if err := in.content(hdr.Name, head[:n], open, hdr.Size, -1, depth); err != nil {
			return err
		}
	}
}

// Zip record signatures.
const (
	zipLocalSig     = 0x04034b50
	zipCentralSig   = 0x02014b50
	zipEndSig       = 0x06054b50
	zip64LocatorSig = 0x07064b50
	zip64EndSig     = 0x06064b50
	zipEndLen       = 22
	zipCentralLen   = 46
	zipStore        = 0 // compression methods the inspector reads
	zipDeflate      = 8
)

// zipEntry is one record of a zip central directory.
type zipEntry struct {
	name          string
	flags, method uint16
	csize, usize  uint64
	offset        uint64 // of the local header
}

// walkZip reads the central directory of the zip archive in r, of size
// bytes, and calls fn for each entry in order, stopping at fn's first
// error. It reads the directory sequentially through a small buffer, so
// its memory does not grow with the number of entries, and checks every
// offset and length against size before reading.
func walkZip(r io.ReaderAt, size int64, fn func(zipEntry) error) error {
	if size < zipEndLen {
		return errors.New("zip: too short")
	}
	tailLen := min(size, zipEndLen+65535)
	tail := make([]byte, tailLen)
	if _, err := r.ReadAt(tail, size-tailLen); err != nil && err != io.EOF {
		return err
	}
	pos := -1
	for i := len(tail) - zipEndLen; i >= 0; i-- {
		if le32(tail[i:]) == zipEndSig && i+zipEndLen+int(le16(tail[i+20:])) <= len(tail) {
			pos = i
			break
		}
	}
	if pos < 0 {
		return errors.New("zip: no end of central directory")
	}
	end := tail[pos:]
	endOff := uint64(size - tailLen + int64(pos))
	if le16(end[4:]) != 0 || le16(end[6:]) != 0 {
		return errors.New("zip: multi-volume archives are not supported")
	}
	count := uint64(le16(end[10:]))
	cdSize := uint64(le32(end[12:]))
	cdOff := uint64(le32(end[16:]))
	limit := endOff // the directory ends before this
	if count == 0xffff || cdSize == 0xffffffff || cdOff == 0xffffffff {
		if endOff < 20 {
			return errors.New("zip: missing zip64 locator")
		}
		var loc [20]byte
		if _, err := r.ReadAt(loc[:], int64(endOff-20)); err != nil {
			return err
		}
		if le32(loc[:]) == zip64LocatorSig {
			recOff := le64(loc[8:])
			if recOff > endOff-20 || endOff-20-recOff < 56 {
				return errors.New("zip: zip64 end record out of bounds")
			}
			var rec [56]byte
			if _, err := r.ReadAt(rec[:], int64(recOff)); err != nil {
				return err
			}
			if le32(rec[:]) != zip64EndSig {
				return errors.New("zip: bad zip64 end record")
			}
			count, cdSize, cdOff = le64(rec[32:]), le64(rec[40:]), le64(rec[48:])
			limit = recOff
		}
	}
	if cdOff > limit || cdSize > limit-cdOff {
		return errors.New("zip: central directory out of bounds")
	}
	if count > cdSize/zipCentralLen {
		return fmt.Errorf("zip: %d entries cannot fit in a %d-byte directory", count, cdSize)
	}
	br := bufio.NewReaderSize(io.NewSectionReader(r, int64(cdOff), int64(cdSize)), 32<<10)
	var hdr [zipCentralLen]byte
	var buf []byte
	var n uint64
	for read := uint64(0); read < cdSize; n++ {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return fmt.Errorf("zip: central directory: %w", err)
		}
		if le32(hdr[:]) != zipCentralSig {
			return errors.New("zip: bad central directory record")
		}
		nameLen, extraLen, commentLen := int(le16(hdr[28:])), int(le16(hdr[30:])), int(le16(hdr[32:]))
		if cap(buf) < nameLen+extraLen {
			buf = make([]byte, nameLen+extraLen)
		}
		buf = buf[:nameLen+extraLen]
		if _, err := io.ReadFull(br, buf); err != nil {
			return fmt.Errorf("zip: central directory: %w", err)
		}
		if _, err := br.Discard(commentLen); err != nil {
			return fmt.Errorf("zip: central directory: %w", err)
		}
		read += uint64(zipCentralLen + nameLen + extraLen + commentLen)
		e := zipEntry{
			name:   string(buf[:nameLen]),
			flags:  le16(hdr[8:]),
			method: le16(hdr[10:]),
			csize:  uint64(le32(hdr[20:])),
			usize:  uint64(le32(hdr[24:])),
			offset: uint64(le32(hdr[42:])),
		}
		if err := e.zip64(buf[nameLen:]); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if n != count {
		return fmt.Errorf("zip: directory holds %d entries, end record says %d", n, count)
	}
	return nil
}

// zip64 reads the 64-bit sizes and offset from the extra field, for the
// fields whose 32-bit value is saturated.
func (e *zipEntry) zip64(extra []byte) error {
	for len(extra) >= 4 {
		id, n := le16(extra), int(le16(extra[2:]))
		extra = extra[4:]
		if n > len(extra) {
			return errors.New("zip: malformed extra field")
		}
		field := extra[:n]
		extra = extra[n:]
		if id != 0x0001 {
			continue
		}
		for _, v := range []*uint64{&e.usize, &e.csize, &e.offset} {
			if *v != 0xffffffff {
				continue
			}
			if len(field) < 8 {
				return errors.New("zip: short zip64 extra field")
			}
			*v = le64(field)
			field = field[8:]
		}
		return nil
	}
	return nil
}
