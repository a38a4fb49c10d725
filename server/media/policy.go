package media

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"relais/server/blob"
)

// Stable codes of a refusing Verdict (and of Outcome.Code).
const (
	CodeBlockedType        = "blocked_type"        // executable, script, installer, shortcut, disk image…
	CodeTooLarge           = "too_large"           // larger than the policy's (or clamd's) limit
	CodeArchiveBomb        = "archive_bomb"        // expands too much, too many entries, overlapping entries
	CodeArchiveNested      = "archive_nested"      // archives nested too deep, or too large to inspect
	CodeArchiveEncrypted   = "archive_encrypted"   // password-protected entries cannot be scanned
	CodeArchiveInvalid     = "archive_invalid"     // corrupt archive, or entry paths escaping it
	CodeInfected           = "infected"            // clamd found a signature
	CodeScannerUnavailable = "scanner_unavailable" // clamd down and the operator chose to reject
	CodeUndecryptable      = "undecryptable"       // an encrypted file that the given key does not open
)

// Verdict is the built-in policy's decision on a file.
type Verdict struct {
	Allowed bool
	// Code is one of the Code constants when Allowed is false.
	Code string
	// Reason explains the refusal in English, for logs and for the notice
	// shown to users; names it quotes went through SanitizeName.
	Reason string
}

var allowed = Verdict{Allowed: true}

func refuse(code, format string, args ...any) Verdict {
	return Verdict{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// DefaultBlockedExtensions are refused by name: programs, installers,
// scripts, shortcuts and disk images of Windows, macOS, Linux and Android.
var DefaultBlockedExtensions = []string{
	// Windows programs, libraries and installers.
	"exe", "dll", "scr", "com", "pif", "cpl", "sys", "drv", "ocx", "msi", "msp", "mst", "msc",
	"appx", "appxbundle", "msix", "msixbundle", "application", "gadget", "xbap", "xll",
	// Windows scripts, shortcuts and system files.
	"bat", "cmd", "ps1", "psm1", "psd1", "ps1xml", "ps2", "psc1", "vb", "vbs", "vbe", "js", "jse",
	"wsf", "wsh", "wsc", "sct", "hta", "reg", "inf", "scf", "lnk", "url", "library-ms",
	"settingcontent-ms", "chm", "hlp", "ade", "adp", "mde",
	// Java.
	"jar", "class", "jnlp",
	// Unix and macOS.
	"sh", "bash", "zsh", "csh", "ksh", "command", "run", "desktop", "appimage", "app", "pkg",
	"dmg", "deb", "rpm",
	// Interpreted scripts run by a double click where the interpreter is installed.
	"py", "pyw", "pyc", "pyz",
	// Mobile packages.
	"apk", "xapk", "aab", "ipa",
	// Disk images, used to smuggle programs past download warnings.
	"iso", "img", "vhd", "vhdx",
}

// DefaultBlockedTypes are declared content types refused at upload.
var DefaultBlockedTypes = []string{
	"application/x-msdownload", "application/x-msdos-program", "application/x-dosexec",
	"application/vnd.microsoft.portable-executable", "application/x-executable",
	"application/x-elf", "application/x-sharedlib", "application/x-mach-binary",
	"application/x-msi", "application/x-ms-installer", "application/x-ms-shortcut",
	"application/java-archive", "application/x-java-archive", "application/java-vm",
	"application/x-sh", "application/x-shellscript", "application/x-csh", "application/x-bat",
	"application/hta", "application/x-ms-application",
	"application/vnd.android.package-archive", "application/x-apple-diskimage",
	"application/x-iso9660-image", "application/x-debian-package", "application/x-rpm",
	"text/javascript", "application/javascript", "application/x-javascript",
	"text/vbscript", "text/x-python", "text/x-shellscript",
}

// Policy is the built-in check that runs on every file, with or without
// clamd. The zero Policy uses the defaults documented on each field.
type Policy struct {
	// MaxSize is the largest file accepted, in bytes. Zero means
	// blob.DefaultMaxFileSize.
	MaxSize int64
	// BlockedExtensions are lower-case extensions without the dot, refused
	// in names and in archive entries. Nil means DefaultBlockedExtensions.
	BlockedExtensions []string
	// BlockedTypes are declared content types refused at upload. Nil
	// means DefaultBlockedTypes.
	BlockedTypes []string
	// Archive bounds what archives may hold.
	Archive ArchiveLimits
}

// ArchiveLimits bound zip-based files (including docx, xlsx, odt, jar,
// epub), gzip and bzip2 streams and tar archives. Zero fields take the
// defaults.
type ArchiveLimits struct {
	// MaxEntries is the most entries, all levels together; default 10,000.
	MaxEntries int
	// MaxUncompressed is the most bytes the content expands to, all levels
	// together; default 1 GiB.
	MaxUncompressed int64
	// MaxRatio is the highest expansion ratio of an entry (or a stream)
	// that expands beyond 1 MiB; default 250 (deflate tops out near 1,030).
	MaxRatio int64
	// MaxDepth is how many archive levels may nest (a docx holding an xlsx
	// is two); default 3.
	MaxDepth int
	// MaxNestedSize is the largest nested zip inspected, inflated in
	// memory; default 16 MiB. A larger one is refused.
	MaxNestedSize int64
	// AllowEncrypted accepts password-protected zip entries, which neither
	// the policy nor clamd can look into. Default false.
	AllowEncrypted bool
}

func (p *Policy) maxSize() int64 {
	if p.MaxSize > 0 {
		return p.MaxSize
	}
	return blob.DefaultMaxFileSize
}

func (p *Policy) extensions() []string {
	if p.BlockedExtensions != nil {
		return p.BlockedExtensions
	}
	return DefaultBlockedExtensions
}

func (p *Policy) types() []string {
	if p.BlockedTypes != nil {
		return p.BlockedTypes
	}
	return DefaultBlockedTypes
}

func (l ArchiveLimits) withDefaults() ArchiveLimits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = 10_000
	}
	if l.MaxUncompressed <= 0 {
		l.MaxUncompressed = 1 << 30
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = 250
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 3
	}
	if l.MaxNestedSize <= 0 {
		l.MaxNestedSize = 16 << 20
	}
	return l
}

