// Command packaging builds what a release of Relais ships: static,
// reproducible binaries for linux/amd64 and linux/arm64, a .deb and a .rpm
// for each (binary, hardened systemd unit, default configuration,
// maintainer scripts), a tarball per architecture and SHA256SUMS.
//
//	go run ./packaging [-out dist] [-version 1.2.3] [-arch amd64,arm64]
//
// Two runs on one commit give identical bytes: nothing depends on the
// time, the machine or the path of the checkout. It is a main package of
// its own so that nfpm is never linked into relais.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	var o Options
	var archs string
	fs := flag.NewFlagSet("packaging", flag.ContinueOnError)
	fs.StringVar(&o.Out, "out", "dist", "output directory (created; files of the same names are replaced)")
	fs.StringVar(&o.Version, "version", "", "version to stamp and package (default: git describe of a v* tag, else 0.0.0+git<commit time>.<short commit>)")
	fs.StringVar(&archs, "arch", "amd64,arm64", "comma-separated GOARCH values")
	fs.StringVar(&o.Root, "root", ".", "the module's root (the checkout)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: go run ./packaging [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "packaging: unexpected argument %q (see go run ./packaging --help)\n", fs.Arg(0))
		os.Exit(2)
	}
	o.Archs = strings.Split(archs, ",")
	arts, err := Build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "packaging:", err)
		os.Exit(1)
	}
	for _, a := range arts {
		fmt.Println(a)
	}
}
