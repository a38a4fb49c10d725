// Package embed holds the built web client, so that the node serves it
// from its own binary. web/ builds into embed/dist; the build output is
// committed so that building the node needs no Node.js.
package embed

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Web returns the built web client (index.html, assets/, …).
func Web() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err)
	}
	return sub
}
