package webtest

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"relais/cluster/nodetest"
)

// Browser tests of calls: two (or three) Chromium instances with a fake
// microphone and camera, a real node with its embedded TURN relay.

// callTimeout bounds the steps of a call under the load of a shared
// machine (ICE, DTLS and the first packets take about a second).
const callTimeout = 60 * time.Second

// callPhase waits until the browser's call screen is in phase.
func (b *browser) callPhase(phase string) {
	b.t.Helper()
	b.waitLong("call "+phase, fmt.Sprintf(`document.querySelector('.call')?.dataset.callPhase === %q`, phase), callTimeout)
}

// audioFlows waits until inbound audio RTP (bytes and packets, from
// getStats) grows by a second's worth.
func (b *browser) audioFlows() {
	b.t.Helper()
	b.run("first stats", chromedp.Evaluate[chromedp.Void](`relaisCalls.stats().then(s => { window.__s0 = s })`, chromedp.EvalAwaitPromise))
	b.waitLong("inbound audio growing", `relaisCalls.stats().then(s => { window.__s1 = s; return s.inBytes > window.__s0.inBytes + 2000 && s.inPackets > window.__s0.inPackets + 40 })`, callTimeout)
}

// startCall has caller call callee (a DM they share) and callee answer;
// both wait until media flows.
func startCall(caller, callee *browser, kind string) {
	caller.click(`[data-call-start="` + kind + `"]`)
	callee.callPhase("incoming")
	callee.hasText(".call-status", map[string]string{"audio": "Appel audio entrant", "video": "Appel vidéo entrant"}[kind])
	callee.click(`[data-call-action="accept"]`)
	caller.callPhase("active")
	callee.callPhase("active")
	caller.audioFlows()
	callee.audioFlows()
}

// TestCallAudioBothWaysMuteAndHangUp: a call in an encrypted DM connects,
// audio flows both ways, muting silences what the other side receives
// (packets keep coming, their audio energy stops growing), hanging up
// ends it on both sides and the call's entry shows in both timelines.
func TestCallAudioBothWaysMuteAndHangUp(t *testing.T) {
	n := startNode(t, nodetest.WithTURN)
	alice, bob, _, _ := encryptedDM(t, n, "On s’appelle ?")
	startCall(alice, bob, "audio")
	alice.visible(".call [data-call-encrypted]")
	alice.hasText(".call-safety", "Bob Durand")
	alice.shot("call-active")

	// Bob hears Alice: the energy of what he receives grows.
	energyGrows := `relaisCalls.stats().then(s => { const e0 = window.__e0 ?? (window.__e0 = s.energy); return s.energy > e0 + 1e-4 })`
	bob.waitLong("Alice's audio energy growing", energyGrows, callTimeout)
	alice.click(`[data-call-action="mute"]`)
	alice.until("muted", `document.querySelector('[data-call-action="mute"]').getAttribute('aria-pressed') === 'true'`)
	// Muted: Bob still receives packets, whose energy stays flat over 40
	// packets (about a second of audio).
	bob.waitLong("silence from Alice", `relaisCalls.stats().then(s => {
		const w = window.__w;
		if (!w || s.energy > w.energy + 1e-6) { window.__w = s; return false }
		return s.inPackets > w.inPackets + 40
	})`, callTimeout)

	bob.click(`[data-call-action="hangup"]`)
	bob.callPhase("ended")
	alice.callPhase("ended")
	alice.until("Alice's connection closed", `relaisCalls.stats().then(s => s.state === 'none')`)
	for _, b := range []*browser{alice, bob} {
		b.click(`[data-call-action="close"]`)
		b.waitLong("the call's entry", `!!document.querySelector('.call-line[data-call="ended"]')`, callTimeout)
	}
	bob.hasText(".call-line", "Appel · 0:")
}

// TestCallThroughTheNodesRelay: with iceTransportPolicy "relay" on both
// sides the call connects through the node's TURN relay only — the
// selected candidate pair is relay on both ends and the relay counts the
// media's bytes.
func TestCallThroughTheNodesRelay(t *testing.T) {
	n := startNode(t, nodetest.WithTURN)
	if n.TURN == nil {
		t.Fatal("the node runs no TURN relay (see its log)")
	}
	alice, bob, _, _ := encryptedDM(t, n, "Par le relais")
	for _, b := range []*browser{alice, bob} {
		b.run("relay only", chromedp.Evaluate[chromedp.Void](`relaisCalls.policy = 'relay'`))
	}
	before := n.TURN.Stats().RelayedBytes
	startCall(alice, bob, "audio")
	for _, b := range []*browser{alice, bob} {
		b.waitLong("a relay pair", `relaisCalls.stats().then(s => s.local === 'relay' && s.remote === 'relay')`, callTimeout)
	}
	nodetest.CheckFor(t, callTimeout, func() error {
		if st := n.TURN.Stats(); st.RelayedBytes < before+20_000 || st.Allocations < 2 {
			return fmt.Errorf("the relay carried %d bytes in %d allocations", st.RelayedBytes-before, st.Allocations)
		}
		return nil
	})
	alice.click(`[data-call-action="hangup"]`)
	bob.callPhase("ended")
}

