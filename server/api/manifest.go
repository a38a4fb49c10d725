package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// manifestDescriptions are the web app manifest's description per
// language the client speaks.
var manifestDescriptions = map[string]string{
	"fr": "Messagerie sécurisée des administrations",
	"en": "Secure messaging for public administrations",
}

type manifestIcon struct {
	Src     string `json:"src"`
	Sizes   string `json:"sizes"`
	Type    string `json:"type"`
	Purpose string `json:"purpose,omitempty"`
}

// manifestIcons are the icons web/build.mjs draws into embed/dist.
var manifestIcons = []manifestIcon{
	{Src: "/icon.svg", Sizes: "any", Type: "image/svg+xml"},
	{Src: "/icon-192.png", Sizes: "192x192", Type: "image/png"},
	{Src: "/icon-512.png", Sizes: "512x512", Type: "image/png"},
	{Src: "/icon-maskable-512.png", Sizes: "512x512", Type: "image/png", Purpose: "maskable"},
}

// manifest serves the web app manifest. It is rendered by the node
// rather than built with the client because it carries the operator's
// --name, and its description follows the browser's language. Both
// renderings are made once, at start.
type manifest struct {
	byLang  map[string][]byte
	modTime time.Time
}

func newManifest(name string, modTime time.Time) (*manifest, error) {
	if name == "" {
		name = "Relais"
	}
	m := &manifest{byLang: map[string][]byte{}, modTime: modTime}
	for lang, description := range manifestDescriptions {
		data, err := json.MarshalIndent(map[string]any{
			"name":             name,
			"short_name":       name,
			"description":      description,
			"lang":             lang,
			"start_url":        "/",
			"scope":            "/",
			"display":          "standalone",
			"background_color": "#eef1f5",
			"theme_color":      "#1c55b8", // brand.bg in web/icons.mjs
			"icons":            manifestIcons,
		}, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("render the %s manifest: %w", lang, err)
		}
		m.byLang[lang] = append(data, '\n')
	}
	return m, nil
}

func (m *manifest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Type", "application/manifest+json")
	// Revalidated like the client's other unhashed files; caches must
	// keep one copy per language.
	hd.Set("Cache-Control", "no-cache")
	hd.Add("Vary", "Accept-Language")
	data := m.byLang[preferredLang(r.Header.Get("Accept-Language"))]
	http.ServeContent(w, r, "", m.modTime, bytes.NewReader(data))
}

// preferredLang picks the client language for an Accept-Language header:
// English when the header ranks it above French, French otherwise (the
// default, also for a header naming neither or one that does not parse).
func preferredLang(header string) string {
	fr, en := -1.0, -1.0
	for i, part := range strings.Split(header, ",") {
		if i >= 32 {
			break // a real browser sends a handful; the rest is noise
		}
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || !(f >= 0 && f <= 1) { // NaN too
				continue
			}
			q = f
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		switch primary {
		case "fr":
			fr = max(fr, q)
		case "en":
			en = max(en, q)
		}
	}
	if en > 0 && en > fr {
		return "en"
	}
	return "fr"
}
