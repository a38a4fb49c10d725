package tlsmgr

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// The trust page guides agents through installing the local CA, on the
// plain-HTTP port, because over HTTPS they would first meet the browser's
// "not private" warning that the CA is there to remove. Plain HTTP can be
// rewritten on the way, so the page's first step is to compare the
// fingerprint with one the administrator gave by another channel; the
// CA's name constraints bound what a substituted page could gain anyway.
const (
	trustPath   = "/trust"
	trustCAPath = "/trust/ca.crt"
)

// trustStyle is the page's only style, allowed by its hash so that the
// page needs no 'unsafe-inline'.
const trustStyle = `body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:0 auto;padding:1rem;color:#1b1f24;background:#fff}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}
code.fp{display:block;word-break:break-all;padding:.75rem;background:#f2f4f7;border-radius:.5rem;font-size:.95rem}
a.button{display:inline-block;padding:.6rem 1rem;border-radius:.5rem;background:#0b57d0;color:#fff;text-decoration:none;margin:.25rem 0}
details{margin:.5rem 0;padding:.5rem .75rem;border:1px solid #d0d5dd;border-radius:.5rem}summary{cursor:pointer;font-weight:600}
@media (prefers-color-scheme:dark){body{background:#14171a;color:#e6e8eb}code.fp{background:#23272d}details{border-color:#3a4048}}`

var trustCSP = "default-src 'none'; style-src 'sha256-" + styleHash(trustStyle) + "'; img-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

func styleHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(h[:])
}

type trustText struct {
	Lang, Title, Intro, Step1, Step1Detail, Step2, Download, Step3, Step4, Open, Why string
	Platforms                                                                        []trustPlatform
}

type trustPlatform struct{ Name, Steps string }

var trustTexts = map[string]trustText{
	"fr": {
		Lang:        "fr",
		Title:       "Faire confiance à ce serveur Relais",
		Intro:       "Ce serveur Relais n'a pas de nom public : il signe lui-même son certificat. Installez une fois son certificat d'autorité sur chaque appareil pour que le navigateur n'affiche plus « Votre connexion n'est pas privée ».",
		Step1:       "1. Comparez l'empreinte",
		Step1Detail: "Avant tout, vérifiez que cette empreinte est exactement celle que votre administrateur vous a communiquée (affiche, courriel, téléphone). Si elle diffère, n'installez rien et prévenez-le.",
		Step2:       "2. Téléchargez le certificat",
		Download:    "Télécharger ca.crt",
		Step3:       "3. Installez-le",
		Step4:       "4. Ouvrez Relais",
		Open:        "Ouvrir Relais",
		Why:         "Ce certificat ne peut garantir que les noms de ce serveur : il ne permet pas d'usurper un autre site.",
		Platforms: []trustPlatform{
			{"Windows (Edge, Chrome)", "Ouvrez ca.crt, cliquez « Installer le certificat », choisissez « Utilisateur actuel », puis « Placer tous les certificats dans le magasin suivant » : « Autorités de certification racines de confiance ». Redémarrez le navigateur."},
			{"macOS (Safari, Chrome)", "Ouvrez ca.crt : le Trousseau d'accès l'ajoute. Double-cliquez le certificat « Relais local CA », dépliez « Se fier » et choisissez « Toujours approuver »."},
			{"Firefox", "Paramètres → Vie privée et sécurité → Certificats → Afficher les certificats → Autorités → Importer, puis cochez « Confirmer cette AC pour identifier des sites web »."},
			{"Android", "Paramètres → Sécurité → Chiffrement et identifiants → Installer un certificat → Certificat CA, puis choisissez ca.crt."},
			{"iPhone, iPad", "Ouvrez cette page dans Safari et téléchargez ca.crt. Réglages → Profil téléchargé → Installer. Puis Réglages → Général → Informations → Réglages des certificats : activez la confiance totale pour ce certificat."},
			{"Linux (Chromium, Chrome)", "Paramètres → Confidentialité et sécurité → Sécurité → Gérer les certificats → Autorités → Importer ca.crt, cochez « Faire confiance à ce certificat pour identifier des sites web »."},
		},
	},
	"en": {
		Lang:        "en",
		Title:       "Trust this Relais server",
		Intro:       "This Relais server has no public name: it signs its own certificate. Install its authority certificate once on each device so that the browser stops saying \"Your connection is not private\".",
		Step1:       "1. Compare the fingerprint",
		Step1Detail: "First, check that this fingerprint is exactly the one your administrator gave you (poster, e-mail, phone). If it differs, install nothing and tell them.",
		Step2:       "2. Download the certificate",
		Download:    "Download ca.crt",
		Step3:       "3. Install it",
		Step4:       "4. Open Relais",
		Open:        "Open Relais",
		Why:         "This certificate can only vouch for this server's names: it cannot be used to impersonate any other site.",
		Platforms: []trustPlatform{
			{"Windows (Edge, Chrome)", "Open ca.crt, click \"Install Certificate\", choose \"Current User\", then \"Place all certificates in the following store\": \"Trusted Root Certification Authorities\". Restart the browser."},
			{"macOS (Safari, Chrome)", "Open ca.crt: Keychain Access adds it. Double-click the \"Relais local CA\" certificate, expand \"Trust\" and choose \"Always Trust\"."},
			{"Firefox", "Settings → Privacy & Security → Certificates → View Certificates → Authorities → Import, then tick \"Trust this CA to identify websites\"."},
			{"Android", "Settings → Security → Encryption & credentials → Install a certificate → CA certificate, then pick ca.crt."},
			{"iPhone, iPad", "Open this page in Safari and download ca.crt. Settings → Profile Downloaded → Install. Then Settings → General → About → Certificate Trust Settings: turn on full trust for this certificate."},
			{"Linux (Chromium, Chrome)", "Settings → Privacy and security → Security → Manage certificates → Authorities → Import ca.crt, tick \"Trust this certificate for identifying websites\"."},
		},
	},
}

