package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"
)

// packaged holds the unit, the default configuration and the maintainer
// scripts.
//
//go:embed files
var packaged embed.FS

// Options says what to build.
type Options struct {
	Out     string   // output directory
	Version string   // "" derives it from git
	Archs   []string // GOARCH values
	Root    string   // the module's root
}

// stamp is what the binaries are stamped with and the packages named by.
type stamp struct {
	Version string
	Commit  string
	Date    time.Time // the commit's time: reproducible, unlike now
}

// Build builds everything into o.Out and returns the files' names,
// SHA256SUMS last.
func Build(o Options) ([]string, error) {
	if o.Root == "" {
		o.Root = "."
	}
	if len(o.Archs) == 0 {
		return nil, errors.New("no architecture to build")
	}
	for _, a := range o.Archs {
		if _, ok := rpmArch[a]; !ok {
			return nil, fmt.Errorf("architecture %q: only amd64 and arm64 are packaged", a)
		}
	}
	st, err := gitStamp(o.Root, o.Version)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	// nfpm reads contents and scripts from files: lay the embedded ones
	// out in a scratch directory.
	scratch, err := os.MkdirTemp("", "relais-packaging")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	if err := os.CopyFS(scratch, packaged); err != nil {
		return nil, fmt.Errorf("lay out packaged files: %w", err)
	}
	src := filepath.Join(scratch, "files")

	var names []string
	for _, arch := range o.Archs {
		bin := filepath.Join(o.Out, "relais-linux-"+arch)
		if err := goBuild(o.Root, arch, st, bin); err != nil {
			return nil, err
		}
		names = append(names, filepath.Base(bin))
		for _, format := range []string{"deb", "rpm"} {
			name, err := pkg(format, arch, st, bin, src, o.Out)
			if err != nil {
				return nil, err
			}
			names = append(names, name)
		}
		name, err := tarball(arch, st, bin, src, o.Out)
		if err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	if err := writeSums(o.Out, names); err != nil {
		return nil, err
	}
	return append(names, "SHA256SUMS"), nil
}

// gitStamp reads the commit and its time from git; version, when empty,
// comes from the nearest v* tag, or from the commit for untagged builds
// (0.0.0+git20261202135706.f3df13e, which sorts by commit time for dpkg
// and rpm alike).
func gitStamp(root, version string) (stamp, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", append([]string{"-C", root}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(string(out)), nil
	}
	commit, err := git("rev-parse", "HEAD")
	if err != nil {
		return stamp{}, err
	}
	when, err := git("log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return stamp{}, err
	}
	var unix int64
	if _, err := fmt.Sscan(when, &unix); err != nil {
		return stamp{}, fmt.Errorf("commit time %q: %w", when, err)
	}
	st := stamp{Commit: commit, Date: time.Unix(unix, 0).UTC()}
	// Tracked changes make the build a different one: say so, as `go
	// build -buildvcs` would.
	if dirty, err := git("status", "--porcelain", "--untracked-files=no"); err != nil {
		return stamp{}, err
	} else if dirty != "" {
		st.Commit += "-dirty"
	}
	switch {
	case version != "":
		st.Version = version
	default:
		if tag, err := git("describe", "--tags", "--match", "v[0-9]*", "--dirty"); err == nil {
			// v1.2.3-4-gabcdef0 → 1.2.3+4.gabcdef0: rpm refuses '-' in
			// a version, and both sort it after 1.2.3.
			base, rest, more := strings.Cut(tag, "-")
			st.Version = base
			if more {
				st.Version += "+" + strings.ReplaceAll(rest, "-", ".")
			}
		} else {
			st.Version = "0.0.0+git" + st.Date.Format("20060102150405") + "." + commit[:7]
		}
	}
	st.Version = strings.TrimPrefix(st.Version, "v")
	if st.Version == "" || strings.ContainsAny(st.Version, " \t\n/-_") || st.Version[0] < '0' || st.Version[0] > '9' {
		return stamp{}, fmt.Errorf("version %q: expected something like 1.2.3", st.Version)
	}
	return st, nil
}

// goBuild builds a static relais for linux/arch, stamped with st. The
// flags make the bytes depend on the sources and the toolchain only: no
// paths (-trimpath), no build id, no VCS state read at build time (the
// stamp comes through -X), the commit's time rather than now.
func goBuild(root, arch string, st stamp, out string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	ldflags := strings.Join([]string{
		"-s", "-w", "-buildid=",
		"-X", "relais/server/buildinfo.version=" + st.Version,
		"-X", "relais/server/buildinfo.commit=" + st.Commit,
		"-X", "relais/server/buildinfo.date=" + st.Date.Format(time.RFC3339),
	}, " ")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", abs, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch,
		// The micro-architecture levels are pinned: a GOAMD64 set on the
		// build machine must not change the bytes.
		"GOAMD64=v1", "GOARM64=v8.0",
		"GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build linux/%s: %w\n%s", arch, err, out)
	}
	return nil
}

var rpmArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}

