package webtest

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	webembed "relais/embed"
)

// clearField empties an input or textarea the way a person would (select
// all, delete), so that the page sees the input events.
func clearField(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const e = document.querySelector(`+jsString(sel)+`); e.focus(); e.select(); return true })()`)); err != nil {
			return err
		}
		return chromedp.Do(ctx, chromedp.KeyEvent("\b"))
	})
}

func jsString(s string) string {
	b := []byte{'"'}
	for _, r := range s {
		switch r {
		case '"', '\\':
			b = append(b, '\\', byte(r))
		default:
			b = append(b, string(r)...)
		}
	}
	return string(append(b, '"'))
}

func reload() chromedp.Action[chromedp.Void] { return chromedp.Reload() }

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p*float64(len(s)-1) + 0.5)
	return s[min(i, len(s)-1)]
}

var assetRef = regexp.MustCompile(`(?:src|href)="(/assets/[^"]+\.js)"`)

// initialJSGzipKB sums the gzipped size of the scripts index.html loads.
func initialJSGzipKB(t *testing.T) float64 {
	t.Helper()
	web := webembed.Web()
	html, err := fs.ReadFile(web, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, m := range assetRef.FindAllStringSubmatch(string(html), -1) {
		gz, err := fs.ReadFile(web, m[1][1:]+".gz")
		if err != nil {
			t.Fatalf("%s has no .gz sibling: %v", m[1], err)
		}
		total += len(gz)
	}
	if total == 0 {
		t.Fatal("index.html loads no script")
	}
	return float64(total) / 1024
}

func writeArtifact(t *testing.T, name, content string) {
	dir := filepath.Join(repoRoot(t), "test-artifacts")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Errorf("write %s: %v", name, err)
	}
}

// eachDataFile calls fn with the path (relative to dir) and the contents
// of every file under dir: what a stopped node keeps on its disk.
func eachDataFile(t *testing.T, dir string, fn func(rel string, data []byte)) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fn(strings.TrimPrefix(p, dir+"/"), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
