// Package buildinfo tells which build of relais is running.
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// Set at link time by release builds:
//
//	-ldflags "-X relais/server/buildinfo.version=v1.2.3 -X relais/server/buildinfo.commit=… -X relais/server/buildinfo.date=…"
var version, commit, date string

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"go"`
}

var get = sync.OnceValue(func() Info {
	i := Info{Version: version, Commit: commit, Date: date}
	if bi, ok := debug.ReadBuildInfo(); ok {
		i.GoVersion = bi.GoVersion
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && i.Commit == "":
				i.Commit = s.Value
			case s.Key == "vcs.time" && i.Date == "":
				i.Date = s.Value
			case s.Key == "vcs.modified" && s.Value == "true" && i.Commit != "":
				i.Commit += "-dirty"
			}
		}
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	return i
})

// Get returns the build's description.
func Get() Info { return get() }