var trustPage = template.Must(template.New("trust").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}}</title><style>{{.Style}}</style></head>
<body><main>
<h1>{{.Title}}</h1>
<p>{{.Intro}}</p>
<h2>{{.Step1}}</h2>
<p>{{.Step1Detail}}</p>
<code class="fp" id="fingerprint">SHA-256 {{.Fingerprint}}</code>
<h2>{{.Step2}}</h2>
<p><a class="button" id="download" href="` + trustCAPath + `" download="ca.crt">{{.Download}}</a></p>
<p>{{.Why}}</p>
<h2>{{.Step3}}</h2>
{{range .Platforms}}<details><summary>{{.Name}}</summary><p>{{.Steps}}</p></details>
{{end}}<h2>{{.Step4}}</h2>
<p><a class="button" id="open" href="{{.HTTPS}}">{{.Open}}</a></p>
<p lang="{{.OtherLang}}"><a href="?lang={{.OtherLang}}">{{.OtherName}}</a></p>
</main></body></html>
`))

// trustLang picks French or English from ?lang= or Accept-Language.
func trustLang(r *http.Request) string {
	if l := r.URL.Query().Get("lang"); l == "fr" || l == "en" {
		return l
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case tag == "fr" || strings.HasPrefix(tag, "fr-"):
			return "fr"
		case tag == "en" || strings.HasPrefix(tag, "en-"):
			return "en"
		}
	}
	return "fr"
}

// serveTrust answers the trust page and the CA download for one of the
// node's names (host, without port) in local mode; it reports false for
// any other path, which the caller redirects to HTTPS.
func (m *Manager) serveTrust(w http.ResponseWriter, r *http.Request, host string) bool {
	if m.mode != ModeLocal || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	switch r.URL.Path {
	case "/", trustPath:
	case trustCAPath:
		pem := m.CACertPEM()
		if pem == nil {
			return false
		}
		w.Header().Set("Content-Type", "application/x-x509-ca-cert")
		w.Header().Set("Content-Disposition", `attachment; filename="ca.crt"`)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(pem)
		return true
	default:
		return false
	}
	if r.URL.Path == "/" {
		// Not permanent: once the CA is trusted the browser follows HSTS
		// to HTTPS and never asks here again, and a 301 would be cached.
		http.Redirect(w, r, trustPath, http.StatusFound)
		return true
	}
	lang := trustLang(r)
	text := trustTexts[lang]
	other, otherName := "en", "English"
	if lang == "en" {
		other, otherName = "fr", "Français"
	}
	https := host
	if strings.Contains(https, ":") {
		https = "[" + https + "]"
	}
	if port := m.cfg.RedirectPort; port != 0 && port != 443 {
		https = net.JoinHostPort(host, strconv.Itoa(port))
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", trustCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Language")
	err := trustPage.Execute(w, struct {
		trustText
		Style                template.CSS
		Fingerprint, HTTPS   string
		OtherLang, OtherName string
	}{text, template.CSS(trustStyle), m.CAFingerprint(), "https://" + https + "/", other, otherName})
	if err != nil {
		m.log.Warn("trust page", "err", err)
	}
	return true
}
