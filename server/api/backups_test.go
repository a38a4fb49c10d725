package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"relais/cluster/nodetest"
	"relais/server/chat"
	"relais/server/client"
)

// TestBackupEndpoints: encrypted key backups are opaque bytes per user,
// over plain HTTP.
func TestBackupEndpoints(t *testing.T) {
	n := nodetest.Start(t)
	alice := n.NewUser("Alice Sauvegarde")
	bob := n.NewUser("Bob Sauvegarde")
	do := func(c *client.Client, method, path, ctype string, body []byte, hdr ...string) (int, []byte) {
		t.Helper()
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		req, err := http.NewRequest(method, n.URL()+path, r)
		if err != nil {
			t.Fatal(err)
		}
		if c != nil {
			req.Header.Set("Authorization", "Bearer "+c.Token())
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	const bin = "application/octet-stream"
	sealed := []byte("\x00\x01 opaque ciphertext \xff")

	for _, c := range []struct {
		name   string
		who    *client.Client
		method string
		path   string
		ctype  string
		body   []byte
		hdr    []string
		want   int
	}{
		{"put", alice, "PUT", "/api/v1/backups/groups.v1", bin, sealed, nil, http.StatusNoContent},
		{"put without a session", nil, "PUT", "/api/v1/backups/groups.v1", bin, sealed, nil, http.StatusUnauthorized},
		{"put as JSON", alice, "PUT", "/api/v1/backups/groups.v1", "application/json", []byte(`{}`), nil, http.StatusUnsupportedMediaType},
		{"put a bad name", alice, "PUT", "/api/v1/backups/.hidden", bin, sealed, nil, http.StatusBadRequest},
		{"put too big", alice, "PUT", "/api/v1/backups/big", bin, make([]byte, chat.MaxBackupSize+1), nil, http.StatusRequestEntityTooLarge},
		{"put from another site", alice, "PUT", "/api/v1/backups/groups.v1", bin, sealed, []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"get", alice, "GET", "/api/v1/backups/groups.v1", "", nil, nil, http.StatusOK},
		{"get someone else's", bob, "GET", "/api/v1/backups/groups.v1", "", nil, nil, http.StatusNotFound},
		{"delete someone else's", bob, "DELETE", "/api/v1/backups/groups.v1", "", nil, nil, http.StatusNotFound},
	} {
		code, body := do(c.who, c.method, c.path, c.ctype, c.body, c.hdr...)
		if code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.want)
		}
		if c.name == "get" && !bytes.Equal(body, sealed) {
			t.Errorf("get: %q, want %q", body, sealed)
		}
	}
	code, body := do(alice, "GET", "/api/v1/backups", "", nil)
	var list struct {
		Backups []chat.BackupInfo `json:"backups"`
	}
	if err := json.Unmarshal(body, &list); err != nil || code != http.StatusOK {
		t.Fatalf("list: %d %s", code, body)
	}
	if len(list.Backups) != 1 || list.Backups[0].Name != "groups.v1" || list.Backups[0].Size != len(sealed) || list.Backups[0].Updated == 0 {
		t.Fatalf("list = %+v", list.Backups)
	}
	if code, _ := do(alice, "DELETE", "/api/v1/backups/groups.v1", "", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := do(alice, "GET", "/api/v1/backups/groups.v1", "", nil); code != http.StatusNotFound {
		t.Fatalf("get after delete: %d", code)
	}
}
