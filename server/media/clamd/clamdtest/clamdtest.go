// Package clamdtest starts a real clamd for tests, with a signature database
// the test writes: it detects the EICAR test file (exact file, by MD5) and
// the EICAR string anywhere in a larger file (body signature). It needs no
// internet and no official database.
//
// A missing clamd binary fails the test with the command that installs it
// (scripts/setup-test-tools); it is never a skip.
package clamdtest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"relais/server/media/clamd"
)

// EICAR returns the 68-byte EICAR anti-virus test file. It is assembled at
// run time so that this source file itself is not flagged by scanners.
func EICAR() []byte {
	return []byte(`X5O!P%@AP[4\PZX54(P^)7CC)7}$` + "EICAR-STANDARD-" + "ANTIVIRUS-TEST-FILE!$H+H*")
}

// Signature names written to the test database. clamd appends
// ".UNOFFICIAL" to them in its replies.
const (
	SigEICARFile = "Relais.Test.EICAR"
	SigEICARBody = "Relais.Test.EICAR.Body"
)

// startTimeout bounds how long clamd may take to answer zPING after start.
const startTimeout = 30 * time.Second

// Options configures Start.
type Options struct {
	// TCP also listens on a free loopback TCP port.
	TCP bool
	// StreamMaxLength is clamd's INSTREAM limit in bytes; zero means 25 MiB.
	StreamMaxLength int64
}

// Server is a running (or stopped) clamd owned by one test.
type Server struct {
	// Dir holds the configuration, database, log and socket.
	Dir string
	// Socket is the unix socket path.
	Socket string
	// TCPAddr is the loopback host:port when Options.TCP was set.
	TCPAddr string

	t    testing.TB
	bin  string
	conf string
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
}

// Binary returns the clamd executable's path, or an error telling how to
// install it.
func Binary() (string, error) {
	if _, err := os.Stat("/usr/sbin/clamd"); err == nil {
		return "/usr/sbin/clamd", nil
	}
	if p, err := exec.LookPath("clamd"); err == nil {
		return p, nil
	}
	return "", errors.New("clamd not found (neither /usr/sbin/clamd nor in PATH): run scripts/setup-test-tools")
}