// TestCallToBusyCallee: while Bob is on a call with Alice, Carol's call
// to him is answered busy: she is told, and her timeline says so.
func TestCallToBusyCallee(t *testing.T) {
	n := startNode(t, nodetest.WithTURN)
	alice, bob, bobID, _ := encryptedDM(t, n, "Premier appel")
	n.NewUserEmail("carole.petit@agents.gouv.fr", "Carole Petit")
	carol := newBrowser(t, "carol", "fr-FR", 1280, 800)
	carol.e2eLogin(n, "carole.petit@agents.gouv.fr")
	carol.openDMWith("bob", bobID)
	room := carol.currentRoom()
	carol.say("Tu es là ?")
	bob.click(`.room-item[data-room="` + room + `"]`)
	bob.reads("Tu es là ?")
	bob.click(`.room-item`) // back to any room: the call screen covers all
	startCall(alice, bob, "audio")
	carol.click(`[data-call-start="audio"]`)
	carol.waitLong("busy", `document.querySelector('.call')?.dataset.callReason === 'busy'`, callTimeout)
	carol.hasText(".call-status", "Bob Durand est déjà en communication")
	carol.click(`[data-call-action="close"]`)
	carol.waitLong("the busy entry", `!!document.querySelector('.call-line[data-call="busy"]')`, callTimeout)
	// Bob's call with Alice goes on.
	bob.audioFlows()
	alice.click(`[data-call-action="hangup"]`)
	bob.callPhase("ended")
}

// tamperCalls makes the page's websocket do to the call frames it
// receives what a malicious node can do to signalling it relays but
// cannot read (window.__tamper): "flip" a bit of the ciphertext, claim
// another "sender" device than the one that sent it, or "replay" the
// authentic ciphertext of a frame of an earlier call — to the frames of
// the user window.__from. Installed before the app loads; every frame as
// it came is kept in window.__seen.
func (b *browser) tamperCalls() {
	b.t.Helper()
	script := `(() => {
	  const W = window.WebSocket;
	  window.__seen = [];
	  const alter = (line) => {
	    if (!line.includes('"t":"call"')) return line;
	    const f = JSON.parse(line);
	    const mode = window.__tamper;
	    const old = window.__seen.find(o => o.dev === f.dev);
	    window.__seen.push({ ...f });
	    if (!mode || f.from !== window.__from) return line;
	    if (mode === 'flip') {
	      const raw = Uint8Array.from(atob(f.data), c => c.charCodeAt(0));
	      raw[raw.length - 20] ^= 0x01;
	      f.data = btoa(String.fromCharCode(...raw));
	    } else if (mode === 'sender') {
	      f.dev = 'd-aaaaaaaaaaaaaaaa';
	    } else if (mode === 'replay') {
	      if (!old) return line;
	      f.data = old.data;
	    }
	    window.__tampered = (window.__tampered ?? 0) + 1;
	    return JSON.stringify(f);
	  };
	  window.WebSocket = class extends W {
	    set onmessage(h) { super.onmessage = h && ((e) => h(new MessageEvent('message', { data: String(e.data).split('\n').map(alter).join('\n') }))); }
	    get onmessage() { return super.onmessage; }
	  };
	})()`
	b.run("tamper with call frames", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: script})
		return err
	}))
}

// TestCallAlteredSignallingFails: the node relays signalling it cannot
// read. Whatever it does to the callee's answer — flip a bit of its
// ciphertext, name another device as its sender, or replay the authentic
// answer of an earlier call — the MLS authentication (or the check of
// the sender against it) fails, the caller refuses the signal, stops the
// call and says why; the media never connects.
func TestCallAlteredSignallingFails(t *testing.T) {
	n := startNode(t, nodetest.WithTURN)
	alice, bob, bobID, room := encryptedDM(t, n, "Appel piégé")
	alice.tamperCalls()
	alice.nav(n.URL() + "/room/" + room)
	alice.waitLong("encryption ready again", `document.querySelector('.app')?.dataset.e2e === 'ok'`, callTimeout)
	// A first call, untouched: its frames are what a node could replay.
	startCall(alice, bob, "audio")
	alice.click(`[data-call-action="hangup"]`)
	bob.callPhase("ended")
	for _, b := range []*browser{alice, bob} {
		b.click(`[data-call-action="close"]`)
	}
	for _, mode := range []string{"flip", "sender", "replay"} {
		alice.run("arm "+mode, chromedp.Evaluate[chromedp.Void](`window.__tamper = '`+mode+`'; window.__tampered = 0; window.__from = '`+bobID+`'`))
		alice.click(`[data-call-start="audio"]`)
		bob.callPhase("incoming")
		bob.click(`[data-call-action="accept"]`)
		alice.waitLong(mode+": tampered", `document.querySelector('.call')?.dataset.callReason === 'tampered'`, callTimeout)
		alice.hasText(".call-status", "La signalisation de l’appel a été altérée")
		if js[float64](alice, `window.__tampered`) < 1 {
			t.Fatalf("%s: no call frame was altered", mode)
		}
		if js[string](alice, `relaisCalls.stats().then(s => s.state)`) != "none" {
			t.Fatalf("%s: Alice's connection is still open", mode)
		}
		alice.shot("call-tampered-" + mode)
		// Alice's hang-up reaches Bob: his side ends too.
		bob.callPhase("ended")
		for _, b := range []*browser{alice, bob} {
			b.click(`[data-call-action="close"]`)
		}
	}
}

