package webtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/config"
	"relais/server/files"
	"relais/server/media"
	"relais/server/media/clamd/clamdtest"
	"relais/server/media/mediatest"
	"relais/server/node"
)

// Files in the web client (PROTOCOL.md, "Files"): uploads by drag and
// drop and by the file picker, progress and resumption, pictures and
// documents in the timeline, the antivirus states seen live by both
// people, downloads, and end-to-end encrypted files in a direct
// conversation, scanned by the node through the scanner key.

// startFilesNode starts a node serving the web client that scans files
// with av and retries pending scans quickly.
func startFilesNode(t *testing.T, av *clamdtest.Server, opts ...nodetest.Option) *nodetest.Node {
	t.Helper()
	base := []nodetest.Option{
		nodetest.WithOptions(func(o *node.Options) {
			o.Files = files.Tuning{RetryEvery: 100 * time.Millisecond, ClamdTimeout: 5 * time.Second}
		}),
		nodetest.WithConfig(func(c *config.Config) { c.Clamd = av.UnixURL() }),
	}
	return startNode(t, append(base, opts...)...)
}

// testPNG draws a w×h picture; noise makes its bytes (and its size)
// those of a photograph rather than of a flat drawing.
func testPNG(t *testing.T, w, h int, noise bool) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	x := uint32(2463534242)
	for py := range h {
		for px := range w {
			c := color.NRGBA{uint8(px * 255 / w), uint8(py * 255 / h), 160, 255}
			if noise {
				x ^= x << 13
				x ^= x >> 17
				x ^= x << 5
				c.B = uint8(x)
			}
			img.Set(px, py, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// dropFiles drops files on the open room the way a person dragging them
// from their desktop does: dragenter, dragover and drop events carrying a
// DataTransfer with the files.
func (b *browser) dropFiles(files map[string][]byte, types map[string]string) {
	b.t.Helper()
	var items []string
	for name, data := range files {
		items = append(items, fmt.Sprintf(`dt.items.add(new File([Uint8Array.from(atob(%q), c => c.charCodeAt(0))], %q, {type: %q}))`,
			base64.StdEncoding.EncodeToString(data), name, types[name]))
	}
	js[bool](b, `(() => {
		const dt = new DataTransfer();
		`+strings.Join(items, ";\n")+`;
		const el = document.querySelector('section.room .timeline');
		for (const type of ['dragenter', 'dragover', 'drop'])
			el.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
		return true;
	})()`)
}

// downloadsTo makes the browser save downloads into dir, under their
// names.
func (b *browser) downloadsTo(dir string) {
	b.t.Helper()
	b.run("set the download directory", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior:     cdpbrowser.SetDownloadBehaviorBehaviorAllow,
			DownloadPath: dir,
		})
		return err
	}))
}

// downloaded waits for a file the browser saved and returns its bytes.
func downloaded(t *testing.T, dir, name string, size int) []byte {
	t.Helper()
	var data []byte
	nodetest.CheckFor(t, 20*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("the browser did not save %s: %w", name, err)
		}
		data = b
		if len(b) != size {
			return fmt.Errorf("the browser saved %d bytes of %s, want %d", len(b), name, size)
		}
		return nil
	})
	return data
}

// throttleUploads slows down (or, offline, cuts) the browser's uploads to
// the node, and only them; zero rate lifts the throttling.
func (b *browser) throttleUploads(base string, rate float64, offline bool) {
	b.t.Helper()
	b.run("throttle uploads", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		var conds []*network.Conditions
		if rate > 0 || offline {
			conds = append(conds, &network.Conditions{URLPattern: base + "/api/v1/media/uploads/*", UploadThroughput: rate, DownloadThroughput: -1, Offline: offline})
		}
		_, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{MatchedNetworkConditions: conds})
		return err
	}))
}

// joinForum creates a forum as owner and has the others join it.
func joinForum(t *testing.T, name string, owner *client.Client, others ...*client.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	room := nodetest.Forum(t, ctx, nodetest.Synced(t, ctx, owner), name)
	for _, c := range others {
		if err := nodetest.Synced(t, ctx, c).Call(ctx, "join", map[string]any{"room": room}, nil); err != nil {
			t.Fatalf("join: %v", err)
		}
	}
	return room
}

