package clamd

import (
	"errors"
	"strings"
	"testing"
)

func TestParseReply(t *testing.T) {
	cases := []struct {
		reply string
		want  Result
		err   error
	}{
		{"stream: OK", Result{Clean: true}, nil},
		{"stream: Eicar-Test-Signature FOUND", Result{Signature: "Eicar-Test-Signature"}, nil},
		{"stream: Relais.Test.EICAR.UNOFFICIAL FOUND", Result{Signature: "Relais.Test.EICAR.UNOFFICIAL"}, nil},
		{"INSTREAM size limit exceeded. ERROR", Result{}, ErrSizeLimit},
		{"stream: Can't allocate memory ERROR", Result{}, errAny},
		{"stream:  FOUND", Result{}, errAny},
		{"PONG", Result{}, errAny},
		{"", Result{}, errAny},
	}
	for _, tc := range cases {
		got, err := parseReply(tc.reply)
		switch {
		case tc.err == nil && err != nil:
			t.Errorf("parseReply(%q) error %v", tc.reply, err)
		case tc.err == errAny && err == nil, tc.err == ErrSizeLimit && !errors.Is(err, ErrSizeLimit):
			t.Errorf("parseReply(%q) error = %v, want %v", tc.reply, err, tc.err)
		case got != tc.want:
			t.Errorf("parseReply(%q) = %+v, want %+v", tc.reply, got, tc.want)
		}
	}
}

var errAny = errors.New("any error")

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"stream: OK", "stream: X FOUND", "INSTREAM size limit exceeded. ERROR", "stream: x ERROR", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reply string) {
		res, err := parseReply(reply)
		if err != nil {
			if res != (Result{}) {
				t.Fatalf("result %+v with error %v", res, err)
			}
			return
		}
		// A verdict comes only from a "stream: " reply; infected means a
		// non-empty signature.
		if !strings.HasPrefix(reply, "stream: ") {
			t.Fatalf("verdict %+v from %q", res, reply)
		}
		if res.Clean == (res.Signature != "") {
			t.Fatalf("inconsistent result %+v from %q", res, reply)
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"unix:///run/clamav/clamd.ctl", "tcp://127.0.0.1:3310", "tcp://[::1]:1", "unix://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		if c.Network != "unix" && c.Network != "tcp" || c.Address == "" {
			t.Fatalf("Parse(%q) = %+v", s, c)
		}
		back, err := Parse(c.String())
		if err != nil || *back != *c {
			t.Fatalf("Parse(%q).String() = %q does not parse back: %+v, %v", s, c.String(), back, err)
		}
	})
}
