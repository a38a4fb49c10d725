package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"relais/server/store"
)

// Names in the payload.
const (
	aboutName    = "relais-backup.json"
	storeName    = "relais.db"
	manifestName = "manifest.json"
	scannerName  = "media/scanner.key"
	blobsDir     = "media/blobs"
	tlsDir       = "tls"
)

// About is the first file of an archive: what it is.
type About struct {
	Format  int       `json:"format"`
	Node    string    `json:"node"`
	Schema  int       `json:"schema"`
	Created time.Time `json:"created"`
	Relais  string    `json:"relais,omitempty"`
}

// Manifest is the last file of an archive.
type Manifest struct {
	Files []ManifestEntry `json:"files"`
	// Missing lists blobs the store names that were already missing from
	// the node's disk when the archive was made: restores accept their
	// absence and say so.
	Missing []string `json:"missing,omitempty"`
}

// ManifestEntry is one file of the archive.
type ManifestEntry struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Source is what a running node backs up.
type Source struct {
	DB *store.DB
	// Data is the node's data directory (media/, tls/).
	Data string
	// HoldRemovals keeps blob content on disk until release is called
	// (files.Service.HoldRemovals); nil when nothing removes content.
	HoldRemovals func() (release func())
	// Version is the running relais's version, recorded in About.
	Version string
}

// Stats tells what WritePayload wrote: Files in all (the manifest
// aside), Blobs of them media files, Bytes of content, and the blobs the
// store names that were Missing from the disk.
type Stats struct {
	Files, Blobs int
	Bytes        int64
	Missing      []string
}

