package media

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// zipOf builds a zip archive with archive/zip; a name ending in "!" is
// stored instead of deflated.
func zipOf(t testing.TB, files ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for i := 0; i < len(files); i += 2 {
		name := files[i].(string)
		var data []byte
		switch d := files[i+1].(type) {
		case string:
			data = []byte(d)
		case []byte:
			data = d
		}
		method := zip.Deflate
		if n, ok := strings.CutSuffix(name, "!"); ok {
			name, method = n, zip.Store
		}
		f, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		f.Write(data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawEntry is an entry of a hand-built zip, for what archive/zip refuses to
// write.
type rawEntry struct {
	name  string
	data  []byte // stored
	flags uint16
	usize uint32 // declared uncompressed size; 0 means len(data)
	// sameDataAs makes the central record point at an earlier entry's
	// local header (overlapping entries).
	sameDataAs int
}

func rawZip(entries []rawEntry) []byte {
	var out, cd bytes.Buffer
	offsets := make([]uint32, len(entries))
	le := binary.LittleEndian
	for i, e := range entries {
		usize := e.usize
		if usize == 0 {
			usize = uint32(len(e.data))
		}
		off := uint32(out.Len())
		if e.sameDataAs > 0 {
			off = offsets[e.sameDataAs-1]
		} else {
			var lh [30]byte
			le.PutUint32(lh[0:], zipLocalSig)
			le.PutUint16(lh[4:], 20)
			le.PutUint16(lh[6:], e.flags)
			le.PutUint32(lh[14:], crc32.ChecksumIEEE(e.data))
			le.PutUint32(lh[18:], uint32(len(e.data)))
			le.PutUint32(lh[22:], usize)
			le.PutUint16(lh[26:], uint16(len(e.name)))
			out.Write(lh[:])
			out.WriteString(e.name)
			out.Write(e.data)
		}
		offsets[i] = off
		var ch [46]byte
		le.PutUint32(ch[0:], zipCentralSig)
		le.PutUint16(ch[4:], 20)
		le.PutUint16(ch[6:], 20)
		le.PutUint16(ch[8:], e.flags)
		le.PutUint32(ch[16:], crc32.ChecksumIEEE(e.data))
		le.PutUint32(ch[20:], uint32(len(e.data)))
		le.PutUint32(ch[24:], usize)
		le.PutUint16(ch[28:], uint16(len(e.name)))
		le.PutUint32(ch[42:], off)
		cd.Write(ch[:])
		cd.WriteString(e.name)
	}
	cdOff := out.Len()
	out.Write(cd.Bytes())
	var end [22]byte
	le.PutUint32(end[0:], zipEndSig)
	le.PutUint16(end[8:], uint16(len(entries)))
	le.PutUint16(end[10:], uint16(len(entries)))
	le.PutUint32(end[12:], uint32(cd.Len()))
	le.PutUint32(end[16:], uint32(cdOff))
	out.Write(end[:])
	return out.Bytes()
}

func gzipOf(data []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(data)
	w.Close()
	return buf.Bytes()
}

func tarOf(t testing.TB, files ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for i := 0; i < len(files); i += 2 {
		data := []byte(files[i+1].(string))
		if err := w.WriteHeader(&tar.Header{Name: files[i].(string), Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	w.Close()
	return buf.Bytes()
}

// pe returns a minimal Windows PE header.
func pe() []byte {
	b := make([]byte, 512)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x80)
	copy(b[0x80:], "PE\x00\x00")
	return b
}

// msi returns the start of an OLE compound file whose root storage has the
// Windows Installer class; doc the same with another class.
func cfb(clsid0 byte) []byte {
	b := make([]byte, 3*512)
	copy(b, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
	binary.LittleEndian.PutUint16(b[0x1e:], 9) // 512-byte sectors
	binary.LittleEndian.PutUint32(b[0x30:], 1) // directory in sector 1
	root := (1+1)<<9 + 0x50
	copy(b[root:], []byte{clsid0, 0x10, 0x0c, 0x00, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46})
	return b
}

func nest(t testing.TB, depth int, inner []byte) []byte {
	for range depth {
		inner = zipOf(t, "inner.zip!", inner)
	}
	return inner
}

func TestPolicyContent(t *testing.T) {
	bz, _ := base64.StdEncoding.DecodeString("QlpoOTFBWSZTWaRTSlAAAAPZgAAQQAAQABZk0JAgACKYE2hqEAABw9xY8dyOE4D8XckU4UJCkU0pQA==")
	bzBomb, _ := base64.StdEncoding.DecodeString("QlpoOTFBWSZTWTNUU3kAUFBAIMAAAAQACCAAMMwFKaYEgTYgkCeLuSKcKEgZqim8gA==")
	iso := make([]byte, 0x9000)
	copy(iso[0x8001:], "CD001")
	docx := zipOf(t, "[Content_Types].xml", "<Types/>", "word/document.xml", strings.Repeat("<w:p>Bonjour</w:p>", 100))
	docxWithSheet := zipOf(t, "[Content_Types].xml", "<Types/>", "word/embeddings/Feuille.xlsx", zipOf(t, "xl/workbook.xml", "<workbook/>"))
	manyEntries := make([]any, 0, 2*101)
	for i := range 101 {
		manyEntries = append(manyEntries, fmt.Sprintf("f%d.txt", i), "x")
	}
	p := &Policy{MaxSize: 64 << 20, Archive: ArchiveLimits{MaxEntries: 100, MaxUncompressed: 64 << 20}}

	cases := []struct {
		name    string
		content []byte
		code    string // "" means allowed
	}{
		{"text", []byte("Bonjour, voici le compte rendu."), ""},
		{"text starting with MZ", []byte("MZ is the name of the project; see the attached plan for details..............................."), ""},
		{"pdf", []byte("%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n"), ""},
		{"word document (OLE)", cfb(0x06), ""},
		{"docx", docx, ""},
		{"docx with an embedded sheet", docxWithSheet, ""},
		{"gzip of text", gzipOf([]byte(strings.Repeat("ligne de journal\n", 1000))), ""},
		{"tar.gz of documents", gzipOf(tarOf(t, "a.txt", "a", "b/c.txt", "c")), ""},
		{"bzip2 of text", bz, ""},
		{"empty", nil, ""},

		{"PE program", pe(), CodeBlockedType},
		{"ELF program", append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 100)...), CodeBlockedType},
		{"Mach-O", []byte("\xcf\xfa\xed\xfe\x07\x00\x00\x01"), CodeBlockedType},
		{"Java class", []byte("\xca\xfe\xba\xbe\x00\x00\x00\x34"), CodeBlockedType},
		{"shell script", []byte("#!/bin/sh\nrm -rf ~\n"), CodeBlockedType},
		{"shortcut", append([]byte("L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"), make([]byte, 60)...), CodeBlockedType},
		{"msi", cfb(0x84), CodeBlockedType},
		{"iso", iso, CodeBlockedType},
		{"registry file in UTF-16", append([]byte("\xff\xfe"), []byte("W\x00i\x00n\x00d\x00o\x00w\x00s\x00 \x00R\x00e\x00g\x00i\x00s\x00t\x00r\x00y\x00 \x00E\x00d\x00i\x00t\x00o\x00r\x00")...), CodeBlockedType},
		{"hta", []byte("<html><head><HTA:APPLICATION ID=x></head></html>"), CodeBlockedType},
		{"url shortcut", []byte("[InternetShortcut]\r\nURL=file://evil/x.exe\r\n"), CodeBlockedType},
		{"too large", nil, CodeTooLarge}, // size given below

		{"zip with an exe name", zipOf(t, "docs/setup.exe", "x"), CodeBlockedType},
		{"zip with a renamed program", zipOf(t, "facture.pdf", pe()), CodeBlockedType},
		{"zip with a stored script", zipOf(t, "run.txt!", "#!/bin/bash\n"), CodeBlockedType},
		{"zip path traversal", rawZip([]rawEntry{{name: "../../etc/cron.d/x", data: []byte("x")}}), CodeArchiveInvalid},
		{"zip absolute path", rawZip([]rawEntry{{name: "/etc/passwd", data: []byte("x")}}), CodeArchiveInvalid},
		{"zip too many entries", zipOf(t, manyEntries...), CodeArchiveBomb},
		{"zip ratio bomb", zipOf(t, "zeros.txt", make([]byte, 20<<20)), CodeArchiveBomb},
		{"zip declaring huge sizes", rawZip([]rawEntry{{name: "a.txt", data: []byte("x"), usize: 0xfffffff0}}), CodeArchiveBomb},
		{"zip overlapping entries", rawZip([]rawEntry{{name: "a.txt", data: bytes.Repeat([]byte("a"), 100)}, {name: "b.txt", sameDataAs: 1, data: bytes.Repeat([]byte("a"), 100)}}), CodeArchiveBomb},
		{"zip nested too deep", nest(t, 3, zipOf(t, "a.txt", "a")), CodeArchiveNested},
		{"zip nested with a program", nest(t, 1, zipOf(t, "a.txt", pe())), CodeBlockedType},
		{"zip encrypted", rawZip([]rawEntry{{name: "secret.txt", data: []byte("xxxxxxxxxxxxxxx"), flags: 1}}), CodeArchiveEncrypted},
		{"zip truncated", docx[:len(docx)/2], CodeArchiveInvalid},
		{"zip with a gzip bomb inside", zipOf(t, "logs.gz!", gzipOf(make([]byte, 20<<20))), CodeArchiveBomb},
		{"gzip bomb", gzipOf(make([]byte, 20<<20)), CodeArchiveBomb},
		{"bzip2 bomb", bzBomb, CodeArchiveBomb},
		{"gzip of a program", gzipOf(pe()), CodeBlockedType},
		{"tar.gz with a program name", gzipOf(tarOf(t, "a.txt", "a", "bin/tool.sh", "echo")), CodeBlockedType},
		{"tar with an ELF", tarOf(t, "data.bin", "\x7fELF\x02\x01\x01\x00"), CodeBlockedType},
		{"tar with a zip with a program", tarOf(t, "x.zip", string(zipOf(t, "a.exe", "x"))), CodeBlockedType},
		{"corrupt gzip", []byte("\x1f\x8b\x08\x00garbage garbage garbage"), CodeArchiveInvalid},
	}
	for _, tc := range cases {
		size := int64(len(tc.content))
		if tc.code == CodeTooLarge {
			size = p.MaxSize + 1
		}
		v, err := p.CheckContent(bytes.NewReader(tc.content), size)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if v.Allowed != (tc.code == "") || v.Code != tc.code {
			t.Errorf("%s: %+v, want code %q", tc.name, v, tc.code)
		} else {
			t.Logf("%s: %+v", tc.name, v)
		}
	}

	// The defaults allow two levels of nesting (a docx with a sheet).
	var zero Policy
	if v, _ := zero.CheckContent(bytes.NewReader(docxWithSheet), int64(len(docxWithSheet))); !v.Allowed {
		t.Errorf("zero Policy refuses a docx with a sheet: %+v", v)
	}
	// Encrypted archives may be allowed by the operator.
	enc := rawZip([]rawEntry{{name: "secret.txt", data: []byte("xxxxxxxxxxxxxxx"), flags: 1}})
	lenient := Policy{Archive: ArchiveLimits{AllowEncrypted: true}}
	if v, _ := lenient.CheckContent(bytes.NewReader(enc), int64(len(enc))); !v.Allowed {
		t.Errorf("AllowEncrypted: %+v", v)
	}
}

func TestPolicyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, pe(), 0o600)
	var p Policy
	v, err := p.CheckFile(path)
	if err != nil || v.Code != CodeBlockedType {
		t.Fatalf("CheckFile = %+v, %v", v, err)
	}
	if _, err := p.CheckFile(path + ".missing"); err == nil {
		t.Error("CheckFile(missing) = nil error")
	}
	// A read failure is an error, not a verdict.
	f, _ := os.Open(path)
	f.Close()
	if _, err := p.CheckContent(f, 512); err == nil {
		t.Error("CheckContent(closed file) = nil error")
	}
}

func TestCheckName(t *testing.T) {
	var p Policy
	for _, tc := range []struct {
		name, typ string
		ok        bool
	}{
		{"rapport.pdf", "application/pdf", true},
		{"photo.JPG", "image/jpeg", true},
		{"noextension", "", true},
		{"archive.tar.gz", "application/gzip", true},
		{"setup.EXE", "", false},
		{"x.ps1", "", false},
		{"x.js", "", false},
		{"x.jar", "", false},
		{"x.lnk", "", false},
		{"x.iso", "", false},
		{"x.apk", "", false},
		{"x.sh", "", false},
		{"x.txt", "application/x-msdownload", false},
		{"x.txt", "Application/X-Sh; charset=utf-8", false},
		{"x.exe ", "", false},
		{"x.exe\u200b", "", false},
	} {
		v := p.CheckName(tc.name, tc.typ)
		if v.Allowed != tc.ok || !tc.ok && v.Code != CodeBlockedType {
			t.Errorf("CheckName(%q, %q) = %+v", tc.name, tc.typ, v)
		}
	}
	custom := Policy{BlockedExtensions: []string{"html"}}
	if custom.CheckName("a.exe", "").Allowed != true || custom.CheckName("a.HTML", "").Allowed != false {
		t.Error("BlockedExtensions not honoured")
	}
}

func FuzzWalkZip(f *testing.F) {
	f.Add(zipOf(f, "a.txt", "hello", "b/c.xml", "<x/>"))
	f.Add(rawZip([]rawEntry{{name: "a", data: []byte("x")}, {name: "b", sameDataAs: 1}}))
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		walkZip(bytes.NewReader(data), int64(len(data)), func(e zipEntry) error {
			n++
			if len(e.name) > len(data) {
				t.Fatalf("entry name longer than the archive")
			}
			return nil
		})
		if n > len(data)/zipCentralLen {
			t.Fatalf("%d entries in %d bytes", n, len(data))
		}
	})
}

func FuzzCheckContent(f *testing.F) {
	f.Add(zipOf(f, "a.txt", "hello", "b.zip", zipOf(f, "c.txt", "c")))
	f.Add(gzipOf(tarOf(f, "a.txt", "a")))
	f.Add(rawZip([]rawEntry{{name: "secret.txt", data: []byte("x"), flags: 1}}))
	f.Add(pe())
	f.Add(cfb(0x84))
	f.Add([]byte("#!/bin/sh"))
	p := &Policy{Archive: ArchiveLimits{MaxEntries: 1000, MaxUncompressed: 64 << 20, MaxNestedSize: 1 << 20}}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := p.CheckContent(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("CheckContent: %v", err)
		}
		if !v.Allowed && (v.Code == "" || v.Reason == "") {
			t.Fatalf("refusal without code or reason: %+v", v)
		}
	})
}