// Start writes a database and a configuration into a fresh directory,
// starts clamd in the foreground and waits until it answers zPING on every
// configured socket. It is stopped by t.Cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// A unix socket path must fit in sun_path (108 bytes on Linux).
	if len(filepath.Join(dir, "clamd.sock")) > 100 {
		dir, err = os.MkdirTemp("", "clamd")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	s := &Server{
		Dir:    dir,
		Socket: filepath.Join(dir, "clamd.sock"),
		t:      t,
		bin:    bin,
		conf:   filepath.Join(dir, "clamd.conf"),
		log:    filepath.Join(dir, "clamd.log"),
	}
	if err := writeDatabase(filepath.Join(dir, "db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)

	const attempts = 5
	for i := 1; ; i++ {
		if opts.TCP {
			s.TCPAddr, err = freePort()
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := s.writeConfig(opts); err != nil {
			t.Fatal(err)
		}
		err := s.start()
		if err == nil {
			return s
		}
		s.Stop()
		if !errors.Is(err, errPortTaken) || i == attempts {
			t.Fatalf("start clamd: %v\n%s", err, s.Log())
		}
		t.Logf("clamd: port %s taken, retrying with another", s.TCPAddr)
	}
}

var errPortTaken = errors.New("TCP port already in use")

func writeDatabase(db string) error {
	if err := os.MkdirAll(db, 0o700); err != nil {
		return err
	}
	e := EICAR()
	sum := md5.Sum(e)
	hdb := fmt.Sprintf("%s:%d:%s\n", hex.EncodeToString(sum[:]), len(e), SigEICARFile)
	ndb := fmt.Sprintf("%s:0:*:%s\n", SigEICARBody, hex.EncodeToString(e))
	if err := os.WriteFile(filepath.Join(db, "relais-test.hdb"), []byte(hdb), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(db, "relais-test.ndb"), []byte(ndb), 0o600)
}

// freePort returns a loopback address whose port was free a moment ago.
// clamd cannot be handed a listener, so a collision is possible: Start
// notices it in clamd's log and retries.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

func (s *Server) writeConfig(opts Options) error {
	limit := opts.StreamMaxLength
	if limit <= 0 {
		limit = 25 << 20
	}
	var b strings.Builder
	fmt.Fprintf(&b, "DatabaseDirectory %s\n", filepath.Join(s.Dir, "db"))
	fmt.Fprintf(&b, "TemporaryDirectory %s\n", s.Dir)
	fmt.Fprintf(&b, "LocalSocket %s\n", s.Socket)
	fmt.Fprintf(&b, "LocalSocketMode 600\n")
	if s.TCPAddr != "" {
		host, port, _ := net.SplitHostPort(s.TCPAddr)
		fmt.Fprintf(&b, "TCPSocket %s\nTCPAddr %s\n", port, host)
	}
	fmt.Fprintf(&b, "LogFile %s\n", s.log)
	fmt.Fprintf(&b, "Foreground yes\n")
	fmt.Fprintf(&b, "SelfCheck 0\n")
	fmt.Fprintf(&b, "Bytecode no\n")
	fmt.Fprintf(&b, "MaxThreads 4\n")
	fmt.Fprintf(&b, "StreamMaxLength %d\n", limit)
	// Let the limit be the stream limit, not the per-file scan limits.
	fmt.Fprintf(&b, "MaxFileSize %d\nMaxScanSize %d\n", limit, 4*limit)
	return os.WriteFile(s.conf, []byte(b.String()), 0o600)
}

// Restart starts clamd again after Stop, with the same sockets.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.Stop()
		s.t.Fatalf("restart clamd: %v\n%s", err, s.Log())
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return errors.New("clamd already running")
	}
	os.Remove(s.log)
	cmd := exec.Command(s.bin, "--config-file="+s.conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	unix := &clamd.Client{Network: "unix", Address: s.Socket, Timeout: time.Second}
	var last error
	for {
		select {
		case <-done:
			return fmt.Errorf("clamd exited during start: %s\n%s", cmd.ProcessState, out.String())
		default:
		}
		if last = unix.Ping(ctx); last == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("clamd not answering zPING after %v: %v", startTimeout, last)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if s.TCPAddr == "" {
		return nil
	}
	// clamd binds TCP before the unix socket and, when the port is taken,
	// logs it and carries on without TCP, so another process may be
	// answering on that port: trust only our own log.
	log := s.Log()
	host, port, _ := net.SplitHostPort(s.TCPAddr)
	switch {
	case strings.Contains(log, "TCP: Bound to ["+host+"]:"+port):
	case strings.Contains(log, "Cannot bind"):
		return errPortTaken
	default:
		return errors.New("clamd did not report binding its TCP socket")
	}
	tcp := &clamd.Client{Network: "tcp", Address: s.TCPAddr, Timeout: time.Second}
	if err := tcp.Ping(ctx); err != nil {
		return fmt.Errorf("ping over TCP: %w", err)
	}
	return nil
}

// Stop stops clamd and waits for it to exit. It is safe to call more than
// once and after a failed start.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Log returns clamd's log so far, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// UnixURL returns the unix socket in the form clamd.Parse accepts.
func (s *Server) UnixURL() string { return "unix://" + s.Socket }

// TCPURL returns the TCP address in the form clamd.Parse accepts, or "" if
// the server was started without TCP.
func (s *Server) TCPURL() string {
	if s.TCPAddr == "" {
		return ""
	}
	return "tcp://" + s.TCPAddr
}

// Client returns a client on the unix socket with a short timeout.
func (s *Server) Client() *clamd.Client {
	return &clamd.Client{Network: "unix", Address: s.Socket, Timeout: 10 * time.Second}
}
