package ws_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/mls"
	"relais/server/mls/mlsframe"
	"relais/server/proto"
)

func gcm(t testing.TB, key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

// seal encrypts plaintext with AES-256-GCM under key: nonce | ciphertext.
func seal(t testing.TB, key, plaintext []byte) []byte {
	aead := gcm(t, key)
	nonce := mlsframe.Random(aead.NonceSize())
	return aead.Seal(nonce, nonce, plaintext, nil)
}

func unseal(t testing.TB, key, sealed []byte) []byte {
	aead := gcm(t, key)
	n := aead.NonceSize()
	pt, err := aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return pt
}

// backupReq makes a request on the backup endpoints.
func backupReq(t testing.TB, c *client.Client, method, name string, body []byte) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.URL()+"/api/v1/backups"+name, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token())
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestNoPlaintextAtRest holds an encrypted conversation through the node —
// clients encrypt with a key the node never sees, as MLS does, and put the
// ciphertext in valid MLS framing — and stores an encrypted history
// backup, then scans every file of the node's data directory, the bbolt
// file byte by byte included: no plaintext marker is there in any common
// encoding, while the ciphertext is (so the scan does read the store).
func TestNoPlaintextAtRest(t *testing.T) {
	n := nodetest.Start(t)
	alice := newDev(t, n, "Alice Secret")
	bob := newDev(t, n, "Bob Secret")
	room := newGroup(t, "Cellule confidentielle", alice, bob)
	dataDir := filepath.Dir(n.DB.Path())

	// The key the group's epoch gives both clients; the node never has it.
	key := mlsframe.Random(32)
	var markers, stored []string
	for i := range 20 {
		marker := fmt.Sprintf("MARQUEUR-SECRET-%02d-%s réunion du préfet à huis clos", i, hex.EncodeToString(mlsframe.Random(8)))
		markers = append(markers, marker)
		msg := b64(mlsframe.Application(room, 1, seal(t, key, []byte(marker))))
		stored = append(stored, msg)
		sender := alice
		if i%2 == 1 {
			sender = bob
		}
		if _, e := sender.ack("send", map[string]any{"room": room, "type": "encrypted", "data": msg}); e != nil {
			t.Fatal(e)
		}
	}
	// Reactions and edits in clear are refused: they travel encrypted.
	for _, clear := range []map[string]any{
		{"room": room, "type": "react", "target": 1, "key": "👍"},
		{"room": room, "type": "edit", "target": 1, "body": "en clair"},
		{"room": room, "type": "text", "body": "en clair"},
	} {
		if _, e := bob.ack("send", clear); e == nil || e.Code != proto.CodeForbidden {
			t.Fatalf("send %v in an encrypted room: %v, want forbidden", clear["type"], e)
		}
	}

	// A commit in between, and messages of the next epoch under a new key.
	bob.mustCommit(room, 1, nil)
	key2 := mlsframe.Random(32)
	marker := "MARQUEUR-SECRET-EPOQUE-2-" + hex.EncodeToString(mlsframe.Random(8))
	markers = append(markers, marker)
	if _, e := alice.sendApp(room, 2, seal(t, key2, []byte(marker))); e != nil {
		t.Fatal(e)
	}

	// Bob receives what alice sent and decrypts it with the key he holds.
	got := map[string]bool{}
	nodetest.CheckFor(t, 10*time.Second, func() error {
		for _, f := range bob.events(room) {
			if f.Type != proto.EvEncrypted || f.From != alice.id() {
				continue
			}
			var ev proto.Event
			decodeRaw(t, f, &ev)
			msg := unb64(t, ev.Data)
			m, err := mls.ParseMessage(msg)
			if err != nil {
				t.Fatal(err)
			}
			k := key
			if m.Epoch == 2 {
				k = key2
			}
			got[string(unseal(t, k, mlsframe.Ciphertext(msg)))] = true
		}
		if len(got) != 11 {
			return fmt.Errorf("bob decrypted %d of alice's 11 messages", len(got))
		}
		return nil
	})
	for i, m := range markers {
		if (i%2 == 0 || i == len(markers)-1) && !got[m] {
			t.Fatalf("bob did not get %q", m)
		}
	}

	// An encrypted history backup, under a key derived from the user's
	// recovery key.
	recovery := mlsframe.Random(32)
	backupKey, err := hkdf.Key(sha256.New, recovery, nil, "relais backup v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	history, _ := json.Marshal(markers)
	sealedBackup := seal(t, backupKey, history)
	if code, body := backupReq(t, alice.c, "PUT", "/history", sealedBackup); code != http.StatusNoContent {
		t.Fatalf("backup: %d %s", code, body)
	}
	if code, body := backupReq(t, alice.c, "GET", "/history", nil); code != http.StatusOK || !bytes.Equal(unseal(t, backupKey, body), history) {
		t.Fatalf("backup read back: %d", code)
	}

	n.Stop() // everything on disk, nothing in memory
	var needles [][]byte
	for _, m := range markers {
		for _, form := range []string{m, base64.StdEncoding.EncodeToString([]byte(m)), hex.EncodeToString([]byte(m)), strings.ToUpper(m)} {
			needles = append(needles, []byte(form))
		}
		// And its ASCII head alone, in case an encoding changed the
		// accented rest.
		needles = append(needles, []byte(m[:24]))
	}
	files := 0
	err = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, needle := range needles {
			if bytes.Contains(b, needle) {
				t.Errorf("%s holds plaintext %q", path, needle)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scanned %d files under the data directory for %d needles", files, len(needles))
	// Control: the ciphertexts are there, in the bbolt file.
	db, err := os.ReadFile(filepath.Join(dataDir, "relais.db"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(db, sealedBackup) {
		t.Error("the backup's ciphertext is not in the store: the scan reads nothing")
	}
	for _, msg := range stored {
		if !bytes.Contains(db, []byte(msg)) {
			t.Fatal("a message's ciphertext is not in the store: the scan reads nothing")
		}
	}
}
