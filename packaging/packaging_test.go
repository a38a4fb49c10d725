package main

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"relais/server/config"
)

// The test packages only the machine's architecture: the arm64 build is
// the packaging command's (it costs a cold cross-compilation).
var arch = runtime.GOARCH

var (
	buildMu sync.Mutex
	built   = map[string]string{} // version → output directory
)

// build runs the packaging once per version for the whole test binary.
func build(t *testing.T, version string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if dir, ok := built[version]; ok {
		return dir
	}
	dir, err := os.MkdirTemp("", "relais-dist-"+version+"-")
	must(t, err)
	start := time.Now()
	if _, err := Build(Options{Out: dir, Version: version, Archs: []string{arch}, Root: ".."}); err != nil {
		t.Fatalf("packaging %s: %v", version, err)
	}
	t.Logf("packaging %s for %s took %s", version, arch, time.Since(start).Round(time.Millisecond))
	built[version] = dir
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range built {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// artifact returns the one file of dir whose name ends in suffix.
func artifact(t *testing.T, dir, suffix string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
	must(t, err)
	if len(m) != 1 {
		t.Fatalf("want one *%s in %s, got %v", suffix, dir, m)
	}
	return m[0]
}

// TestPackagingTwoBuildsOfOneCommitAreIdentical builds everything twice
// into different directories, seconds apart, and compares the bytes of
// every file; SHA256SUMS must list them all and check out.
func TestPackagingTwoBuildsOfOneCommitAreIdentical(t *testing.T) {
	a := build(t, "1.0.0")
	b := t.TempDir()
	if _, err := Build(Options{Out: b, Version: "1.0.0", Archs: []string{arch}, Root: ".."}); err != nil {
		t.Fatal(err)
	}
	names := func(dir string) []string {
		es, err := os.ReadDir(dir)
		must(t, err)
		var n []string
		for _, e := range es {
			n = append(n, e.Name())
		}
		return n
	}
	want := []string{"SHA256SUMS", "relais-1.0.0-1." + rpmArch[arch] + ".rpm", "relais-1.0.0-linux-" + arch + ".tar.gz",
		"relais-linux-" + arch, "relais_1.0.0-1_" + arch + ".deb"}
	if got := names(a); !slices.Equal(got, want) {
		t.Fatalf("files: %v, want %v", got, want)
	}
	for _, n := range want {
		x, err := os.ReadFile(filepath.Join(a, n))
		must(t, err)
		y, err := os.ReadFile(filepath.Join(b, n))
		must(t, err)
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two builds of one commit (%x, %x)", n, sha256.Sum256(x), sha256.Sum256(y))
		}
	}
	cmd := exec.Command("sha256sum", "--check", "--strict", "SHA256SUMS")
	cmd.Dir = a
	if out, err := cmd.CombinedOutput(); err != nil || strings.Count(string(out), ": OK") != len(want)-1 {
		t.Fatalf("sha256sum --check: %v\n%s", err, out)
	}
}

// TestPackagingBinaryIsStaticAndStamped: no dynamic loader, no build id,
// and `relais version` names the version, the commit and its date.
func TestPackagingBinaryIsStaticAndStamped(t *testing.T) {
	bin := filepath.Join(build(t, "1.0.0"), "relais-linux-"+arch)
	f, err := elf.Open(bin)
	must(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (program header %v)", p.Type)
		}
	}
	if out, err := exec.Command("go", "tool", "buildid", bin).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("build id %q (%v), want none", out, err)
	}
	commit, err := exec.Command("git", "rev-parse", "HEAD").Output()
	must(t, err)
	out, err := exec.Command(bin, "version").CombinedOutput()
	must(t, err)
	v := string(out)
	if !strings.Contains(v, "relais 1.0.0 ") || !strings.Contains(v, strings.TrimSpace(string(commit))) || !regexpDate.MatchString(v) {
		t.Fatalf("relais version: %q", v)
	}
}

