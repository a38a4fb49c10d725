package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"relais/cluster/nodetest"
	webembed "relais/embed"
	"relais/server/config"
	"relais/server/node"
)

// TestManifestCarriesNodeNameInUsersLanguage: the web app manifest the
// node serves names the service as the operator configured it (--name),
// with a description in the language the browser prefers (French unless
// English is preferred), as application/manifest+json, revalidated like
// the client's other unhashed files, never cached by a shared cache
// across languages.
func TestManifestCarriesNodeNameInUsersLanguage(t *testing.T) {
	const name = `Mairie de Trifouilly <b>&</b>`
	n := nodetest.Start(t,
		nodetest.WithConfig(func(c *config.Config) { c.Name = name }),
		nodetest.WithOptions(func(o *node.Options) { o.Web = webembed.Web() }))
	cases := []struct {
		accept, lang, description string
	}{
		{"", "fr", "Messagerie sécurisée des administrations"},
		{"fr-FR,fr;q=0.9,en;q=0.8", "fr", "Messagerie sécurisée des administrations"},
		{"en-GB,en;q=0.9,fr;q=0.5", "en", "Secure messaging for public administrations"},
		{"en", "en", "Secure messaging for public administrations"},
		{"de-DE,de;q=0.9", "fr", "Messagerie sécurisée des administrations"},
		{"de,en;q=0.5,fr;q=0.4", "en", "Secure messaging for public administrations"},
		{"en;q=0,fr;q=0.1", "fr", "Messagerie sécurisée des administrations"},
	}
	for _, c := range cases {
		t.Run(c.accept, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, n.URL()+"/manifest.webmanifest", nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.accept != "" {
				req.Header.Set("Accept-Language", c.accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/manifest+json" {
				t.Errorf("Content-Type %q, want application/manifest+json", got)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache like the other unhashed files", got)
			}
			if got := resp.Header.Values("Vary"); !contains(got, "Accept-Language") {
				t.Errorf("Vary %q lacks Accept-Language", got)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			var m struct {
				Name        string `json:"name"`
				ShortName   string `json:"short_name"`
				Description string `json:"description"`
				Lang        string `json:"lang"`
				StartURL    string `json:"start_url"`
				Icons       []struct {
					Src string `json:"src"`
				} `json:"icons"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
				t.Fatalf("manifest is not JSON: %v", err)
			}
			if m.Name != name || m.ShortName != name {
				t.Errorf("name %q short_name %q, want %q", m.Name, m.ShortName, name)
			}
			if m.Description != c.description || m.Lang != c.lang {
				t.Errorf("description %q lang %q, want %q %q", m.Description, m.Lang, c.description, c.lang)
			}
			if m.StartURL != "/" || len(m.Icons) != 4 || m.Icons[0].Src != "/icon.svg" {
				t.Errorf("start_url %q icons %+v", m.StartURL, m.Icons)
			}
			for _, icon := range m.Icons {
				resp, err := http.Get(n.URL() + icon.Src)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "image/") {
					t.Errorf("icon %s: status %d, type %q", icon.Src, resp.StatusCode, resp.Header.Get("Content-Type"))
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