// forumOfTwo signs Alice (in French) and Bob (in bobLang) in, each in a
// browser, in a forum "Services techniques" they both joined and opened.
func forumOfTwo(t *testing.T, n *nodetest.Node, bobLang string) (alice, bob *browser, room string) {
	t.Helper()
	alicec := n.NewUserEmail("alice.martin@agents.gouv.fr", "Alice Martin")
	bobc := n.NewUserEmail("bob.durand@agents.gouv.fr", "Bob Durand")
	room = joinForum(t, "Services techniques", alicec, bobc)
	alice = newBrowser(t, "alice", "fr-FR", 1280, 800)
	bob = newBrowser(t, "bob", bobLang, 1280, 800)
	alice.login(n.URL(), "alice.martin@agents.gouv.fr", nodetest.Password)
	bob.login(n.URL(), "bob.durand@agents.gouv.fr", nodetest.Password)
	alice.click(`.room-item[data-room="` + room + `"]`)
	bob.click(`.room-item[data-room="` + room + `"]`)
	return alice, bob, room
}

// TestFilesForum: in a forum (not encrypted), Alice drops a PDF and a
// picture into the room; she sees the upload progress, and the upload
// resumes from the node's offset after her connection drops in the
// middle. Bob sees the picture (the node's thumbnail, in a space reserved
// from its dimensions) and the document card once the antivirus passed
// them, and downloads the PDF intact. Alice then drops the EICAR test
// file while clamd is down: both see it waiting for the antivirus, then,
// clamd back, removed by the antivirus as infected.
func TestFilesForum(t *testing.T) {
	av := clamdtest.Start(t, clamdtest.Options{})
	n := startFilesNode(t, av)
	alice, bob, room := forumOfTwo(t, n, "fr-FR")
	alice.visible(".composer .attach")

	pdf := mediatest.PDF("Compte rendu du conseil municipal", 3<<20)
	pic := testPNG(t, 640, 400, false)
	// Uploads go at 1 MB/s, so that the progress shows; after a moment
	// the connection drops for a while, then comes back.
	alice.throttleUploads(n.URL(), 1<<20, false)
	alice.dropFiles(map[string][]byte{"Compte rendu.pdf": pdf}, map[string]string{"Compte rendu.pdf": "application/pdf"})
	alice.until("upload progress", `(() => { const p = document.querySelector('.msg.upload[data-phase="uploading"] progress'); return !!p && p.value > 0 && p.value < 100 })()`)
	alice.shot("upload-progress")
	alice.allowNet.Store(true)
	alice.throttleUploads(n.URL(), 0, true)
	// A pause on purpose, not a wait for a condition: the outage has to
	// last, so that the chunk in flight fails and the client goes through
	// its back-off and asks the node where the upload stands once the
	// connection is back. Nothing in the page says it is backing off.
	time.Sleep(1500 * time.Millisecond)
	before := js[float64](alice, `document.querySelector('.msg.upload progress')?.value ?? -1`)
	alice.throttleUploads(n.URL(), 0, false)
	alice.dropFiles(map[string][]byte{"Plan du quartier.png": pic}, map[string]string{"Plan du quartier.png": "image/png"})
	alice.until("both files posted", `!document.querySelector('.msg.upload') && document.querySelectorAll('.msg.mine [data-file]').length === 2`)
	alice.allowNet.Store(false)
	t.Logf("upload stood at %v%% while the connection was cut", before)

	// Bob sees both once the antivirus passed them.
	bob.until("picture shown", `(() => { const i = document.querySelector('.msg:not(.mine) .file-picture[data-file-state="clean"] img'); return !!i && i.complete && i.naturalWidth > 0 })()`)
	if w, h := js[float64](bob, `document.querySelector('.file-picture img').width`), js[float64](bob, `document.querySelector('.file-picture img').height`); w != 320 || h != 200 {
		t.Errorf("picture shown at %v×%v, want 320×200 (640×400 fitted)", w, h)
	}
	bob.hasText(`.msg:not(.mine) .file-card[data-file-state="clean"] .file-name`, "Compte rendu.pdf")
	bob.hasText(`.msg:not(.mine) .file-card[data-file-state="clean"]`, "Vérifié par l’antivirus")
	bob.hasText(`.msg:not(.mine) .file-card .file-size`, "PDF")
	bob.shot("files-received")
	alice.shot("files-sent")

	dir := t.TempDir()
	bob.downloadsTo(dir)
	bob.click(`.file-card[data-file-state="clean"] .file-download`)
	if got := downloaded(t, dir, "Compte rendu.pdf", len(pdf)); !bytes.Equal(got, pdf) {
		t.Fatal("the downloaded PDF differs from the one sent")
	}

	// EICAR, with clamd down: the file waits; clamd back, it is removed,
	// and both see why.
	av.Stop()
	alice.dropFiles(map[string][]byte{"note.txt": clamdtest.EICAR()}, map[string]string{"note.txt": "text/plain"})
	bob.hasText(`.msg:not(.mine) .file-card[data-file-state="pending"]`, "Analyse antivirus en cours")
	bob.shot("eicar-pending")
	av.Restart()
	for _, b := range []*browser{alice, bob} {
		b.hasText(`.file-card.quarantined[data-code="infected"]`, "« note.txt » supprimé par l’antivirus : fichier infecté")
		b.shot("eicar-quarantined")
	}
	// History (a reload) shows the final states too.
	bob.run("reload", reload())
	bob.hasText(`.file-card.quarantined`, "fichier infecté")
	bob.visible(`.file-picture[data-file-state="clean"] img`)

	// A program is refused at once, and Alice is told why; a pasted
	// picture goes like a dropped one.
	alice.dropFiles(map[string][]byte{"installeur.exe": append([]byte("MZ\x90\x00"), make([]byte, 600)...)}, map[string]string{"installeur.exe": "application/x-msdownload"})
	alice.hasText(`.msg.upload.failed`, "Envoi impossible : type de fichier interdit")
	alice.shot("blocked-type")
	alice.click(`.msg.upload.failed .link-btn`)
	alice.until("failed upload dismissed", `!document.querySelector('.msg.upload')`)
	// An upload cancelled on its way leaves nothing.
	alice.throttleUploads(n.URL(), 64<<10, false)
	alice.dropFiles(map[string][]byte{"Brouillon.pdf": mediatest.PDF("Brouillon", 1<<20)}, map[string]string{"Brouillon.pdf": "application/pdf"})
	alice.until("uploading", `!!document.querySelector('.msg.upload[data-phase="uploading"] progress')`)
	alice.click(`.msg.upload button[aria-label="Annuler l’envoi de Brouillon.pdf"]`)
	alice.until("upload cancelled", `!document.querySelector('.msg.upload')`)
	alice.throttleUploads(n.URL(), 0, false)
	small := testPNG(t, 120, 90, false)
	js[bool](alice, fmt.Sprintf(`(() => {
		const dt = new DataTransfer();
		dt.items.add(new File([Uint8Array.from(atob(%q), c => c.charCodeAt(0))], 'capture.png', {type: 'image/png'}));
		document.querySelector('.composer textarea').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
		return true;
	})()`, base64.StdEncoding.EncodeToString(small)))
	bob.hasText(`.msg:not(.mine) .file-picture .file-name`, "capture.png")
	bob.hasText(`.room-item[data-room="`+room+`"] .room-preview`, "Fichier : capture.png")
	if js[bool](bob, `[...document.querySelectorAll('.file-name')].some(e => e.textContent.includes('Brouillon'))`) {
		t.Error("the cancelled upload was posted")
	}

}

