package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// baseTools are what the maintainer scripts and the unit call, which any
// Debian or RHEL system has: the clean roots get the host's copies (with
// their libraries), as rpm runs scriptlets chrooted into the root and
// systemd-analyze checks the unit's commands inside it.
var baseTools = []string{"sh", "kill", "getent", "useradd", "userdel", "groupdel", "chown", "chmod", "mkdir", "ln", "rm", "rmdir", "cat", "nologin"}

// newRoot makes an empty system root: merged /usr, an account database
// with root alone, /dev/null, and baseTools.
func newRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc", "dev", "tmp", "var/lib", "var/tmp", "var/log", "run"} {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		must(t, os.Symlink("usr/"+l, filepath.Join(root, l)))
	}
	for name, data := range map[string]string{
		"etc/passwd":  "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":   "root:x:0:\n",
		"etc/shadow":  "root:*:19000:0:99999:7:::\n",
		"etc/gshadow": "root:*::\n",
	} {
		must(t, os.WriteFile(filepath.Join(root, name), []byte(data), 0o644))
	}
	must(t, os.Chmod(filepath.Join(root, "etc/shadow"), 0o640))
	must(t, os.Chmod(filepath.Join(root, "etc/gshadow"), 0o640))
	// The scripts redirect to /dev/null: a regular file there would work
	// by accident, the device is what a system has.
	if out, err := exec.Command("mknod", "-m", "0666", filepath.Join(root, "dev/null"), "c", "1", "3").CombinedOutput(); err != nil {
		t.Fatalf("mknod /dev/null in the root (the test runs as root, as dpkg --root does): %v\n%s", err, out)
	}
	for _, tool := range baseTools {
		copyTool(t, root, tool)
	}
	return root
}

// lddPath finds the libraries in ldd's output: "libc.so.6 => /lib/… (0x…)"
// and the loader's "/lib64/ld-linux-x86-64.so.2 (0x…)".
var lddPath = regexp.MustCompile(`(?m)(?:=>\s+|^\s+)(/\S+)\s+\(0x`)

// copyTool copies the host's command name and its shared libraries into
// root at the same paths.
func copyTool(t *testing.T, root, name string) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (scripts/setup-test-tools installs what this test needs): %v", name, err)
	}
	copyFile(t, path, filepath.Join(root, path))
	out, err := exec.Command("ldd", path).Output()
	if err != nil {
		return // a static binary
	}
	for _, m := range lddPath.FindAllStringSubmatch(string(out), -1) {
		copyFile(t, m[1], filepath.Join(root, m[1]))
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if _, err := os.Stat(to); err == nil {
		return
	}
	src, err := os.Open(from) // follows symlinks: the root gets the content
	must(t, err)
	defer src.Close()
	fi, err := src.Stat()
	must(t, err)
	must(t, os.MkdirAll(filepath.Dir(to), 0o755))
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, fi.Mode().Perm())
	must(t, err)
	_, err = io.Copy(dst, src)
	must(t, err)
	must(t, dst.Close())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// account is a line of the root's /etc/passwd or /etc/group.
type account struct {
	name, uid, gid, home, shell string
}

// lookup finds name in the root's passwd or group file.
func lookup(t *testing.T, root, file, name string) (account, bool) {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "etc", file))
	must(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), ":")
		if p[0] != name {
			continue
		}
		a := account{name: p[0], uid: p[2]}
		if file == "passwd" && len(p) == 7 {
			a.gid, a.home, a.shell = p[3], p[5], p[6]
		}
		return a, true
	}
	return account{}, false
}
