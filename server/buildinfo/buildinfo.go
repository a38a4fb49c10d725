// Package buildinfo tells which build of relais is running.
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// Set at link time by release builds (go run ./packaging):
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
	bi, _ := debug.ReadBuildInfo()
	return resolve(version, commit, date, bi)
})

// Get returns the build's description.
func Get() Info { return get() }

// resolve takes each field from the link-time stamp, else from what the
// Go toolchain recorded (module version, VCS settings), else says "dev"
// for the version and "unknown" for the commit and the date.
func resolve(version, commit, date string, bi *debug.BuildInfo) Info {
	i := Info{Version: version, Commit: commit, Date: date}
	if bi != nil {
		i.GoVersion = bi.GoVersion
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		stamped := i.Commit != ""
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && !stamped:
				i.Commit = s.Value
			case s.Key == "vcs.time" && i.Date == "":
				i.Date = s.Value
			}
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.modified" && s.Value == "true" && !stamped && i.Commit != "" {
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
	if i.Date == "" {
		i.Date = "unknown"
	}
	if i.GoVersion == "" {
		i.GoVersion = "unknown"
	}
	return i
}