// TestFilesEncryptedDM: in an encrypted direct conversation on a node
// that scans encrypted files, Alice sends a picture with the file picker:
// it is encrypted in her browser ("relais file v1"), its key sealed to the
// node's scanner key (X-Wing HPKE), and the antivirus passes it. Bob sees
// the preview decrypted from the message and downloads the picture,
// decrypted, byte for byte. The node's data directory holds neither the
// picture nor its name.
func TestFilesEncryptedDM(t *testing.T) {
	av := clamdtest.Start(t, clamdtest.Options{})
	n := startFilesNode(t, av, nodetest.WithConfig(func(c *config.Config) { c.ScanEncrypted = true }))
	alice, bob, _, _ := encryptedDM(t, n, "Voici le plan")
	// The room says that its files are not for its members' eyes only.
	alice.until("scanning notice", `!!document.querySelector('.room[data-scanning="true"] .room-sub [data-notice="scanned"]')`)
	alice.hasText(`.room-sub [data-notice="scanned"]`, "Fichiers vus par l’antivirus")

	const name = "PLAN-CONFIDENTIEL-6627.png"
	pic := testPNG(t, 800, 600, true)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, pic, 0o600); err != nil {
		t.Fatal(err)
	}
	alice.run("pick the picture", chromedp.SetUploadFiles(chromedp.CSS(".composer .attach-input"), []string{path}))
	alice.until("picture posted", `!document.querySelector('.msg.upload') && !!document.querySelector('.msg.mine .file-picture img[src^="blob:"]')`)

	bob.until("decrypted preview", `(() => { const i = document.querySelector('.msg:not(.mine) .file-picture[data-file-state="clean"] img'); return !!i && i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0 })()`)
	if w, h := js[float64](bob, `document.querySelector('.msg:not(.mine) .file-picture img').naturalWidth`), js[float64](bob, `document.querySelector('.msg:not(.mine) .file-picture img').naturalHeight`); w != 320 || h != 240 {
		t.Errorf("thumbnail of %v×%v, want 320×240", w, h)
	}
	bob.hasText(`.msg:not(.mine) .file-picture .file-name`, name)
	bob.shot("encrypted-picture-received")
	alice.shot("encrypted-picture-sent")

	// Full screen: the whole picture, downloaded and decrypted, not the
	// thumbnail; Escape closes it.
	bob.click(`.msg:not(.mine) .file-picture .picture-open`)
	bob.until("the whole picture full screen", `(() => { const i = document.querySelector('.viewer[role="dialog"] img'); return !!i && i.src.startsWith('blob:') && i.complete && i.naturalWidth === 800 && i.naturalHeight === 600 })()`)
	bob.hasText(`.viewer .file-name`, name)
	bob.shot("encrypted-picture-full-screen")
	bob.run("Escape", chromedp.KeyEvent(kb.Escape))
	bob.until("viewer closed", `!document.querySelector('.viewer')`)

	dir := t.TempDir()
	bob.downloadsTo(dir)
	bob.click(`.msg:not(.mine) .file-picture .file-download`)
	if got := downloaded(t, dir, name, len(pic)); !bytes.Equal(got, pic) {
		t.Fatal("the downloaded picture differs from the one sent")
	}

	// The node has the ciphertext only: neither the picture's bytes (any
	// 64-byte piece of it) nor its name are in its data directory.
	data := filepath.Dir(n.DB.Path())
	alice.allowNet.Store(true)
	bob.allowNet.Store(true)
	n.Stop()
	needles := map[string][]byte{"the name": []byte("PLAN-CONFIDENTIEL-6627")}
	for i := 0; i+64 <= len(pic); i += len(pic) / 16 {
		needles[fmt.Sprintf("bytes %d–%d of the picture", i, i+64)] = pic[i : i+64]
	}
	blobs := 0
	eachDataFile(t, data, func(rel string, b []byte) {
		if bytes.HasPrefix(b, []byte("RELAISF1")) {
			blobs++
		}
		for what, needle := range needles {
			if bytes.Contains(b, needle) {
				t.Errorf("%s found on the node in %s", what, rel)
			}
		}
	})
	if blobs == 0 {
		t.Fatal("no encrypted file on the node: the search looked in the wrong place")
	}
}