// pkg builds the .deb or .rpm of relais for arch with nfpm.
func pkg(format, arch string, st stamp, bin, src, out string) (string, error) {
	root := files.ContentFileInfo{Owner: "root", Group: "root"}
	mode := func(m os.FileMode) *files.ContentFileInfo { i := root; i.Mode = m; i.MTime = st.Date; return &i }
	info := &nfpm.Info{
		Name:          "relais",
		Arch:          arch,
		Platform:      "linux",
		Version:       st.Version,
		VersionSchema: "none",
		Release:       "1",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "Relais <relais@localhost>",
		Vendor:        "Relais",
		License:       "EUPL-1.2",
		Description: "sovereign, end-to-end encrypted instant messenger for public administrations\n" +
			"One binary holds the server, its database, its TLS certificates and the web client.",
		MTime: st.Date,
		Overridables: nfpm.Overridables{
			Umask: 0o022,
			Contents: files.Contents{
				{Source: bin, Destination: "/usr/bin/relais", FileInfo: mode(0o755)},
				{Source: filepath.Join(src, "relais.service"), Destination: "/usr/lib/systemd/system/relais.service", FileInfo: mode(0o644)},
				{Source: filepath.Join(src, "relais.conf"), Destination: "/etc/relais/relais.conf", Type: files.TypeConfigNoReplace, FileInfo: mode(0o640)},
				{Destination: "/etc/relais", Type: files.TypeDir, FileInfo: mode(0o750)},
			},
		},
	}
	info.RPM.BuildHost = "relais-packaging" // not the machine's name: same bytes everywhere
	info.RPM.Summary = "Sovereign, end-to-end encrypted instant messenger"
	info.RPM.Group = "Applications/Communications"
	var p nfpm.Packager
	switch format {
	case "deb":
		p = deb.Default
		info.Scripts = nfpm.Scripts{
			PostInstall: filepath.Join(src, "deb", "postinst"),
			PreRemove:   filepath.Join(src, "deb", "prerm"),
			PostRemove:  filepath.Join(src, "deb", "postrm"),
		}
	case "rpm":
		p = rpm.DefaultRPM
		info.RPM.Arch = rpmArch[arch]
		info.Scripts = nfpm.Scripts{
			PreInstall:  filepath.Join(src, "rpm", "pre"),
			PostInstall: filepath.Join(src, "rpm", "post"),
			PreRemove:   filepath.Join(src, "rpm", "preun"),
			PostRemove:  filepath.Join(src, "rpm", "postun"),
		}
	default:
		return "", fmt.Errorf("unknown package format %q", format)
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", fmt.Errorf("%s %s: %w", format, arch, err)
	}
	name := p.ConventionalFileName(info)
	var b bytes.Buffer
	if err := p.Package(info, &b); err != nil {
		return "", fmt.Errorf("%s %s: %w", format, arch, err)
	}
	if err := os.WriteFile(filepath.Join(out, name), b.Bytes(), 0o644); err != nil {
		return "", err
	}
	return name, nil
}

// tarball writes relais-VERSION-linux-ARCH.tar.gz: the binary, the unit
// and the default configuration, for machines without dpkg or rpm. Owners,
// times and the gzip header are fixed so that the bytes are too.
func tarball(arch string, st stamp, bin, src, out string) (string, error) {
	dir := "relais-" + st.Version + "-linux-" + arch
	name := dir + ".tar.gz"
	var b bytes.Buffer
	gz, err := gzip.NewWriterLevel(&b, gzip.DefaultCompression)
	if err != nil {
		return "", err
	}
	gz.ModTime = st.Date
	tw := tar.NewWriter(gz)
	add := func(path, from string, mode int64) error {
		data, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: dir + "/" + path, Mode: mode, Size: int64(len(data)), ModTime: st.Date,
			Uname: "root", Gname: "root", Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	}
	for _, f := range []struct {
		path, from string
		mode       int64
	}{
		{"relais", bin, 0o755},
		{"relais.service", filepath.Join(src, "relais.service"), 0o644},
		{"relais.conf", filepath.Join(src, "relais.conf"), 0o640},
	} {
		if err := add(f.path, f.from, f.mode); err != nil {
			return "", fmt.Errorf("tarball %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := gz.Close(); err != nil {
		return "", err
	}
	return name, os.WriteFile(filepath.Join(out, name), b.Bytes(), 0o644)
}

// writeSums writes SHA256SUMS in the format sha256sum -c reads.
func writeSums(out string, names []string) error {
	sorted := slices.Sorted(slices.Values(names))
	var b strings.Builder
	for _, n := range sorted {
		f, err := os.Open(filepath.Join(out, n))
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("checksum %s: %w", n, err)
		}
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), n)
	}
	return os.WriteFile(filepath.Join(out, "SHA256SUMS"), []byte(b.String()), 0o644)
}

// packagedFile returns one of the embedded files, for the tests.
func packagedFile(name string) ([]byte, error) {
	return fs.ReadFile(packaged, "files/"+name)
}