// TestCallRewrittenFingerprintFails: the DTLS fingerprints carried inside
// the encryption authenticate the media path. Were the answer's
// fingerprint replaced (as by someone who could rewrite the signalling —
// done here inside Alice's page, after decryption, since the node cannot
// do it), the DTLS handshake with Bob's real certificate fails and the
// call stops with a message.
func TestCallRewrittenFingerprintFails(t *testing.T) {
	n := startNode(t, nodetest.WithTURN)
	alice, bob, _, _ := encryptedDM(t, n, "Empreinte")
	alice.run("rewrite fingerprints", chromedp.Evaluate[chromedp.Void](`(() => {
	  const set = RTCPeerConnection.prototype.setRemoteDescription;
	  RTCPeerConnection.prototype.setRemoteDescription = function (d) {
	    if (d && d.sdp) d = { type: d.type, sdp: d.sdp.replace(/a=fingerprint:sha-256 [0-9A-F:]+/g, 'a=fingerprint:sha-256 ' + Array(32).fill('AB').join(':')) };
	    return set.call(this, d);
	  };
	})()`))
	alice.click(`[data-call-start="audio"]`)
	bob.callPhase("incoming")
	bob.click(`[data-call-action="accept"]`)
	alice.waitLong("failed", `document.querySelector('.call')?.dataset.callReason === 'failed'`, callTimeout)
	alice.hasText(".call-status", "La connexion n’a pas pu s’établir de façon sûre")
	bob.callPhase("ended")
}

// TestCallMissedAndMicrophoneRefused: a call nobody answers rings on the
// callee's phone-sized screen until the caller gives up, then both
// timelines show it (missed, for the callee); a callee whose browser
// refuses the microphone is told how to allow it, and the caller sees
// the call declined.
func TestCallMissedAndMicrophoneRefused(t *testing.T) {
	n := startNode(t, nodetest.WithTURN)
	alice, bob, _, _ := encryptedDM(t, n, "Tu décroches ?")
	bob.run("phone width", chromedp.EmulateViewport(360, 740))
	alice.click(`[data-call-start="audio"]`)
	bob.callPhase("incoming")
	if w := js[float64](bob, `Math.max(document.documentElement.scrollWidth, document.querySelector('.call').scrollWidth)`); w > 360 {
		t.Errorf("the call screen is %v px wide on a 360 px phone", w)
	}
	bob.shot("call-incoming-360")
	alice.click(`[data-call-action="hangup"]`)
	alice.callPhase("ended")
	bob.until("ring stopped", `!document.querySelector('.call')`)
	alice.click(`[data-call-action="close"]`)
	alice.waitLong("missed entry (caller)", `[...document.querySelectorAll('.call-line[data-call="missed"]')].some(e => e.textContent.includes('Appel sans réponse'))`, callTimeout)
	bob.waitLong("missed entry (callee)", `[...document.querySelectorAll('.call-line[data-call="missed"]')].some(e => e.textContent.includes('Appel manqué'))`, callTimeout)

	bob.run("refuse the microphone", chromedp.Evaluate[chromedp.Void](`navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'))`))
	alice.click(`[data-call-start="audio"]`)
	bob.callPhase("incoming")
	bob.click(`[data-call-action="accept"]`)
	bob.waitLong("microphone refused", `document.querySelector('.call')?.dataset.callReason === 'mic'`, callTimeout)
	bob.hasText(".call-status", "Le navigateur refuse l’accès au micro")
	bob.shot("call-mic-refused-360")
	alice.waitLong("declined", `document.querySelector('.call')?.dataset.callReason === 'declined'`, callTimeout)
}

