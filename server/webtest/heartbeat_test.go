package webtest

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp/kb"
)

// freezer is a TCP proxy in front of a node that can be frozen: it then
// stops forwarding bytes both ways without closing anything, as a network
// that drops packets silently does (a NAT forgetting the flow, a dead
// Wi-Fi). The browser sees a socket that stays open and goes quiet.
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool
	conns  []net.Conn
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target}
	f.cond = sync.NewCond(&f.mu)
	go f.serve()
	t.Cleanup(func() {
		ln.Close()
		f.freeze(false)
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
	})
	return f
}

// URL is the address the browser uses instead of the node's. The proxy
// passes the Host header through, so the origin checks see the proxy's
// own origin on both sides.
func (f *freezer) URL() string { return "http://" + f.ln.Addr().String() }

func (f *freezer) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, c, up)
		f.mu.Unlock()
		go f.pipe(up, c)
		go f.pipe(c, up)
	}
}

// pipe forwards src to dst, holding what it read while frozen.
func (f *freezer) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		f.mu.Lock()
		for f.frozen {
			f.cond.Wait()
		}
		f.mu.Unlock()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				src.Close()
			}
			return
		}
	}
}

func (f *freezer) freeze(on bool) {
	f.mu.Lock()
	f.frozen = on
	f.mu.Unlock()
	f.cond.Broadcast()
}

// TestDeadConnectionNoticed: the network goes silent under an open
// websocket. The client's heartbeat notices within its window, shows the
// offline banner, and a message sent meanwhile says it waits for the
// connection; when the network is back the message is delivered exactly
// once (it was also written on the dead socket, and is re-sent with the
// same id) and the banner goes. The browser's offline event shows the
// banner at once, its online event reconnects at once.
func TestDeadConnectionNoticed(t *testing.T) {
	n := startNode(t)
	n.NewUserEmail("alice.martin@agents.gouv.fr", "Alice Martin")
	bobc := n.NewUserEmail("bob.durand@agents.gouv.fr", "Bob Durand")
	p := newFreezer(t, n.Addr())

	alice := newBrowser(t, "alice", "fr-FR", 1280, 800)
	bob := newBrowser(t, "bob", "fr-FR", 1280, 800)
	bob.e2eLogin(n, "bob.durand@agents.gouv.fr")
	// The heartbeat is shortened so that the test runs in seconds; the
	// defaults are 15 s of silence, then 10 s for the answer.
	alice.nav(p.URL() + "/login")
	js[bool](alice, `(localStorage.setItem('relais.heartbeat', JSON.stringify({idle: 1500, timeout: 1500})), true)`)
	alice.e2eLoginAt(p.URL(), "alice.martin@agents.gouv.fr")

	alice.openDMWith("bob", bobc.Me.ID)
	alice.say("Avant la coupure")
	bob.click(`.room-item[aria-label*="Alice Martin"]`)
	bob.hasText(".msg:not(.mine) .md", "Avant la coupure")

	// The network goes silent; the message is written on the dead socket.
	alice.allowNet.Store(true)
	p.freeze(true)
	alice.typ(".composer textarea", "Pendant la coupure"+kb.Enter)
	alice.visible(".conn")
	alice.hasText(".conn", "Hors ligne")
	alice.until("pending says it waits for the connection",
		`!!document.querySelector('.pending-msg[data-state="pending"] [aria-label="En attente de la connexion"]')`)
	alice.shot("dead-connection-noticed")

	p.freeze(false)
	alice.until("delivered", `!document.querySelector('.pending-msg') && [...document.querySelectorAll('.msg.mine .md')].some(e => e.textContent.includes('Pendant la coupure'))`)
	alice.until("online", `!document.querySelector('.conn')`)
	bob.hasText(".msg:not(.mine) .md", "Pendant la coupure")
	count := `[...document.querySelectorAll('.msg .md')].filter(e => e.textContent.includes('Pendant la coupure')).length`
	if c := js[int](bob, count); c != 1 {
		t.Fatalf("bob sees the message %d times, want once", c)
	}
	bob.run("reload", reload())
	bob.hasText(".msg:not(.mine) .md", "Pendant la coupure")
	if c := js[int](bob, count); c != 1 {
		t.Fatalf("after a reload bob sees the message %d times, want once", c)
	}

	// The browser says it is offline: the banner shows at once, long
	// before the heartbeat would notice, and stays while the browser is
	// offline; online reconnects at once, not after the backoff.
	js[bool](alice, `(dispatchEvent(new Event('offline')), true)`)
	alice.visible(".conn")
	time.Sleep(2 * time.Second) // longer than the first steps of the backoff
	if !js[bool](alice, `!!document.querySelector('.conn')`) {
		t.Fatal("the client reconnected while the browser said it was offline")
	}
	js[bool](alice, `(dispatchEvent(new Event('online')), true)`)
	// Well before the slowest backoff step (15 s, what is left while offline).
	alice.waitLong("online after the online event", `!document.querySelector('.conn')`, 8*time.Second)
	alice.typ(".composer textarea", "Après le retour"+kb.Enter)
	bob.hasText(".msg:not(.mine) .md", "Après le retour")
	if s := js[string](alice, `document.body.innerText`); strings.Contains(s, "Hors ligne") {
		t.Fatalf("the banner is still there: %q", s)
	}
	alice.allowNet.Store(false)
}