// requiredDirectives are the unit's hardening and behaviour, each checked
// to be set exactly so.
var requiredDirectives = []struct{ key, value string }{
	{"Type", "notify"},
	{"User", "relais"},
	{"ExecStart", "/usr/bin/relais serve --config /etc/relais/relais.conf --data /var/lib/relais"},
	{"Restart", "on-failure"},
	{"StateDirectory", "relais"},
	{"ConfigurationDirectory", "relais"},
	{"ProtectSystem", "strict"},
	{"ProtectHome", "yes"},
	{"PrivateTmp", "yes"},
	{"NoNewPrivileges", "yes"},
	{"CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"},
	{"AmbientCapabilities", "CAP_NET_BIND_SERVICE"},
	{"SystemCallFilter", "@system-service"},
	{"WantedBy", "multi-user.target"},
}

// unitDirectives parses a unit file into key → values.
func unitDirectives(unit string) map[string][]string {
	d := map[string][]string{}
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		d[k] = append(d[k], v)
	}
	return d
}

// TestPackagingUnitIsHardened checks each required directive of the
// packaged unit, and that a unit missing any of them fails the check.
func TestPackagingUnitIsHardened(t *testing.T) {
	unit, err := packagedFile("relais.service")
	must(t, err)
	check := func(unit string) []string {
		d := unitDirectives(unit)
		var bad []string
		for _, r := range requiredDirectives {
			if !slices.Equal(d[r.key], []string{r.value}) {
				bad = append(bad, fmt.Sprintf("%s=%v, want %s", r.key, d[r.key], r.value))
			}
		}
		return bad
	}
	if bad := check(string(unit)); len(bad) > 0 {
		t.Fatalf("relais.service:\n  %s", strings.Join(bad, "\n  "))
	}
	for _, r := range requiredDirectives {
		weakened := strings.Replace(string(unit), "\n"+r.key+"="+r.value+"\n", "\n", 1)
		if len(check(weakened)) == 0 {
			t.Errorf("a unit without %s=%s passes the check", r.key, r.value)
		}
	}
}