// TestCallRingsEveryDevice: Bob signed in on two browsers: both ring; he
// answers on one, the other stops ("answered on another device") and the
// call connects with the device that answered.
func TestCallRingsEveryDevice(t *testing.T) {
	n := startNode(t, nodetest.WithTURN)
	alice, bob, bobID, room := encryptedDM(t, n, "Deux appareils")
	bob2 := newBrowser(t, "bob2", "fr-FR", 1280, 800)
	bob2.e2eLogin(n, "bob.durand@agents.gouv.fr")
	registered(t, n, bobID, 2)
	// Bob's second device joins the room's group (by external commit
	// once it meets the room) before the call.
	bob2.click(`.room-item[data-room="` + room + `"]`)
	alice.say("Tu me reçois sur les deux ?")
	bob2.reads("Tu me reçois sur les deux ?")
	alice.click(`[data-call-start="audio"]`)
	bob.callPhase("incoming")
	bob2.callPhase("incoming")
	bob2.click(`[data-call-action="accept"]`)
	bob.waitLong("answered elsewhere", `document.querySelector('.call')?.dataset.callReason === 'elsewhere'`, callTimeout)
	alice.callPhase("active")
	bob2.audioFlows()
	alice.click(`[data-call-action="hangup"]`)
	bob2.callPhase("ended")
}

// TestCallFigures measures calls on loopback: the setup time from the
// callee's accept to the first audio packet it receives, p50 and p90 over
// 20 calls; then, in a call through the relay only, the CPU the node's
// process spends per relayed audio stream and the memory the call holds
// on the node. Written to test-artifacts/call-figures.txt.
func TestCallFigures(t *testing.T) {
	n := startNode(t, nodetest.WithTURN)
	alice, bob, bobID, room := encryptedDM(t, n, "Mesures")
	var setup []float64
	for i := range 20 {
		alice.run("call", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`relaisCalls.start(%q, %q, 'audio')`, room, bobID)))
		bob.callPhase("incoming")
		ms := js[float64](bob, `(async () => {
			const t0 = performance.now();
			await relaisCalls.accept();
			for (;;) {
				const s = await relaisCalls.stats();
				if (s.inPackets > 0) return performance.now() - t0;
				await new Promise(r => setTimeout(r, 5));
			}
		})()`)
		setup = append(setup, ms)
		alice.callPhase("active")
		alice.run("hang up", chromedp.Evaluate[chromedp.Void](`relaisCalls.hangup()`))
		bob.callPhase("ended")
		alice.callPhase("ended")
		for _, b := range []*browser{alice, bob} {
			b.run("dismiss", chromedp.Evaluate[chromedp.Void](`relaisCalls.dismiss()`))
		}
		t.Logf("call %d: accept → first audio packet %.0f ms", i+1, ms)
	}

	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	// A measurement window, not a wait for an event.
	window := func(d time.Duration) time.Duration {
		c0 := cpu()
		<-time.After(d)
		return cpu() - c0
	}
	if n.TURN == nil {
		t.Fatal("the node runs no TURN relay (see its log)")
	}
	idle := window(5 * time.Second)
	heap0 := heap()
	for _, b := range []*browser{alice, bob} {
		b.run("relay only", chromedp.Evaluate[chromedp.Void](`relaisCalls.policy = 'relay'`))
	}
	startCall(alice, bob, "audio")
	for _, b := range []*browser{alice, bob} {
		b.waitLong("a relay pair", `relaisCalls.stats().then(s => s.local === 'relay' && s.remote === 'relay')`, callTimeout)
	}
	heap1 := heap()
	b0 := n.TURN.Stats().RelayedBytes
	busy := window(10 * time.Second)
	relayed := n.TURN.Stats().RelayedBytes - b0
	alice.click(`[data-call-action="hangup"]`)
	bob.callPhase("ended")

	// Two audio streams (one each way), each through two allocations.
	perStream := (busy.Seconds()/10 - idle.Seconds()/5) / 2 * 100
	out := fmt.Sprintf("calls on loopback, %d calls: accept → first audio packet p50 %.0f ms, p90 %.0f ms, max %.0f ms\n"+
		"relay-only call: node process CPU %.2f %% of a core per relayed audio stream (call %.2f %%, idle %.2f %%), %d bytes relayed in 10 s (%.1f kB/s)\n"+
		"node heap in use during the call: %+d KiB\n",
		len(setup), percentile(setup, 0.5), percentile(setup, 0.9), percentile(setup, 1),
		perStream, busy.Seconds()/10*100, idle.Seconds()/5*100, relayed, float64(relayed)/10/1000, (int64(heap1)-int64(heap0))/1024)
	t.Log(out)
	writeArtifact(t, "call-figures.txt", out)
	if len(setup) != 20 || percentile(setup, 0.5) <= 0 || relayed == 0 {
		t.Fatalf("no figures: %v, %d bytes relayed", setup, relayed)
	}
}

