package files_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"relais/cluster/nodetest"
	"relais/server/config"
	"relais/server/media/clamd/clamdtest"
	"relais/server/proto"
)

// A clean PDF uploaded in chunks to a forum is scanned, posted, seen by the
// other member with its state, and downloaded with a range request and
// safe headers; the EICAR test file is quarantined at once: its uploader
// is told, it cannot be posted or downloaded, and its content is gone.
func TestCleanPDFAndEICAR(t *testing.T) {
	av := clamdtest.Start(t, clamdtest.Options{})
	n := startNode(t, av)
	alice := newPeer(t, n, "Alice Martin")
	bob := newPeer(t, n, "Bob Durand")
	room := forum(t, alice, bob)

	pdf := tinyPDF("Compte rendu du conseil", 40<<10)
	f := upload(t, alice.c, room, "Compte rendu.pdf", pdf, 8<<10)
	if f.Name != "Compte rendu.pdf" || f.Size != int64(len(pdf)) || f.Mime != "application/pdf" ||
		(f.State != proto.FilePending && f.State != proto.FileClean) {
		t.Fatalf("finished file = %+v", f)
	}
	ack := alice.postFile(room, f.ID, "Le compte rendu")
	ev := bob.event("the file event", room, func(ev proto.Event) bool { return ev.Seq == ack.Seq })
	if ev.Type != proto.EvFile || ev.File == nil || ev.File.ID != f.ID || ev.File.Name != f.Name || ev.Body != "Le compte rendu" {
		t.Fatalf("bob got %+v", ev)
	}
	if ev.File.State == proto.FilePending {
		st := bob.event("file_state clean", room, func(e proto.Event) bool { return e.Type == proto.EvFileState && e.Target == ack.Seq })
		if st.File == nil || st.File.State != proto.FileClean || st.File.ID != f.ID {
			t.Fatalf("file_state = %+v", st)
		}
	} else if ev.File.State != proto.FileClean {
		t.Fatalf("file event state %q", ev.File.State)
	}
	if h := bob.history(room)[ack.Seq]; h.File == nil || h.File.State != proto.FileClean {
		t.Fatalf("stored copy of the file event: %+v", h.File)
	}
	fileState(t, bob.c, f.ID, proto.FileClean)

	resp, err := bob.c.Download(ctxT(t), f.ID, false, http.Header{"Range": {"bytes=100-1099"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	h := resp.Header
	switch {
	case resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, pdf[100:1100]):
		t.Fatalf("range: %d, %d bytes", resp.StatusCode, len(body))
	case h.Get("Content-Range") != "bytes 100-1099/"+itoa(len(pdf)):
		t.Fatalf("Content-Range %q", h.Get("Content-Range"))
	case h.Get("Content-Type") != "application/pdf":
		t.Fatalf("Content-Type %q", h.Get("Content-Type"))
	case h.Get("Content-Disposition") != `attachment; filename="Compte rendu.pdf"`:
		t.Fatalf("Content-Disposition %q", h.Get("Content-Disposition"))
	case h.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(h.Get("Content-Security-Policy"), "sandbox"):
		t.Fatalf("safety headers: %v", h)
	}
	if got := download(t, bob.c, f.ID); !bytes.Equal(got, pdf) {
		t.Fatal("full download differs")
	}

	// EICAR: quarantined by the background scan right after finishing.
	e := upload(t, alice.c, room, "note.txt", clamdtest.EICAR(), 0)
	if e.State != proto.FilePending {
		t.Fatalf("EICAR finished as %q", e.State)
	}
	alice.frame("the live file_state of the EICAR file", proto.TFileState, func(raw json.RawMessage) bool {
		var fr proto.FileStateFrame
		json.Unmarshal(raw, &fr)
		return fr.File.ID == e.ID && fr.File.State == proto.FileQuarantined && fr.File.Code == proto.CodeInfected && fr.Room == room
	})
	info := fileState(t, alice.c, e.ID, proto.FileQuarantined)
	if info.File.Code != proto.CodeInfected || !strings.Contains(info.File.Reason, clamdtest.SigEICARFile) {
		t.Fatalf("quarantined file = %+v", info.File)
	}
	if _, code := alice.send(map[string]any{"room": room, "type": "file", "file": map[string]any{"id": e.ID}}); code != proto.CodeQuarantined {
		t.Fatalf("posting a quarantined file: %q", code)
	}
	_, err = alice.c.Download(ctxT(t), e.ID, false, nil)
	if ce := wantCode(t, "downloading a quarantined file", err, proto.CodeQuarantined, http.StatusGone); ce.Detail != proto.CodeInfected {
		t.Fatalf("detail %q", ce.Detail)
	}
	if hash := blobOf(t, n, e.ID); exists(blobPath(n, hash)) {
		t.Fatal("the EICAR blob is still on disk")
	}
	// The same content again is refused at once, and nothing is kept.
	_, err = alice.c.UploadFile(ctxT(t), uploadReq(room, "encore.txt"), clamdtest.EICAR(), 0)
	wantCode(t, "EICAR again", err, proto.CodeQuarantined, http.StatusGone)
	if hash := blobOf(t, n, e.ID); exists(blobPath(n, hash)) {
		t.Fatal("the EICAR blob came back")
	}
	if left := mediaFiles(t, n, "uploads"); len(left) != 0 {
		t.Fatalf("uploads left: %v", left)
	}
}

// With clamd down and the default policy (hold), files stay pending: their
// uploader may download them, nobody else; once clamd is back (even across
// a restart of the node), the room learns the verdicts.
func TestClamdDownHoldsThenScans(t *testing.T) {
	av := clamdtest.Start(t, clamdtest.Options{})
	n := startNode(t, av)
	alice := newPeer(t, n, "Alice Martin")
	bob := newPeer(t, n, "Bob Durand")
	room := group(t, alice, false, bob)

	av.Stop()
	pdf := tinyPDF("Budget 2027", 20<<10)
	f := upload(t, alice.c, room, "budget.pdf", pdf, 4<<10)
	e := upload(t, alice.c, room, "eicar.com.txt", clamdtest.EICAR(), 0)
	pdfAck := alice.postFile(room, f.ID, "")
	eicarAck := alice.postFile(room, e.ID, "à vérifier")
	for _, ack := range []uint64{pdfAck.Seq, eicarAck.Seq} {
		if ev := bob.event("a pending file event", room, func(ev proto.Event) bool { return ev.Seq == ack }); ev.File.State != proto.FilePending {
			t.Fatalf("file event state %q, want pending", ev.File.State)
		}
	}
	if got := download(t, alice.c, f.ID); !bytes.Equal(got, pdf) {
		t.Fatal("the uploader's download of a pending file differs")
	}
	_, err := bob.c.Download(ctxT(t), f.ID, false, nil)
	wantCode(t, "another member downloading a pending file", err, proto.CodeScanPending, http.StatusForbidden)
	if info := fileState(t, bob.c, f.ID, proto.FilePending); info.Seq != pdfAck.Seq {
		t.Fatalf("state: %+v", info)
	}

	// The node restarts while clamd is still down: the pending scans
	// survive in the store.
	n.Restart()
	fileState(t, alice.c, f.ID, proto.FilePending)
	av.Restart()

	st := bob.event("file_state clean", room, func(ev proto.Event) bool { return ev.Type == proto.EvFileState && ev.Target == pdfAck.Seq })
	if st.File.State != proto.FileClean {
		t.Fatalf("pdf file_state %+v", st.File)
	}
	q := bob.event("file_state quarantined", room, func(ev proto.Event) bool { return ev.Type == proto.EvFileState && ev.Target == eicarAck.Seq })
	if q.File.State != proto.FileQuarantined || q.File.Code != proto.CodeInfected || q.File.Reason == "" {
		t.Fatalf("EICAR file_state %+v", q.File)
	}
	if got := download(t, bob.c, f.ID); !bytes.Equal(got, pdf) {
		t.Fatal("bob's download differs")
	}
	for _, p := range []*peer{alice, bob} {
		_, err := p.c.Download(ctxT(t), e.ID, false, nil)
		wantCode(t, "downloading the quarantined file", err, proto.CodeQuarantined, http.StatusGone)
	}
	hist := bob.history(room)
	if h := hist[eicarAck.Seq]; h.File == nil || h.File.State != proto.FileQuarantined || h.File.Code != proto.CodeInfected || h.Body != "à vérifier" {
		t.Fatalf("stored copy of the quarantined file's message: %+v", h)
	}
	if h := hist[pdfAck.Seq]; h.File.State != proto.FileClean {
		t.Fatalf("stored copy of the clean file's message: %+v", h.File)
	}
	if exists(blobPath(n, blobOf(t, n, e.ID))) {
		t.Fatal("the quarantined blob is still on disk")
	}
}

// With --clamd-down reject, a file clamd cannot scan is quarantined.
func TestClamdDownRejects(t *testing.T) {
	av := clamdtest.Start(t, clamdtest.Options{})
	n := startNode(t, av, nodetest.WithConfig(func(c *config.Config) { c.ClamdDown = "reject" }))
	alice := newPeer(t, n, "Alice Martin")
	room := forum(t, alice)
	av.Stop()
	f := upload(t, alice.c, room, "rapport.pdf", tinyPDF("Rapport", 1<<10), 0)
	info := fileState(t, alice.c, f.ID, proto.FileQuarantined)
	if info.File.Code != proto.CodeScannerUnavailable {
		t.Fatalf("quarantined with %q", info.File.Code)
	}
}