// verifyUnit runs systemd-analyze verify on the unit installed in root,
// with the root's own binaries: it must exit 0 and say nothing.
func verifyUnit(t *testing.T, root, unit string) {
	t.Helper()
	out, err := exec.Command("systemd-analyze", "verify", "--root="+root, "--recursive-errors=no", "--man=no", unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
}

// TestPackagingSystemdAnalyzeCatchesABrokenUnit: the verification used
// on the installed unit does fail on a broken one.
func TestPackagingSystemdAnalyzeCatchesABrokenUnit(t *testing.T) {
	root := newRoot(t)
	unit, err := packagedFile("relais.service")
	must(t, err)
	dir := filepath.Join(root, "usr/lib/systemd/system")
	must(t, os.MkdirAll(dir, 0o755))
	broken := strings.Replace(string(unit), "ProtectSystem=strict", "ProtectSystem=sometimes", 1)
	must(t, os.WriteFile(filepath.Join(dir, "broken.service"), []byte(broken), 0o644))
	copyFile(t, filepath.Join(build(t, "1.0.0"), "relais-linux-"+arch), filepath.Join(root, "usr/bin/relais"))
	out, err := exec.Command("systemd-analyze", "verify", "--root="+root, "--recursive-errors=no", "--man=no", "broken.service").CombinedOutput()
	if err == nil && len(bytes.TrimSpace(out)) == 0 {
		t.Fatal("systemd-analyze verify says nothing about ProtectSystem=sometimes")
	}
	if !strings.Contains(string(out), "sometimes") {
		t.Fatalf("systemd-analyze verify on the broken unit: %v\n%s", err, out)
	}
}

// want is a file the package must leave with this type, mode and owner.
type want struct {
	path        string
	mode        os.FileMode // type bits included
	user, group string      // "root" or "relais"
	link        string      // symlink target
}

// installed lists what an installation leaves.
var installed = []want{
	{path: "usr/bin/relais", mode: 0o755, user: "root", group: "root"},
	{path: "usr/lib/systemd/system/relais.service", mode: 0o644, user: "root", group: "root"},
	{path: "etc/relais", mode: os.ModeDir | 0o750, user: "root", group: "relais"},
	{path: "etc/relais/relais.conf", mode: 0o640, user: "root", group: "relais"},
	{path: "var/lib/relais", mode: os.ModeDir | 0o700, user: "relais", group: "relais"},
	{path: "etc/systemd/system/multi-user.target.wants/relais.service", mode: os.ModeSymlink | 0o777, user: "root", group: "root",
		link: "/usr/lib/systemd/system/relais.service"},
}

// checkInstalled checks files, modes, ownership and the relais account.
func checkInstalled(t *testing.T, root string) {
	t.Helper()
	u, ok := lookup(t, root, "passwd", "relais")
	if !ok {
		t.Fatal("no relais user in the root's /etc/passwd")
	}
	g, ok := lookup(t, root, "group", "relais")
	if !ok || g.uid != u.gid {
		t.Fatalf("relais group %+v, user's group %s", g, u.gid)
	}
	if uid, _ := strconv.Atoi(u.uid); uid == 0 || uid >= 1000 {
		t.Errorf("relais uid %s is not a system uid", u.uid)
	}
	if u.home != "/var/lib/relais" || !strings.HasSuffix(u.shell, "/nologin") {
		t.Errorf("relais user %+v: want home /var/lib/relais and no login shell", u)
	}
	ids := map[string]string{"root": "0", "relais": u.uid}
	gids := map[string]string{"root": "0", "relais": u.gid}
	for _, w := range installed {
		fi, err := os.Lstat(filepath.Join(root, w.path))
		if err != nil {
			t.Errorf("%s: %v", w.path, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != w.mode || strconv.Itoa(int(st.Uid)) != ids[w.user] || strconv.Itoa(int(st.Gid)) != gids[w.group] {
			t.Errorf("%s: %v %d:%d, want %v %s:%s", w.path, fi.Mode(), st.Uid, st.Gid, w.mode, w.user, w.group)
		}
		if w.link != "" {
			if l, _ := os.Readlink(filepath.Join(root, w.path)); l != w.link {
				t.Errorf("%s → %s, want %s", w.path, l, w.link)
			}
		}
	}
	unit, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/relais.service"))
	must(t, err)
	packaged, _ := packagedFile("relais.service")
	if !bytes.Equal(unit, packaged) {
		t.Error("the installed unit is not the packaged one")
	}
	verifyUnit(t, root, "relais.service")
}

var regexpDate = regexp.MustCompile(`built 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

// checkVersion runs the installed relais version.
func checkVersion(t *testing.T, root, version string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(root, "usr/bin/relais"), "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "relais "+version+" (commit ") || !regexpDate.Match(out) {
		t.Fatalf("installed relais version: %v %q, want %s", err, out, version)
	}
}

// serveOnce runs the installed relais as the unit does, with the
// installed configuration, until it tells $NOTIFY_SOCKET it is ready;
// then stops it with SIGTERM and waits for STOPPING=1 and a clean exit.
// The node writes its store into the root's /var/lib/relais.
func serveOnce(t *testing.T, root string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "pkgn")
	must(t, err)
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	must(t, err)
	defer conn.Close()
	cmd := exec.Command(filepath.Join(root, "usr/bin/relais"), "serve",
		"--config", filepath.Join(root, "etc/relais/relais.conf"), "--data", filepath.Join(root, "var/lib/relais"),
		"--listen", "127.0.0.1:0", "--tls", "off")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	must(t, cmd.Start())
	defer cmd.Process.Kill()
	next := func() string {
		conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		b := make([]byte, 512)
		n, err := conn.Read(b)
		if err != nil {
			t.Fatalf("no notification from relais serve: %v\n%s", err, logs.String())
		}
		return string(b[:n])
	}
	if got := next(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	if got := next(); got != "STOPPING=1" {
		t.Fatalf("notification after SIGTERM %q, want STOPPING=1", got)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("relais serve did not stop cleanly: %v\n%s", err, logs.String())
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return sha256.Sum256(b)
}

func gone(t *testing.T, root string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there (%v)", p, err)
		}
	}
}

func present(t *testing.T, root string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// localChange is what an administrator adds to the configuration; it
// must survive upgrades.
const localChange = "RELAIS_NAME=Mairie de Test\n"

func appendConf(t *testing.T, root string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(root, "etc/relais/relais.conf"), os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteString(localChange)
	must(t, err)
	must(t, f.Close())
}

func confKept(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasSuffix(string(b), localChange) {
		t.Errorf("%s lost the administrator's change (%v)", path, err)
	}
}

// run runs a package manager and returns its output.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// setupHint is what the first installation must tell about the setup link.
var setupHint = []string{"journalctl -u relais", "relais admin --data /var/lib/relais setup-link", "/etc/relais/relais.conf"}

// manager drives one package manager over a root.
type manager struct {
	install, upgrade func(pkg string) string
	remove           func()
	conffiles        func() string // the package's configuration files, as the manager lists them
	confAfterRemove  string        // where the changed configuration is after removal
}

// lifecycle installs v1, checks it and runs it, upgrades to v2 and checks
// that data, configuration and user are kept, removes the package and
// checks that only its files went; it returns the store's path.
func lifecycle(t *testing.T, root string, m manager, v1, v2 string) string {
	t.Helper()
	out := m.install(v1)
	for _, h := range setupHint {
		if !strings.Contains(out, h) {
			t.Errorf("the first installation does not tell %q:\n%s", h, out)
		}
	}
	checkInstalled(t, root)
	checkVersion(t, root, "1.0.0")
	if cfg := m.conffiles(); !strings.Contains(cfg, "/etc/relais/relais.conf") {
		t.Errorf("relais.conf is not a configuration file of the package: %q", cfg)
	}
	serveOnce(t, root)
	db := filepath.Join(root, "var/lib/relais/relais.db")
	data := fileHash(t, db)
	appendConf(t, root)
	uid, _ := lookup(t, root, "passwd", "relais")

	out = m.upgrade(v2)
	if strings.Contains(out, "setup-link") {
		t.Errorf("an upgrade repeats the first installation's message:\n%s", out)
	}
	checkInstalled(t, root)
	checkVersion(t, root, "1.0.1")
	if fileHash(t, db) != data {
		t.Error("the upgrade changed the store")
	}
	confKept(t, filepath.Join(root, "etc/relais/relais.conf"))
	if again, _ := lookup(t, root, "passwd", "relais"); again != uid {
		t.Errorf("the upgrade changed the relais user: %+v, then %+v", uid, again)
	}

	m.remove()
	gone(t, root, "usr/bin/relais", "usr/lib/systemd/system/relais.service")
	if fileHash(t, db) != data {
		t.Error("removal changed the store")
	}
	confKept(t, filepath.Join(root, m.confAfterRemove))
	if _, ok := lookup(t, root, "passwd", "relais"); !ok {
		t.Error("removal deleted the relais user, whose files remain")
	}
	return db
}

// TestPackagingDebInstallUpgradeRemovePurge installs the .deb into a clean
// root with dpkg --root, checks it, runs it, upgrades it to another
// version, removes it (data and configuration kept) and purges it (all
// gone, the user too).
func TestPackagingDebInstallUpgradeRemovePurge(t *testing.T) {
	start := time.Now()
	v1, v2 := artifact(t, build(t, "1.0.0"), ".deb"), artifact(t, build(t, "1.0.1"), ".deb")
	root := newRoot(t)
	for _, d := range []string{"var/lib/dpkg/updates", "var/lib/dpkg/info"} {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644))
	admindir := "--admindir=" + filepath.Join(root, "var/lib/dpkg")
	// --force-script-chrootless: the maintainer scripts run on the host
	// with DPKG_ROOT set, as the root has no dpkg of its own to chroot to;
	// --force-unsafe-io: no fsync of a throwaway root; --force-confdef
	// --force-confold: an upgrade keeps a changed conffile without asking,
	// as an unattended upgrade does.
	dpkg := func(args ...string) string {
		return run(t, "dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--force-unsafe-io",
			"--force-confdef", "--force-confold"}, args...)...)
	}
	lifecycle(t, root, manager{
		install:         func(p string) string { return dpkg("--install", p) },
		upgrade:         func(p string) string { return dpkg("--install", p) },
		remove:          func() { dpkg("--remove", "relais") },
		conffiles:       func() string { return run(t, "dpkg-query", admindir, "-W", "-f=${Conffiles}", "relais") },
		confAfterRemove: "etc/relais/relais.conf",
	}, v1, v2)
	// As with Debian's own services, removal keeps whether the service is
	// enabled: installing again after a removal serves again.
	present(t, root, "etc/systemd/system/multi-user.target.wants/relais.service")
	dpkg("--install", v2)
	checkInstalled(t, root)
	dpkg("--remove", "relais")

	dpkg("--purge", "relais")
	gone(t, root, "var/lib/relais", "etc/relais", "etc/systemd/system/multi-user.target.wants/relais.service")
	if _, ok := lookup(t, root, "passwd", "relais"); ok {
		t.Error("purge left the relais user")
	}
	if _, ok := lookup(t, root, "group", "relais"); ok {
		t.Error("purge left the relais group")
	}
	if out, err := exec.Command("dpkg-query", admindir, "-W", "relais").CombinedOutput(); err == nil {
		t.Errorf("dpkg still knows relais after purge: %s", out)
	}
	t.Logf("deb install, upgrade, remove, purge: %s", time.Since(start).Round(time.Millisecond))
}

// TestPackagingRpmInstallUpgradeErase does the same with the .rpm and
// rpm --root --dbpath: rpm runs the scriptlets chrooted into the root,
// which holds the base tools. rpm has no purge: erasing keeps the data,
// the changed configuration (as relais.conf.rpmsave) and the user.
func TestPackagingRpmInstallUpgradeErase(t *testing.T) {
	start := time.Now()
	v1, v2 := artifact(t, build(t, "1.0.0"), ".rpm"), artifact(t, build(t, "1.0.1"), ".rpm")
	root := newRoot(t)
	// --nodeps: the root's empty rpm database knows no package providing
	// /bin/sh, which the scriptlets require and the root does have.
	rpm := func(args ...string) string {
		return run(t, "rpm", append([]string{"--root", root, "--dbpath", "/var/lib/rpm"}, args...)...)
	}
	rpm("--initdb")
	lifecycle(t, root, manager{
		install: func(p string) string { return rpm("--install", "--nodeps", p) },
		upgrade: func(p string) string {
			out := rpm("--upgrade", "--nodeps", p)
			if q := rpm("--query", "relais"); !strings.HasPrefix(q, "relais-1.0.1-1.") {
				t.Errorf("rpm -q after the upgrade: %q", q)
			}
			return out
		},
		remove:          func() { rpm("--erase", "--nodeps", "relais") },
		conffiles:       func() string { return rpm("--query", "--configfiles", "relais") },
		confAfterRemove: "etc/relais/relais.conf.rpmsave",
	}, v1, v2)
	// rpm's convention: erasing disables; installing again enables.
	gone(t, root, "etc/systemd/system/multi-user.target.wants/relais.service")
	present(t, root, "var/lib/rpm")
	t.Logf("rpm install, upgrade, erase: %s", time.Since(start).Round(time.Millisecond))
}

// TestPackagingDefaultConfigExamplesAreSettings uncomments every example
// of the packaged relais.conf and loads it as relais serve does: a
// misspelt or removed setting in the examples fails here.
func TestPackagingDefaultConfigExamplesAreSettings(t *testing.T) {
	conf, err := packagedFile("relais.conf")
	must(t, err)
	var lines []string
	for _, l := range strings.Split(string(conf), "\n") {
		if ex, ok := strings.CutPrefix(l, "#RELAIS_"); ok {
			lines = append(lines, "RELAIS_"+ex)
		}
	}
	if len(lines) < 10 {
		t.Fatalf("only %d examples in relais.conf", len(lines))
	}
	file := filepath.Join(t.TempDir(), "relais.conf")
	must(t, os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	cfg := config.Defaults()
	if err := config.Load(cfg.Flags("relais serve"), []string{"--config", file}, nil); err != nil {
		t.Fatalf("the examples of relais.conf do not load: %v", err)
	}
	if cfg.SMTPHost != "smtp.mairie.example" || cfg.Listen != ":443" {
		t.Fatalf("the examples loaded as %+v", cfg)
	}
}

// TestPackagingScriptsDriveSystemdWhenItRuns: where systemd runs
// (/run/systemd/system exists), installing starts the service, upgrading
// restarts it and removing stops it, with the .deb and the .rpm. systemd
// cannot be PID 1 on the test machines, so the root's systemctl is a
// stand-in that records its arguments; the scripts are the packaged ones,
// run chrooted into the root by dpkg (without --force-script-chrootless,
// so DPKG_ROOT is empty as on a real system) and by rpm.
func TestPackagingScriptsDriveSystemdWhenItRuns(t *testing.T) {
	for _, format := range []string{"deb", "rpm"} {
		t.Run(format, func(t *testing.T) {
			v1, v2 := artifact(t, build(t, "1.0.0"), "."+format), artifact(t, build(t, "1.0.1"), "."+format)
			root := newRoot(t)
			must(t, os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755))
			must(t, os.WriteFile(filepath.Join(root, "usr/bin/systemctl"), []byte("#!/bin/sh\necho \"$*\" >>/var/log/systemctl.calls\n"), 0o755))
			var install, upgrade func(string) string
			var remove func() string
			switch format {
			case "deb":
				for _, d := range []string{"var/lib/dpkg/updates", "var/lib/dpkg/info"} {
					must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
				}
				must(t, os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644))
				dpkg := func(args ...string) string {
					return run(t, "dpkg", append([]string{"--root=" + root, "--force-unsafe-io"}, args...)...)
				}
				install = func(p string) string { return dpkg("--install", p) }
				upgrade = install
				remove = func() string { return dpkg("--remove", "relais") }
			case "rpm":
				rpm := func(args ...string) string {
					return run(t, "rpm", append([]string{"--root", root, "--dbpath", "/var/lib/rpm"}, args...)...)
				}
				rpm("--initdb")
				install = func(p string) string { return rpm("--install", "--nodeps", p) }
				upgrade = func(p string) string { return rpm("--upgrade", "--nodeps", p) }
				remove = func() string { return rpm("--erase", "--nodeps", "relais") }
			}
			calls := func() []string {
				b, err := os.ReadFile(filepath.Join(root, "var/log/systemctl.calls"))
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				must(t, err)
				must(t, os.Remove(filepath.Join(root, "var/log/systemctl.calls")))
				return strings.Split(strings.TrimSpace(string(b)), "\n")
			}
			steps := []struct {
				name string
				do   func() string
				want []string
			}{
				{"install", func() string { return install(v1) }, []string{"daemon-reload", "start relais.service"}},
				{"upgrade", func() string { return upgrade(v2) }, []string{"daemon-reload", "try-restart relais.service"}},
				{"remove", remove, []string{"stop relais.service", "daemon-reload"}},
			}
			for _, s := range steps {
				out := s.do()
				if strings.Contains(out, "systemd is not running") || strings.Contains(out, "Warning") {
					t.Errorf("%s says:\n%s", s.name, out)
				}
				if got := calls(); !slices.Equal(got, s.want) {
					t.Errorf("%s: systemctl was called with %q, want %q", s.name, got, s.want)
				}
			}
		})
	}
}