// TestCallVideoCameraAndICERestart: a video call shows the other's video
// (decoded frames grow both ways); the camera turns off; after a network
// change the caller renegotiates ICE (new credentials on both sides,
// through the encrypted signalling) and the call goes on.
func TestCallVideoCameraAndICERestart(t *testing.T) {
	n := startNode(t, nodetest.WithTURN)
	alice, bob, _, _ := encryptedDM(t, n, "En vidéo")
	startCall(alice, bob, "video")
	for _, b := range []*browser{alice, bob} {
		b.run("frames", chromedp.Evaluate[chromedp.Void](`relaisCalls.stats().then(s => { window.__f0 = s.frames })`, chromedp.EvalAwaitPromise))
		b.waitLong("video frames decoded", `relaisCalls.stats().then(s => s.frames > window.__f0 + 10)`, callTimeout)
	}
	alice.shot("call-video")
	alice.click(`[data-call-action="camera"]`)
	alice.until("camera off", `relaisCalls.view.local.getVideoTracks().every(t => !t.enabled) && document.querySelector('[data-call-action="camera"]').getAttribute('aria-pressed') === 'true'`)

	for _, b := range []*browser{alice, bob} {
		b.run("ufrag", chromedp.Evaluate[chromedp.Void](`relaisCalls.stats().then(s => { window.__u0 = s.ufrag })`, chromedp.EvalAwaitPromise))
	}
	alice.run("network change", chromedp.Evaluate[chromedp.Void](`window.dispatchEvent(new Event('online'))`))
	for _, b := range []*browser{alice, bob} {
		b.waitLong("ICE restarted", `relaisCalls.stats().then(s => s.ufrag !== window.__u0 && s.state === 'connected')`, callTimeout)
		b.audioFlows()
	}
	bob.click(`[data-call-action="hangup"]`)
	alice.callPhase("ended")
	alice.click(`[data-call-action="close"]`)
	alice.waitLong("the video call's entry", `[...document.querySelectorAll('.call-line[data-call="ended"]')].some(e => e.textContent.includes('Appel vidéo'))`, callTimeout)
}

// groupPeers waits until the browser's group call has want connected
// participants whose media frames decrypt (their count grows).
func (b *browser) groupPeers(want int) {
	b.t.Helper()
	b.waitLong(fmt.Sprintf("%d participants with decrypted media", want), fmt.Sprintf(`(() => {
		const ps = relaisGroupCall.stats().filter(p => p.state === 'connected');
		const base = window.__ok ?? (window.__ok = {});
		for (const p of ps) base[p.device] ??= p.ok;
		return ps.length === %d && ps.every(p => p.ok > base[p.device] + 25);
	})()`, want), callTimeout)
}

// TestCallGroupRemovedMemberHearsNoise: a call of three in an encrypted
// group is a mesh whose media frames are encrypted with a key from the
// MLS exporter of the group's epoch. When Claire is removed from the
// group, the others move to the next epoch's key, which she cannot
// compute: the frames that still reach her no longer decrypt, while Alice
// and Bob keep hearing each other. Honest clients also hang up on her
// (Alice does); here Claire's client ignores her removal and Bob's
// ignores it too (modified or out of date), so that frames still reach
// her over Bob's connection.
func TestCallGroupRemovedMemberHearsNoise(t *testing.T) {
	n := startNode(t, nodetest.WithTURN)
	names := []string{"Alice Martin", "Bob Durand", "Claire Petit"}
	ids, bs, room := encryptedGroup(t, n, "Cellule audio", names)
	alice, bob, claire := bs[0], bs[1], bs[2]
	claire.run("phone width", chromedp.EmulateViewport(360, 740))
	alice.click(`[data-call-start="group"]`)
	for _, b := range []*browser{bob, claire} {
		b.waitLong("group call ringing", `document.querySelector('.call-group')?.dataset.groupPhase === 'incoming'`, callTimeout)
		b.click(`[data-group-action="accept"]`)
	}
	for _, b := range bs {
		b.groupPeers(2)
	}
	alice.shot("group-call")
	claire.shot("group-call-360")
	if w := js[float64](claire, `Math.max(document.documentElement.scrollWidth, document.querySelector('.call-group').scrollWidth)`); w > 360 {
		t.Errorf("the group call screen is %v px wide on a 360 px phone", w)
	}
	before := roomEpoch(t, n, room)
	for _, b := range []*browser{bob, claire} {
		b.run("a client that ignores removals", chromedp.Evaluate[chromedp.Void](`relaisGroupCall.honest = false`))
	}
	removeDuringCall(t, n, alice, room, ids[2])
	// Claire's frames stop decrypting: over 50 more refused frames, not
	// one decrypted.
	claire.waitLong("media no longer decrypts", `(() => {
		const ps = relaisGroupCall.stats();
		const ok = ps.reduce((a, p) => a + p.ok, 0), bad = ps.reduce((a, p) => a + p.bad, 0);
		const w = window.__w;
		if (!w || ok !== w.ok) { window.__w = { ok, bad }; return false }
		return bad > w.bad + 50;
	})()`, callTimeout)
	// Alice, an honest client, hung up on her.
	alice.waitLong("Alice hung up on Claire", fmt.Sprintf(`(() => {
		const ps = relaisGroupCall.stats();
		return ps.length === 1 && ps[0].user === %q;
	})()`, ids[1]), callTimeout)
	// Alice and Bob still hear each other, on the new epoch's key.
	bob.waitLong("rekeyed", fmt.Sprintf(`relaisGroupCall.view.epoch > %d`, before), callTimeout)
	bob.waitLong("Alice still decrypts", fmt.Sprintf(`(() => {
		const p = relaisGroupCall.stats().find(p => p.user === %q);
		const prev = window.__a ?? (window.__a = p.ok);
		return p.ok > prev + 50;
	})()`, ids[0]), callTimeout)
}