// sealedVectorPath is the vector the web client's unit tests check their
// "relais file v1" code and their scanner sealing against.
const sealedVectorPath = "web/test/vectors/sealed-v1.json"

type sealedVector struct {
	Comment string `json:"comment"`
	Key     string `json:"key"`
	Cases   []struct {
		Size   int    `json:"size"`
		SHA256 string `json:"ciphertext_sha256"`
	} `json:"cases"`
	Small struct {
		Size       int    `json:"size"`
		Ciphertext string `json:"ciphertext"`
	} `json:"small"`
	Scanner struct {
		Seed      string `json:"seed"`
		PublicKey string `json:"public_key"`
		Enc       string `json:"enc"`
		Sealed    string `json:"sealed"`
		FileKey   string `json:"file_key"`
	} `json:"scanner"`
}

// vectorPlain is the plaintext of the vector's cases: byte i is i·31+7.
func vectorPlain(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + 7)
	}
	return b
}

// TestSealedFileVector checks web/test/vectors/sealed-v1.json against the
// Go code of server/media: the encrypted files, byte for byte, and the
// file key sealed to a scanner key, which must open. With
// RELAIS_WRITE_VECTORS=1 it writes the file instead.
func TestSealedFileVector(t *testing.T) {
	path := filepath.Join(repoRoot(t), sealedVectorPath)
	encrypt := func(key []byte, n int) []byte {
		var ct bytes.Buffer
		if err := media.EncryptFile(&ct, bytes.NewReader(vectorPlain(n)), key); err != nil {
			t.Fatal(err)
		}
		return ct.Bytes()
	}
	scannerKey := func(seed []byte) *media.ScannerKey {
		p := filepath.Join(t.TempDir(), "scanner.key")
		if err := os.WriteFile(p, fmt.Appendf(nil, `{"kem":%d,"private":%q}`, 0x647a, base64.StdEncoding.EncodeToString(seed)), 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := media.OpenScannerKey(p)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	sizes := []int{0, 1, 65535, 65536, 65537, 3*65536 + 17}

	if os.Getenv("RELAIS_WRITE_VECTORS") == "1" {
		var v sealedVector
		v.Comment = "relais file v1 (server/media/sealed.go), written by go test -run TestSealedFileVector ./server/webtest/ with RELAIS_WRITE_VECTORS=1; plaintext byte i = (i*31+7) mod 256"
		key := make([]byte, 32)
		for i := range key {
			key[i] = byte(i*7 + 1)
		}
		v.Key = hex.EncodeToString(key)
		for _, n := range sizes {
			sum := sha256.Sum256(encrypt(key, n))
			v.Cases = append(v.Cases, struct {
				Size   int    `json:"size"`
				SHA256 string `json:"ciphertext_sha256"`
			}{n, hex.EncodeToString(sum[:])})
		}
		v.Small.Size = 100
		v.Small.Ciphertext = base64.StdEncoding.EncodeToString(encrypt(key, 100))
		seed := make([]byte, 32)
		for i := range seed {
			seed[i] = byte(200 - i)
		}
		sk := scannerKey(seed)
		enc, sealed, err := media.SealFileKey(sk.PublicKey(), key)
		if err != nil {
			t.Fatal(err)
		}
		v.Scanner.Seed = hex.EncodeToString(seed)
		v.Scanner.PublicKey = base64.StdEncoding.EncodeToString(sk.PublicKey())
		v.Scanner.Enc = base64.StdEncoding.EncodeToString(enc)
		v.Scanner.Sealed = base64.StdEncoding.EncodeToString(sealed)
		v.Scanner.FileKey = v.Key
		b, _ := json.MarshalIndent(v, "", "  ")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (write it with RELAIS_WRITE_VECTORS=1)", err)
	}
	var v sealedVector
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	key, _ := hex.DecodeString(v.Key)
	if len(v.Cases) != len(sizes) {
		t.Fatalf("%d cases, want %d", len(v.Cases), len(sizes))
	}
	for _, c := range v.Cases {
		sum := sha256.Sum256(encrypt(key, c.Size))
		if hex.EncodeToString(sum[:]) != c.SHA256 {
			t.Errorf("size %d: the Go ciphertext's SHA-256 differs from the vector", c.Size)
		}
	}
	if got := base64.StdEncoding.EncodeToString(encrypt(key, v.Small.Size)); got != v.Small.Ciphertext {
		t.Error("the small ciphertext differs from the vector")
	}
	seed, _ := hex.DecodeString(v.Scanner.Seed)
	sk := scannerKey(seed)
	if base64.StdEncoding.EncodeToString(sk.PublicKey()) != v.Scanner.PublicKey {
		t.Error("the scanner public key of the seed differs from the vector")
	}
	enc, _ := base64.StdEncoding.DecodeString(v.Scanner.Enc)
	sealed, _ := base64.StdEncoding.DecodeString(v.Scanner.Sealed)
	fk, err := sk.OpenSealedKey(enc, sealed)
	if err != nil || hex.EncodeToString(fk) != v.Scanner.FileKey {
		t.Errorf("the sealed file key of the vector does not open: %v", err)
	}
}