// WritePayload writes the payload of an archive of src to w: the store as
// one transaction sees it, then the content of every blob that store
// names, the scanner key, the TLS state and the manifest. start, if not
// nil, is called once with the payload's expected size before the first
// byte is written.
func WritePayload(ctx context.Context, w io.Writer, src Source, start func(expected int64)) (Stats, error) {
	var st Stats
	if src.HoldRemovals != nil {
		// Held from before the snapshot: nothing the snapshot names can
		// be removed until its content is copied.
		release := src.HoldRemovals()
		defer release()
	}
	aw := &archiveWriter{tw: tar.NewWriter(w), now: time.Now().UTC()}
	var todo []planned
	err := src.DB.Snapshot(func(s *store.Snapshot) error {
		blobs, err := s.Blobs()
		if err != nil {
			return err
		}
		about, _ := json.Marshal(About{Format: formatVersion, Node: s.Node(), Schema: s.Schema(), Created: aw.now, Relais: src.Version})
		var size int64
		todo, size = plan(src.Data, blobs, &st)
		if start != nil {
			start(s.Size() + size + int64(len(about)) + 4096)
		}
		if err := aw.file(aboutName, int64(len(about)), strings.NewReader(string(about))); err != nil {
			return err
		}
		if err := aw.write(storeName, s.Size(), s.WriteTo); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	// The read transaction is over: the copies of blobs and files do not
	// keep bbolt from reusing pages.
	for _, f := range todo {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if err := aw.copyFile(f); err != nil {
			return st, err
		}
	}
	m, _ := json.Marshal(Manifest{Files: aw.entries, Missing: st.Missing})
	if err := aw.file(manifestName, int64(len(m)), strings.NewReader(string(m))); err != nil {
		return st, err
	}
	if err := aw.tw.Close(); err != nil {
		return st, fmt.Errorf("backup: %w", err)
	}
	st.Files, st.Bytes = len(aw.entries), aw.bytes
	return st, nil
}

type archiveWriter struct {
	tw      *tar.Writer
	now     time.Time
	entries []ManifestEntry
	bytes   int64
}

// planned is a file to copy after the store.
type planned struct {
	disk, name string
	size       int64
}

// plan lists the files to copy after the store, with their sizes and
// their total: blobs (a missing one is recorded in st.Missing), the
// scanner key, the TLS files.
func plan(data string, blobs []store.BlobRef, st *Stats) ([]planned, int64) {
	var out []planned
	var total int64
	add := func(name string) {
		disk := filepath.Join(data, filepath.FromSlash(name))
		fi, err := os.Lstat(disk)
		if err != nil || !fi.Mode().IsRegular() {
			if strings.HasPrefix(name, blobsDir+"/") {
				st.Missing = append(st.Missing, path.Base(name))
			}
			return
		}
		out = append(out, planned{disk: disk, name: name, size: fi.Size()})
		total += fi.Size() + 1024
	}
	for _, b := range blobs {
		add(blobPath(b.Hash))
	}
	st.Blobs = len(blobs) - len(st.Missing)
	add(scannerName)
	filepath.WalkDir(filepath.Join(data, tlsDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(data, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() && path.Base(rel) == "locks" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && validTLSPath(rel) {
			add(rel)
		}
		return nil
	})
	return out, total
}

func blobPath(hash string) string { return blobsDir + "/" + hash[:2] + "/" + hash }

// copyFile copies one planned file.
func (aw *archiveWriter) copyFile(f planned) error {
	isTLS := strings.HasPrefix(f.name, tlsDir+"/")
	fh, err := os.Open(f.disk)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && isTLS {
			return nil // a certificate renewed meanwhile
		}
		return fmt.Errorf("backup: %s: %w", f.name, err)
	}
	defer fh.Close()
	// Blobs never change once in place; a TLS file may have been
	// rewritten since it was listed: take its size now.
	size := f.size
	if fi, err := fh.Stat(); err == nil && isTLS {
		size = fi.Size()
	}
	return aw.file(f.name, size, fh)
}

// file writes one entry of exactly size bytes read from r.
func (aw *archiveWriter) file(name string, size int64, r io.Reader) error {
	return aw.write(name, size, func(w io.Writer) (int64, error) { return io.CopyN(w, r, size) })
}

// write writes one entry of exactly size bytes, the ones from writes to
// its writer, and records their hash.
func (aw *archiveWriter) write(name string, size int64, from func(io.Writer) (int64, error)) error {
	if err := aw.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: aw.now, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("backup: %s: %w", name, err)
	}
	h := sha256.New()
	n, err := from(io.MultiWriter(aw.tw, h))
	if err == nil && n != size {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("backup: %s: copied %d of %d bytes: %w", name, n, size, err)
	}
	aw.entries = append(aw.entries, ManifestEntry{Path: name, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
	aw.bytes += size
	return nil
}

// validName reports whether name may be a file of an archive, and so a
// path under the directory a restore writes into.
func validName(name string) bool {
	switch name {
	case aboutName, storeName, manifestName, scannerName:
		return true
	}
	if rest, ok := strings.CutPrefix(name, blobsDir+"/"); ok {
		dir, h, ok := strings.Cut(rest, "/")
		return ok && len(h) == 64 && isLowerHex(h) && dir == h[:2]
	}
	return validTLSPath(name)
}

// validTLSPath accepts tls/ followed by up to six clean components of
// ordinary characters.
func validTLSPath(name string) bool {
	rest, ok := strings.CutPrefix(name, tlsDir+"/")
	if !ok || rest == "" || len(name) > 512 || path.Clean(name) != name {
		return false
	}
	parts := strings.Split(rest, "/")
	if len(parts) > 6 {
		return false
	}
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || strings.HasPrefix(p, ".") {
			return false
		}
		for _, c := range p {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.+@", c)) {
				return false
			}
		}
	}
	return true
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// readPayload reads a payload, calling visit with every file's content in
// archive order, and checks every file against the manifest at the end.
// visit must read r to its end (or return an error). It returns the
// manifest.
func readPayload(r io.Reader, visit func(name string, size int64, r io.Reader) error) (Manifest, error) {
	tr := tar.NewReader(r)
	seen := map[string]ManifestEntry{}
	var order []string
	for {
		hd, err := tr.Next()
		if err == io.EOF {
			return Manifest{}, fmt.Errorf("%w: it ends without its manifest", ErrTruncated)
		}
		if err != nil {
			return Manifest{}, payloadError(err)
		}
		if hd.Typeflag != tar.TypeReg || !validName(hd.Name) || hd.Size < 0 {
			return Manifest{}, fmt.Errorf("%w: unexpected entry %.100q", ErrDamaged, hd.Name)
		}
		if _, dup := seen[hd.Name]; dup {
			return Manifest{}, fmt.Errorf("%w: %s appears twice", ErrDamaged, hd.Name)
		}
		if len(order) == 0 && hd.Name != aboutName {
			return Manifest{}, fmt.Errorf("%w: it does not start with %s", ErrDamaged, aboutName)
		}
		if hd.Name == manifestName {
			if hd.Size > 64<<20 {
				return Manifest{}, fmt.Errorf("%w: manifest of %d bytes", ErrDamaged, hd.Size)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return Manifest{}, payloadError(err)
			}
			var m Manifest
			if err := json.Unmarshal(b, &m); err != nil {
				return Manifest{}, fmt.Errorf("%w: manifest: %v", ErrDamaged, err)
			}
			if err := checkManifest(m, order, seen); err != nil {
				return Manifest{}, err
			}
			if _, err := tr.Next(); err != io.EOF {
				if err == nil {
					return Manifest{}, fmt.Errorf("%w: entries after the manifest", ErrDamaged)
				}
				return Manifest{}, payloadError(err)
			}
			// The end of the tar stream is zero blocks; what the tar
			// reader left unread may be nothing else.
			rest, err := io.ReadAll(io.LimitReader(r, 64<<10+1))
			if err != nil {
				return Manifest{}, payloadError(err)
			}
			if len(rest) > 64<<10 || bytes.ContainsFunc(rest, func(c rune) bool { return c != 0 }) {
				return Manifest{}, fmt.Errorf("%w: data after the end of the archive", ErrDamaged)
			}
			return m, nil
		}
		h := &countingHash{h: sha256.New()}
		if err := visit(hd.Name, hd.Size, io.TeeReader(tr, h)); err != nil {
			return Manifest{}, payloadError(err)
		}
		if h.n != hd.Size {
			return Manifest{}, fmt.Errorf("backup: %s: read %d of %d bytes", hd.Name, h.n, hd.Size)
		}
		seen[hd.Name] = ManifestEntry{Path: hd.Name, Size: hd.Size, SHA256: hex.EncodeToString(h.h.Sum(nil))}
		order = append(order, hd.Name)
	}
}

func checkManifest(m Manifest, order []string, seen map[string]ManifestEntry) error {
	if len(m.Files) != len(order) {
		return fmt.Errorf("%w: the manifest lists %d files, the archive has %d", ErrDamaged, len(m.Files), len(order))
	}
	for i, e := range m.Files {
		if e != seen[order[i]] {
			return fmt.Errorf("%w: %s does not match its SHA-256 in the manifest", ErrDamaged, order[i])
		}
	}
	for _, h := range m.Missing {
		if len(h) != 64 || !isLowerHex(h) {
			return fmt.Errorf("%w: manifest names a malformed blob", ErrDamaged)
		}
	}
	if _, ok := seen[storeName]; !ok {
		return fmt.Errorf("%w: no %s in the archive", ErrDamaged, storeName)
	}
	return nil
}

// payloadError maps what the tar reader and the opener return to the
// archive's errors.
func payloadError(err error) error {
	switch {
	case errors.Is(err, ErrDamaged), errors.Is(err, ErrTruncated), errors.Is(err, ErrWrongPassphrase):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: it ends inside a file", ErrTruncated)
	case errors.Is(err, tar.ErrHeader), errors.Is(err, tar.ErrInsecurePath), errors.Is(err, tar.ErrFieldTooLong):
		return fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("backup: %w", err)
	}
	// Anything else the tar reader says is about malformed input.
	return fmt.Errorf("%w: %v", ErrDamaged, err)
}

type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}