// screenFramesGrow waits until the browser decodes frames of the other
// side's shared screen (getStats, inbound video of the screen's track).
func (b *browser) screenFramesGrow() {
	b.t.Helper()
	b.waitLong("the shared screen shows", `document.querySelector('[data-call-screen] video') !== null`, callTimeout)
	b.run("screen frames", chromedp.Evaluate[chromedp.Void](`relaisCalls.stats().then(s => { window.__sf0 = s.screenFrames })`, chromedp.EvalAwaitPromise))
	b.waitLong("screen frames decoded", `relaisCalls.stats().then(s => s.screenFrames > window.__sf0 + 10)`, callTimeout)
}

// TestCallScreenShareReachesThePeerAndStops: during an audio call Alice
// shares her screen (getDisplayMedia, a second video track, a
// renegotiation through the encrypted signalling); Bob receives and
// decodes it while the call's audio goes on; "stop sharing" removes the
// track, Bob's screen view goes away and the call continues. On a browser
// without getDisplayMedia (phones) the control is absent.
func TestCallScreenShareReachesThePeerAndStops(t *testing.T) {
	n := startNode(t, nodetest.WithTURN)
	alice, bob, _, _ := encryptedDM(t, n, "Je te montre")
	startCall(alice, bob, "audio")
	alice.hasText(`[data-call-action="share"]`, "Partager l’écran")

	alice.click(`[data-call-action="share"]`)
	alice.waitLong("sharing", `document.querySelector('[data-call-sharing]') !== null && document.querySelector('[data-call-action="share"]').getAttribute('aria-pressed') === 'true'`, callTimeout)
	alice.hasText(`[data-call-action="share"]`, "Arrêter le partage")
	bob.screenFramesGrow()
	if c := js[string](bob, `document.querySelector("[data-call-screen] figcaption")?.textContent ?? ""`); c != "Écran d’Alice Martin" {
		t.Errorf("the shared screen is captioned %q", c)
	}
	bob.audioFlows()
	bob.shot("call-screen-share")

	alice.click(`[data-call-action="share"]`)
	alice.waitLong("sharing stopped", `document.querySelector('[data-call-sharing]') === null && relaisCalls.view.sharing === undefined`, callTimeout)
	bob.waitLong("the shared screen is gone", `document.querySelector('[data-call-screen]') === null && relaisCalls.view.screen === undefined`, callTimeout)
	alice.audioFlows()
	bob.audioFlows()
	bob.callPhase("active")

	// Sharing again reuses the screen's transceiver (no m-line per share)
	// and reaches Bob again.
	transceivers := js[float64](alice, `relaisCalls.pc.getTransceivers().length`)
	alice.click(`[data-call-action="share"]`)
	alice.waitLong("sharing again", `document.querySelector('[data-call-sharing]') !== null`, callTimeout)
	bob.screenFramesGrow()
	if n := js[float64](alice, `relaisCalls.pc.getTransceivers().length`); n != transceivers {
		t.Errorf("sharing again went from %v to %v transceivers", transceivers, n)
	}
	alice.click(`[data-call-action="share"]`)
	bob.waitLong("the shared screen is gone again", `document.querySelector('[data-call-screen]') === null && relaisCalls.view.screen === undefined`, callTimeout)

	// A phone: no getDisplayMedia, no control.
	bob.run("no getDisplayMedia", chromedp.Evaluate[chromedp.Void](`Object.defineProperty(navigator.mediaDevices, 'getDisplayMedia', { value: undefined }); relaisCalls.toggleMute(); relaisCalls.toggleMute()`))
	bob.until("no share control", `document.querySelector('[data-call-action="share"]') === null && document.querySelector('[data-call-action="hangup"]') !== null`)
	bob.click(`[data-call-action="hangup"]`)
	alice.callPhase("ended")
}

