package admin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"relais/server/fed"
)

const federationUsage = `usage: relais federation [--data DIR] COMMAND

Peering two administrations takes three commands, each token good once:
  A: relais federation invite          prints an invitation token (24 h)
  B: relais federation add TOKEN       pins A, prints a reply token
  A: relais federation add REPLY       pins B: the link comes up

  list                                 peers: id, name, domains, link state, last contact
  remove ID                            unpin a peer: its link closes at once (stored data stays)
`

// FederationCommand runs `relais federation …` against the running node
// whose data directory --data names (default dataDir).
func FederationCommand(args []string, dataDir string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relais federation", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", dataDir, "data directory of the running node")
	fs.Usage = func() { fmt.Fprint(fs.Output(), federationUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	a := fs.Args()
	if len(a) == 0 {
		fs.Usage()
		return errors.New("missing command")
	}
	c := Dial(*data)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch {
	case a[0] == "invite" && len(a) == 1:
		var out struct{ Token string }
		if err := c.Do(ctx, "POST", "/federation/invite", struct{}{}, &out); err != nil {
			return err
		}
		fmt.Fprintln(stdout, out.Token)
		fmt.Fprintln(stderr, "hand this token to the other administration (good once, for 24 hours); it runs `relais federation add TOKEN` and hands you back its reply")
	case a[0] == "add" && len(a) == 2:
		var out fed.Added
		if err := c.Do(ctx, "POST", "/federation/add", map[string]string{"token": a[1]}, &out); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "pinned %s (%s), domains %s\n", out.Peer.ID, out.Peer.Name, strings.Join(out.Peer.Domains, ","))
		if out.Reply != "" {
			fmt.Fprintln(stdout, out.Reply)
			fmt.Fprintln(stderr, "hand this reply token back: peering is complete once the other side adds it")
		} else {
			fmt.Fprintln(stdout, "ok: peering complete")
		}
	case a[0] == "list" && len(a) == 1:
		var peers []fed.PeerInfo
		if err := c.Do(ctx, "GET", "/federation/peers", nil, &peers); err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tNAME\tDOMAINS\tLINK\tLAST CONTACT\tPENDING\tLAG")
		for _, p := range peers {
			last := "never"
			if !p.LastContact.IsZero() {
				last = p.LastContact.UTC().Format(time.RFC3339)
			}
			lag := "-"
			if p.Lag != nil {
				lag = fmt.Sprint(*p.Lag)
			}
			state := p.State
			if p.Dials {
				state += " (dials)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", p.ID, p.Name, strings.Join(p.Domains, ","), state, last, p.Pending, lag)
		}
		return w.Flush()
	case a[0] == "remove" && len(a) == 2:
		if err := c.Do(ctx, "POST", "/federation/remove", map[string]string{"id": a[1]}, nil); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "ok: link closed, peer unpinned")
	default:
		fs.Usage()
		return fmt.Errorf("unknown federation command %q", strings.Join(a, " "))
	}
	return nil
}