// CheckName checks a file name and a declared content type, before any
// content arrives. The name goes through SanitizeName first, so the
// extension checked is the one the downloader will see.
func (p *Policy) CheckName(name, declaredType string) Verdict {
	name = SanitizeName(name)
	if ext := extension(name); ext != "" && containsFold(p.extensions(), ext) {
		return refuse(CodeBlockedType, "files of type .%s are not accepted", ext)
	}
	if declaredType != "" && containsFold(p.types(), mediaType(declaredType)) {
		return refuse(CodeBlockedType, "content type %s is not accepted", strconv.Quote(mediaType(declaredType)))
	}
	return allowed
}

// extension returns the lower-case extension of a file name, without the
// dot, or "".
func extension(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i < 0 || i == len(name)-1 {
		return ""
	}
	return strings.ToLower(strings.TrimRight(name[i+1:], " "))
}

func mediaType(t string) string {
	t, _, _ = strings.Cut(t, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// CheckFile runs CheckContent on the file at path.
func (p *Policy) CheckFile(path string) (Verdict, error) {
	f, err := os.Open(path)
	if err != nil {
		return Verdict{}, fmt.Errorf("policy check: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Verdict{}, fmt.Errorf("policy check: %w", err)
	}
	return p.CheckContent(f, fi.Size())
}

// CheckContent checks content by its bytes, whatever its name: its size;
// executables, scripts, installers, shortcuts and disk images recognized by
// their magic numbers; and archives (zip and the formats built on it, gzip,
// bzip2, tar), walked without extracting them to disk, for bombs, nesting,
// encryption, blocked entries by name and by content. The error is only
// for failures reading r; a malformed archive is a refusing Verdict.
func (p *Policy) CheckContent(r io.ReaderAt, size int64) (Verdict, error) {
	if size > p.maxSize() {
		return refuse(CodeTooLarge, "file of %d bytes exceeds the limit of %d", size, p.maxSize()), nil
	}
	tr := &trackReaderAt{r: r}
	in := &inspector{lim: p.Archive.withDefaults(), exts: p.extensions()}
	err := in.file(tr, size)
	if tr.err != nil {
		return Verdict{}, fmt.Errorf("policy check: read content: %w", tr.err)
	}
	var ref *refusal
	switch {
	case err == nil:
		return allowed, nil
	case errors.As(err, &ref):
		return ref.v, nil
	default:
		return refuse(CodeArchiveInvalid, "malformed archive: %v", err), nil
	}
}

// trackReaderAt records the first error of the underlying reader, so that
// read failures are told apart from malformed content.
type trackReaderAt struct {
	r   io.ReaderAt
	err error
}

func (t *trackReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := t.r.ReadAt(p, off)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}

// refusal carries a verdict out of the archive walk.
type refusal struct{ v Verdict }

func (r *refusal) Error() string { return r.v.Code + ": " + r.v.Reason }

func refused(code, format string, args ...any) error {
	return &refusal{refuse(code, format, args...)}
}

// headSize is how much of a file (or an archive entry) is read to
// recognize its format.
const headSize = 4096

// readHead reads up to headSize bytes at the start of r.
func readHeadAt(r io.ReaderAt, size int64) ([]byte, error) {
	head := make([]byte, min(size, headSize))
	n, err := r.ReadAt(head, 0)
	if err == io.EOF {
		err = nil
	}
	return head[:n], err
}

// executable returns a description of the program, script, installer,
// shortcut or disk image format of content starting with head, or "". r
// and size give random access to the whole content when available (nil
// inside archives); some formats are recognized only with it.
func executable(head []byte, r io.ReaderAt, size int64) string {
	at := func(off int64, n int) []byte {
		if off >= 0 && off+int64(n) <= int64(len(head)) {
			return head[off : off+int64(n)]
		}
		if r == nil || off < 0 || off+int64(n) > size {
			return nil
		}
		b := make([]byte, n)
		if _, err := r.ReadAt(b, off); err != nil {
			return nil
		}
		return b
	}
	hasPrefix := func(p string) bool { return bytes.HasPrefix(head, []byte(p)) }
	switch {
	case hasPrefix("MZ"):
		if len(head) >= 0x40 {
			if sig := at(int64(le32(head[0x3c:])), 4); sig != nil {
				switch {
				case string(sig) == "PE\x00\x00":
					return "Windows program (PE)"
				case string(sig[:2]) == "NE", string(sig[:2]) == "LE", string(sig[:2]) == "LX":
					return "Windows or OS/2 program"
				}
			}
			// A DOS program: a plausible header, unlike text starting "MZ".
			if last, pages, hdr := le16(head[2:]), le16(head[4:]), le16(head[8:]); last < 512 && pages > 0 && pages < 0x1000 && hdr >= 2 {
				return "DOS program"
			}
		}
	case hasPrefix("\x7fELF"):
		return "Linux program (ELF)"
	case hasPrefix("\xfe\xed\xfa\xce"), hasPrefix("\xfe\xed\xfa\xcf"), hasPrefix("\xce\xfa\xed\xfe"), hasPrefix("\xcf\xfa\xed\xfe"):
		return "macOS program (Mach-O)"
	case hasPrefix("\xca\xfe\xba\xbe"):
		return "Java class or macOS universal program"
	case hasPrefix("#!"):
		return "script (#! interpreter line)"
	case hasPrefix("L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"):
		return "Windows shortcut (LNK)"
	case hasPrefix("dex\n"):
		return "Android program (DEX)"
	case hasPrefix("vhdxfile"), hasPrefix("conectix"):
		return "disk image (VHD)"
	case hasPrefix("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
		if isInstaller(head, at) {
			return "Windows installer (MSI)"
		}
	}
	if cd := at(0x8001, 5); string(cd) == "CD001" {
		return "disk image (ISO 9660)"
	}
	text := bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	if bytes.HasPrefix(head, []byte("\xff\xfe")) {
		text = utf16Text(head[2:])
	}
	for _, p := range []string{"REGEDIT4", "Windows Registry Editor"} {
		if bytes.HasPrefix(text, []byte(p)) {
			return "Windows registry file"
		}
	}
	if hasPrefixFold(text, "[InternetShortcut]") || hasPrefixFold(text, "[Shell]") {
		return "Windows shortcut (URL, SCF)"
	}
	if bytes.Contains(bytes.ToLower(head), []byte("<hta:application")) {
		return "HTML application (HTA)"
	}
	return ""
}

// isInstaller reports whether an OLE compound file (also used by .doc and
// .xls) is a Windows Installer database or patch, by its root storage's
// class identifier.
func isInstaller(head []byte, at func(int64, int) []byte) bool {
	if len(head) < 0x34 {
		return false
	}
	shift := le16(head[0x1e:])
	if shift != 9 && shift != 12 {
		return false
	}
	dirSector := int64(le32(head[0x30:]))
	if dirSector >= 0xfffffffa {
		return false
	}
	clsid := at((dirSector+1)<<shift+0x50, 16)
	if clsid == nil {
		return false
	}
	// {000C1084-…} installer, {000C1086-…} patch, {000C1082-…} transform.
	rest := "\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"
	return clsid[0] >= 0x82 && clsid[0] <= 0x86 && clsid[0]%2 == 0 &&
		string(clsid[1:4]) == "\x10\x0c\x00" && string(clsid[4:]) == rest
}

func hasPrefixFold(b []byte, p string) bool {
	return len(b) >= len(p) && strings.EqualFold(string(b[:len(p)]), p)
}

// utf16Text returns the low bytes of little-endian UTF-16 ASCII text,
// enough to match ASCII prefixes.
func utf16Text(b []byte) []byte {
	out := make([]byte, 0, len(b)/2)
	for i := 0; i+1 < len(b) && len(out) < 64; i += 2 {
		if b[i+1] != 0 {
			break
		}
		out = append(out, b[i])
	}
	return out
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func le64(b []byte) uint64 { return uint64(le32(b)) | uint64(le32(b[4:]))<<32 }