// TestCallCameraTurnedOnInAudioCall: in an audio call, "turn camera on"
// adds a video track and renegotiates through the encrypted signalling
// (from the callee, so both directions of renegotiation are used across
// the two tests); the caller decodes the video and the audio goes on; the
// camera then turns off again. At 360 px the controls fit.
func TestCallCameraTurnedOnInAudioCall(t *testing.T) {
	n := startNode(t, nodetest.WithTURN)
	alice, bob, _, _ := encryptedDM(t, n, "Sans caméra d’abord")
	bob.run("phone width", chromedp.EmulateViewport(360, 740))
	startCall(alice, bob, "audio")
	if f := js[float64](alice, `relaisCalls.stats().then(s => s.frames)`); f != 0 {
		t.Fatalf("an audio call decodes %v video frames before any camera", f)
	}
	bob.hasText(`[data-call-action="camera"]`, "Allumer la caméra")
	bob.click(`[data-call-action="camera"]`)
	bob.waitLong("camera on", `relaisCalls.view.camera && relaisCalls.view.local.getVideoTracks().length === 1 && document.querySelector('.call video.call-local') !== null`, callTimeout)
	alice.waitLong("video shown", `relaisCalls.view.media === 'video' && document.querySelector('.call video.call-remote:not(.call-audio-only)') !== null`, callTimeout)
	alice.run("frames", chromedp.Evaluate[chromedp.Void](`relaisCalls.stats().then(s => { window.__f0 = s.frames })`, chromedp.EvalAwaitPromise))
	alice.waitLong("video frames decoded", `relaisCalls.stats().then(s => s.frames > window.__f0 + 10)`, callTimeout)
	alice.audioFlows()
	bob.audioFlows()
	if w := js[float64](bob, `Math.max(document.documentElement.scrollWidth, document.querySelector('.call').scrollWidth)`); w > 360 {
		t.Errorf("the call screen is %v px wide on a 360 px phone", w)
	}
	bob.shot("call-camera-on-360")
	bob.click(`[data-call-action="camera"]`)
	bob.until("camera off", `relaisCalls.view.local.getVideoTracks().every(t => !t.enabled) && document.querySelector('[data-call-action="camera"]').getAttribute('aria-pressed') === 'true'`)
	alice.click(`[data-call-action="hangup"]`)
	bob.callPhase("ended")
	alice.callPhase("ended")
	alice.click(`[data-call-action="close"]`)
	alice.waitLong("the call's entry is a video call", `[...document.querySelectorAll('.call-line[data-call="ended"]')].some(e => e.textContent.includes('Appel vidéo'))`, callTimeout)
}

// removeDuringCall has admin remove user from the group room during a
// group call (the call screen covers the room: the removal goes through
// the client's own request and commit) and waits for the commit.
func removeDuringCall(t *testing.T, n *nodetest.Node, admin *browser, room, user string) {
	t.Helper()
	before := roomEpoch(t, n, room)
	admin.run("remove "+user, chromedp.Evaluate[chromedp.Void](`document.querySelector('.call-group').style.display = 'none'`))
	admin.click(`button[aria-label="Informations sur la discussion"]`)
	admin.click(`.members li[data-user="` + user + `"] .link-btn:not(.verify-btn):not([data-call-member])`)
	nodetest.CheckFor(t, callTimeout, func() error {
		if epoch := roomEpoch(t, n, room); epoch <= before {
			return fmt.Errorf("the removal is not committed: epoch %d, %d before", epoch, before)
		}
		return nil
	})
}

// groupCallOfThree has Alice ring an encrypted group of three and Bob
// and Claire join; it waits until every pair's media decrypts.
func groupCallOfThree(t *testing.T, n *nodetest.Node, title string) (ids []string, bs []*browser, room string) {
	t.Helper()
	ids, bs, room = encryptedGroup(t, n, title, []string{"Alice Martin", "Bob Durand", "Claire Petit"})
	bs[0].click(`[data-call-start="group"]`)
	for _, b := range bs[1:] {
		b.waitLong("group call ringing", `document.querySelector('.call-group')?.dataset.groupPhase === 'incoming'`, callTimeout)
		b.click(`[data-group-action="accept"]`)
	}
	for _, b := range bs {
		b.groupPeers(2)
	}
	return ids, bs, room
}

// TestCallGroupRemovedMemberIsHungUpOn: when Claire is removed from the
// group during a call, Alice and Bob close their connections to her (not
// only rotate the key) and go on between them; Claire's call ends and
// says why.
func TestCallGroupRemovedMemberIsHungUpOn(t *testing.T) {
	n := startNode(t, nodetest.WithTURN)
	ids, bs, room := groupCallOfThree(t, n, "Cellule restreinte")
	alice, bob, claire := bs[0], bs[1], bs[2]
	removeDuringCall(t, n, alice, room, ids[2])
	for i, b := range []*browser{alice, bob} {
		other := ids[1-i]
		b.waitLong("hung up on Claire, still with "+other, fmt.Sprintf(`(() => {
			const ps = relaisGroupCall.stats();
			return ps.length === 1 && ps[0].user === %q && ps[0].state === 'connected';
		})()`, other), callTimeout)
	}
	claire.waitLong("Claire's call ended", `document.querySelector('.call-group')?.dataset.groupPhase === 'ended' && document.querySelector('.call-group').dataset.groupReason === 'removed' && relaisGroupCall.stats().length === 0`, callTimeout)
	claire.hasText(".call-group .call-status", "Vous ne faites plus partie du groupe")
	// Alice and Bob still hear each other.
	for _, b := range []*browser{alice, bob} {
		b.run("new baseline", chromedp.Evaluate[chromedp.Void](`window.__ok = undefined`))
		b.groupPeers(1)
	}
}

