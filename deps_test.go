package main

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// A depRule is one rule of the import graph; it returns the edges or
// packages that break it.
type depRule struct {
	name  string
	check func(g depGraph) []string
}

// depGraph is what `go list -deps` says of the module: each package's
// direct imports, and the packages linked into the relais binary.
type depGraph struct {
	imports map[string][]string // package → its direct imports
	binary  []string            // every package the relais command links
}

const module = "relais"

func internal(p string) bool { return p == module || strings.HasPrefix(p, module+"/") }

// under reports whether p is dir or a package below it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// importers lists the internal packages that import a package for
// which forbidden is true, except those allowed, as "importer → imported".
func importers(g depGraph, forbidden func(string) bool, allowed func(string) bool) []string {
	var bad []string
	for p, imps := range g.imports {
		if !internal(p) || allowed(p) {
			continue
		}
		for _, imp := range imps {
			if forbidden(imp) {
				bad = append(bad, p+" → "+imp)
			}
		}
	}
	slices.Sort(bad)
	return bad
}

var depRules = []depRule{
	{"store, proto and id import nothing internal but id", func(g depGraph) []string {
		leaves := []string{module + "/server/store", module + "/server/proto", module + "/server/id"}
		return importers(g,
			func(imp string) bool { return internal(imp) && imp != module+"/server/id" },
			func(p string) bool { return !slices.Contains(leaves, p) })
	}},
	{"only store imports bbolt", func(g depGraph) []string {
		return importers(g,
			func(imp string) bool { return under(imp, "go.etcd.io/bbolt") },
			func(p string) bool { return p == module+"/server/store" })
	}},
	{"only cluster imports NATS", func(g depGraph) []string {
		return importers(g,
			func(imp string) bool { return strings.HasPrefix(imp, "github.com/nats-io/") },
			func(p string) bool { return under(p, module+"/cluster") })
	}},
	{"nothing under server imports cluster", func(g depGraph) []string {
		return importers(g,
			func(imp string) bool { return under(imp, module+"/cluster") },
			func(p string) bool { return !under(p, module+"/server") })
	}},
	{"account knows no HTTP", func(g depGraph) []string {
		return importers(g,
			func(imp string) bool { return under(imp, "net/http") },
			func(p string) bool { return p != module+"/server/account" })
	}},
	{"the relais binary does not link nfpm", func(g depGraph) []string {
		var bad []string
		for _, p := range g.binary {
			if under(p, "github.com/goreleaser/nfpm/v2") {
				bad = append(bad, p)
			}
		}
		return bad
	}},
	{"only packaging imports nfpm", func(g depGraph) []string {
		return importers(g,
			func(imp string) bool { return under(imp, "github.com/goreleaser/nfpm/v2") },
			func(p string) bool { return p == module+"/packaging" })
	}},
	{"no test helper is linked into the relais binary", func(g depGraph) []string {
		var bad []string
		for _, p := range g.binary {
			if internal(p) && strings.HasSuffix(p, "test") {
				bad = append(bad, p)
			}
		}
		return bad
	}},
}

// TestDependencyRules checks the module's real import graph against the
// rules: a forbidden import added anywhere fails here, with its edge.
func TestDependencyRules(t *testing.T) {
	g := loadDepGraph(t)
	for _, r := range depRules {
		t.Run(r.name, func(t *testing.T) {
			if bad := r.check(g); len(bad) > 0 {
				t.Errorf("%s is broken by:\n  %s", r.name, strings.Join(bad, "\n  "))
			}
		})
	}
}

// TestDependencyRulesCatchForbiddenImports feeds each rule a graph with
// one forbidden import added to an allowed one, so that a rule that
// cannot fail would fail here.
func TestDependencyRulesCatchForbiddenImports(t *testing.T) {
	clean := depGraph{
		imports: map[string][]string{
			"relais":                {"relais/cluster", "relais/server/node"},
			"relais/cluster":        {"github.com/nats-io/nats-server/v2/server", "relais/server/bus"},
			"relais/server/node":    {"relais/server/store", "relais/server/bus"},
			"relais/server/store":   {"go.etcd.io/bbolt", "relais/server/id"},
			"relais/server/proto":   {"relais/server/id"},
			"relais/server/account": {"relais/server/store", "relais/server/proto"},
		},
		binary: []string{"relais", "relais/cluster", "relais/server/node", "relais/server/store"},
	}
	cases := []struct {
		rule     string
		importer string
		imported string
		linked   bool // the forbidden package is linked into the binary instead
	}{
		{"store, proto and id import nothing internal but id", "relais/server/proto", "relais/server/store", false},
		{"store, proto and id import nothing internal but id", "relais/server/store", "relais/server/chat", false},
		{"only store imports bbolt", "relais/server/node", "go.etcd.io/bbolt/errors", false},
		{"only cluster imports NATS", "relais/server/node", "github.com/nats-io/nats.go", false},
		{"nothing under server imports cluster", "relais/server/node", "relais/cluster", false},
		{"account knows no HTTP", "relais/server/account", "net/http", false},
		{"account knows no HTTP", "relais/server/account", "net/http/cookiejar", false},
		{"no test helper is linked into the relais binary", "", "relais/server/media/mediatest", true},
		{"the relais binary does not link nfpm", "", "github.com/goreleaser/nfpm/v2/deb", true},
		{"only packaging imports nfpm", "relais/server/node", "github.com/goreleaser/nfpm/v2", false},
	}
	for _, c := range cases {
		t.Run(c.rule+": "+c.importer+" → "+c.imported, func(t *testing.T) {
			r := findRule(t, c.rule)
			if bad := r.check(clean); len(bad) > 0 {
				t.Fatalf("the clean graph already breaks the rule: %v", bad)
			}
			g := depGraph{imports: map[string][]string{}, binary: slices.Clone(clean.binary)}
			for p, imps := range clean.imports {
				g.imports[p] = slices.Clone(imps)
			}
			if c.linked {
				g.binary = append(g.binary, c.imported)
			} else {
				g.imports[c.importer] = append(g.imports[c.importer], c.imported)
			}
			if bad := r.check(g); len(bad) == 0 {
				t.Fatalf("the rule let %s → %s through", c.importer, c.imported)
			}
		})
	}
}

func findRule(t *testing.T, name string) depRule {
	t.Helper()
	for _, r := range depRules {
		if r.name == name {
			return r
		}
	}
	t.Fatalf("no rule %q", name)
	return depRule{}
}

// loadDepGraph runs go list on the module: every package with its direct
// imports (tests' own imports left out: test helpers may use anything),
// and the dependencies of the relais command.
func loadDepGraph(t *testing.T) depGraph {
	t.Helper()
	g := depGraph{imports: map[string][]string{}}
	for _, p := range goList(t, "./...") {
		g.imports[p.ImportPath] = p.Imports
	}
	for _, p := range goList(t, "-deps", ".") {
		g.binary = append(g.binary, p.ImportPath)
	}
	return g
}

type listedPackage struct {
	ImportPath string
	Imports    []string
}

func goList(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Imports"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("go list %v: %v", args, err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}
