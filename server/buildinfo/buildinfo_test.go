package buildinfo

import (
	"runtime/debug"
	"testing"
)

// TestBuildInfoFallsBackToGoThenUnknown: the link-time stamp wins, then
// what Go recorded, then "dev"/"unknown": `relais version` always prints
// a version, a commit and a date.
func TestBuildInfoFallsBackToGoThenUnknown(t *testing.T) {
	vcs := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-12-02T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	cases := []struct {
		name                  string
		version, commit, date string
		bi                    *debug.BuildInfo
		want                  Info
	}{
		{"stamped", "1.2.3", "f3df13e", "2026-12-01T00:00:00Z", vcs,
			Info{"1.2.3", "f3df13e", "2026-12-01T00:00:00Z", "go1.26.8"}},
		{"from the VCS settings", "", "", "", vcs,
			Info{"dev", "abc123-dirty", "2026-12-02T10:00:00Z", "go1.26.8"}},
		{"module version", "", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}},
			Info{"v1.4.0", "unknown", "unknown", "go1.26.8"}},
		{"nothing recorded (-buildvcs=false)", "", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			Info{"dev", "unknown", "unknown", "go1.26.8"}},
		{"no build info at all", "", "", "", nil, Info{"dev", "unknown", "unknown", "unknown"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := resolve(c.version, c.commit, c.date, c.bi); got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