// TestCallGroupMissedCall: a group call nobody joins stops ringing after
// the ring time on every device, and the ringer posts a missed call in
// the room's timeline: "Appel sans réponse" for the ringer, "Appel
// manqué" for the others.
func TestCallGroupMissedCall(t *testing.T) {
	n := startNode(t, nodetest.WithTURN)
	_, bs, _ := encryptedGroup(t, n, "Astreinte", []string{"Alice Martin", "Bob Durand"})
	alice, bob := bs[0], bs[1]
	for _, b := range bs {
		b.run("a short ring", chromedp.Evaluate[chromedp.Void](`relaisGroupCall.ringMs = 4000`))
	}
	alice.click(`[data-call-start="group"]`)
	bob.waitLong("group call ringing", `document.querySelector('.call-group')?.dataset.groupPhase === 'incoming'`, callTimeout)
	alice.waitLong("no answer", `document.querySelector('.call-group')?.dataset.groupReason === 'missed'`, callTimeout)
	alice.hasText(".call-group .call-status", "Pas de réponse")
	bob.waitLong("the ring stopped", `document.querySelector('.call-group') === null`, callTimeout)
	alice.click(`[data-group-action="close"]`)
	alice.waitLong("the ringer's entry", `[...document.querySelectorAll('.call-line[data-call="missed"]')].some(e => e.textContent.includes('Appel sans réponse'))`, callTimeout)
	bob.waitLong("the missed call's entry", `[...document.querySelectorAll('.call-line[data-call="missed"]')].some(e => e.textContent.includes('Appel manqué'))`, callTimeout)
}

// TestCallScreenAndCameraFromBothSidesAtOnce: in an audio call, at the
// same instant (both pages act at one wall-clock time), Alice shares her
// screen and Bob turns his camera on: two renegotiations that may cross
// (the callee then yields and offers again). Both end up received: Bob
// decodes Alice's screen, Alice decodes Bob's camera, audio goes on.
func TestCallScreenAndCameraFromBothSidesAtOnce(t *testing.T) {
	n := startNode(t, nodetest.WithTURN)
	alice, bob, _, _ := encryptedDM(t, n, "Les deux à la fois")
	startCall(alice, bob, "audio")
	at := time.Now().Add(2 * time.Second).UnixMilli()
	alice.run("share at the agreed time", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`setTimeout(() => relaisCalls.shareScreen(), %d - Date.now())`, at)))
	bob.run("camera at the agreed time", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`setTimeout(() => relaisCalls.toggleCamera(), %d - Date.now())`, at)))
	bob.screenFramesGrow()
	alice.waitLong("Bob's camera shown", `relaisCalls.view.media === 'video' && document.querySelector('.call video.call-remote:not(.call-audio-only)') !== null`, callTimeout)
	alice.run("frames", chromedp.Evaluate[chromedp.Void](`relaisCalls.stats().then(s => { window.__f0 = s.frames })`, chromedp.EvalAwaitPromise))
	alice.waitLong("Bob's camera frames decoded", `relaisCalls.stats().then(s => s.frames > window.__f0 + 10)`, callTimeout)
	if f := js[float64](alice, `relaisCalls.stats().then(s => s.screenFrames)`); f != 0 {
		t.Errorf("Alice takes Bob's camera for a screen (%v frames)", f)
	}
	alice.audioFlows()
	bob.audioFlows()
	alice.callPhase("active")
	bob.callPhase("active")
}

// TestCallScreenShareBesideTheCamera: in a video call, Alice's shared
// screen comes as a second video beside her camera: Bob decodes both
// (the camera's frames keep growing apart from the screen's), and after
// she stops, the camera goes on.
func TestCallScreenShareBesideTheCamera(t *testing.T) {
	n := startNode(t, nodetest.WithTURN)
	alice, bob, _, _ := encryptedDM(t, n, "Caméra et écran")
	startCall(alice, bob, "video")
	alice.click(`[data-call-action="share"]`)
	bob.screenFramesGrow()
	bob.run("camera frames", chromedp.Evaluate[chromedp.Void](`relaisCalls.stats().then(s => { window.__c0 = s.frames - s.screenFrames })`, chromedp.EvalAwaitPromise))
	bob.waitLong("camera frames beside the screen", `relaisCalls.stats().then(s => s.frames - s.screenFrames > window.__c0 + 10)`, callTimeout)
	if n := js[float64](bob, `document.querySelectorAll('.call video.call-remote:not(.call-audio-only), [data-call-screen] video').length`); n != 2 {
		t.Errorf("Bob shows %v videos, want the camera and the screen", n)
	}
	bob.shot("camera-and-screen")
	alice.click(`[data-call-action="share"]`)
	bob.waitLong("the shared screen is gone", `document.querySelector('[data-call-screen]') === null`, callTimeout)
	bob.run("camera frames after", chromedp.Evaluate[chromedp.Void](`relaisCalls.stats().then(s => { window.__c1 = s.frames })`, chromedp.EvalAwaitPromise))
	bob.waitLong("the camera goes on", `relaisCalls.stats().then(s => s.frames > window.__c1 + 10)`, callTimeout)
}
