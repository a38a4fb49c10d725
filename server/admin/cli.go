package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"relais/server/adminops"
	"relais/server/cli"
)

const adminUsage = `usage: relais admin [--data DIR] COMMAND

  users list                    ADDRESS says UNPROVEN for registrations nobody proved to read
  users approve EMAIL           activate a registration (no SMTP relay, or vouched for): check
                                with the person first, anyone can register any allowed address
  users deactivate EMAIL        sign out everywhere and block
  users reactivate EMAIL
  users reset-password EMAIL    sign out everywhere; prints a reset link
  users promote EMAIL           make an administrator
  domains list
  domains add DOMAIN…           a.gouv.fr, or *.gouv.fr for its sub-domains
  domains remove DOMAIN…
  invitations list              invitations of externals waiting (no SMTP relay)
  invitations approve EMAIL     prints the link to hand to the external
  setup-link                    prints a new one-time link to create the first administrator
  health                        the node's health details (version, TLS state, pins), as JSON
  audit [--action A] [--actor ID|cli] [--from T] [--to T] [--limit N] [--csv]
                                the audit log of administrative actions, newest first
`

// subcommand parses the flags of a command of the admin socket (`relais
// admin`, `relais federation`) and its words: help, a missing command and
// bad flags are answered as every command does (server/cli).
func subcommand(name, usage, dataDir string, args []string) (*flag.FlagSet, *Client, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	data := fs.String("data", dataDir, "data directory of the running node")
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	if err := cli.Parse(fs, args); err != nil {
		return nil, nil, nil, err
	}
	a := fs.Args()
	if cli.WantsHelp(a) {
		cli.PrintUsage(fs)
		return nil, nil, nil, flag.ErrHelp
	}
	if len(a) == 0 {
		return nil, nil, nil, cli.Usagef(fs, "missing command")
	}
	return fs, Dial(*data), a, nil
}

// Command is `relais admin`: it parses args and calls the running node's
// admin socket in dataDir (or --data), printing answers on stdout.
func Command(args []string, dataDir string, stdout io.Writer) error {
	fs, c, a, err := subcommand("relais admin", adminUsage, dataDir, args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	one := func() (string, error) {
		if len(a) != 3 {
			return "", cli.Usagef(fs, "%s %s takes one e-mail address", a[0], a[1])
		}
		return a[2], nil
	}
	if a[0] == "audit" {
		return auditCommand(ctx, c, stdout, a[1:])
	}
	cmd := strings.Join(a[:min(2, len(a))], " ")
	switch cmd {
	case "users list":
		var users []UserInfo
		if err := c.Do(ctx, "GET", "/users", nil, &users); err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "EMAIL\tADDRESS\tNAME\tSTATE\tKIND\tCREATED\tEXPIRES")
		for _, u := range users {
			kind := "agent"
			if u.External {
				kind = "external"
			}
			if u.Admin {
				kind += ",admin"
			}
			exp := ""
			if !u.Expires.IsZero() {
				exp = u.Expires.Format(time.DateOnly)
			}
			// Anyone may register any address of an allowed domain: the
			// operator must see which ones nobody proved to read.
			proof := "proven"
			if u.Unproven {
				proof = "UNPROVEN"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.Email, proof, u.Name, u.State, kind, u.Created.Format(time.DateOnly), exp)
		}
		return w.Flush()
	case "users approve", "users deactivate", "users reactivate", "users promote":
		email, err := one()
		if err != nil {
			return err
		}
		if err := c.Do(ctx, "POST", "/users/"+a[1], map[string]string{"email": email}, nil); err != nil {
			return err
		}
		if a[1] == "approve" {
			fmt.Fprintln(stdout, "ok: the address was not proven by mail; you vouch that its owner made this registration")
			break
		}
		fmt.Fprintln(stdout, "ok")
	case "users reset-password", "invitations approve":
		email, err := one()
		if err != nil {
			return err
		}
		var out struct{ Link string }
		if err := c.Do(ctx, "POST", "/"+a[0]+"/"+map[string]string{"users": "reset-password", "invitations": "approve"}[a[0]], map[string]string{"email": email}, &out); err != nil {
			return err
		}
		fmt.Fprintln(stdout, out.Link)
	case "domains list", "domains add", "domains remove":
		var out []string
		var err error
		if a[1] == "list" {
			err = c.Do(ctx, "GET", "/domains", nil, &out)
		} else {
			if len(a) < 3 {
				return cli.Usagef(fs, "domains %s needs at least one domain", a[1])
			}
			err = c.Do(ctx, "POST", "/domains/"+a[1], map[string][]string{"domains": a[2:]}, &out)
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, strings.Join(out, "\n"))
	case "invitations list":
		var out []struct {
			Email, RoomID string
			Expires       time.Time
		}
		if err := c.Do(ctx, "GET", "/invitations", nil, &out); err != nil {
			return err
		}
		for _, i := range out {
			fmt.Fprintf(stdout, "%s\troom %s\texpires %s\n", i.Email, i.RoomID, i.Expires.Format(time.DateOnly))
		}
	case "health":
		var out json.RawMessage
		if err := c.Do(ctx, "GET", "/health", nil, &out); err != nil {
			return err
		}
		var b bytes.Buffer
		json.Indent(&b, out, "", "  ")
		fmt.Fprintln(stdout, b.String())
	case "setup-link":
		var out struct{ Link string }
		if err := c.Do(ctx, "POST", "/setup-link", nil, &out); err != nil {
			return err
		}
		fmt.Fprintln(stdout, out.Link)
	default:
		return cli.Usagef(fs, "unknown command %q", cmd)
	}
	return nil
}

// auditCommand prints the audit log, as a table or as the admin page's CSV.
func auditCommand(ctx context.Context, c *Client, stdout io.Writer, args []string) error {
	fs := flag.NewFlagSet("relais admin audit", flag.ContinueOnError)
	q := url.Values{}
	for _, name := range []string{"action", "actor", "from", "to", "limit"} {
		fs.Func(name, "filter: "+name, func(v string) error { q.Set(name, v); return nil })
	}
	asCSV := fs.Bool("csv", false, "print CSV, as the admin page exports it")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef(fs, "audit takes no argument, only flags (%q)", fs.Arg(0))
	}
	var entries []adminops.Entry
	if err := c.Do(ctx, "GET", "/audit?"+q.Encode(), nil, &entries); err != nil {
		return err
	}
	if *asCSV {
		return adminops.WriteCSV(stdout, entries)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tACTOR\tFROM\tACTION\tTARGET\tOUTCOME")
	for _, e := range entries {
		who := e.Actor
		if e.ActorEmail != "" {
			who += " " + e.ActorEmail
		}
		if e.Unix != "" {
			who += " " + e.Unix
		}
		target := e.Target
		if e.TargetEmail != "" {
			target = e.TargetEmail
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), who, e.Addr, e.Action, target, e.Outcome)
	}
	return w.Flush()
}
