package mailaddr

import (
	"slices"
	"strings"
)

// Policy is the set of e-mail domains allowed to register on a node. The
// zero Policy allows nothing. A Policy is an immutable value, safe for
// concurrent use; With and Without return new Policies, so an operator's
// change at run time is an atomic swap of the value the service holds.
type Policy struct {
	entries []entry // sorted by String, no duplicates
}

// entry is one allowed domain: exactly domain, or (sub) any strict
// sub-domain of it.
type entry struct {
	domain string // canonical A-label form
	sub    bool
}

func (e entry) String() string {
	if e.sub {
		return "*." + e.domain
	}
	return e.domain
}

func (e entry) matches(domain string) bool {
	if !e.sub {
		return domain == e.domain
	}
	// Label boundary: "x.gouv.fr" matches "*.gouv.fr", "xgouv.fr" and
	// "gouv.fr" do not. Canonical domains have no empty label, so a
	// non-empty label precedes the dot.
	return len(domain) > len(e.domain)+1 &&
		strings.HasSuffix(domain, e.domain) &&
		domain[len(domain)-len(e.domain)-1] == '.'
}

// ParsePolicy builds a Policy from operator entries. An entry is either a
// domain ("elysee.fr": that domain only) or "*." followed by a domain
// ("*.gouv.fr": every strict sub-domain, at any depth, but not gouv.fr
// itself). Entries are parsed as strictly as addresses: no whitespace, no
// trailing dot, at least two labels (so "*.fr" is refused), IDN converted to
// A-labels. Duplicates are merged. The error has code CodeDomainInvalid.
func ParsePolicy(entries []string) (Policy, error) {
	return Policy{}.With(entries...)
}

func parseEntry(s string) (entry, error) {
	if len(s) > MaxInput {
		return entry{}, &Error{Code: CodeDomainInvalid, Reason: "input too long"}
	}
	var e entry
	d := s
	if rest, ok := strings.CutPrefix(s, "*."); ok {
		e.sub, d = true, rest
	}
	canon, err := parseDomain(d)
	if err != nil {
		reason := "invalid domain"
		if e, ok := err.(*Error); ok {
			reason = e.Reason
		}
		if strings.Contains(d, "*") {
			reason = "a wildcard is allowed only as a leading \"*.\""
		}
		return entry{}, &Error{Code: CodeDomainInvalid, Reason: reason}
	}
	e.domain = canon
	return e, nil
}

// With returns a Policy with entries added to p's. p is unchanged.
func (p Policy) With(entries ...string) (Policy, error) {
	es := slices.Clone(p.entries)
	for _, s := range entries {
		e, err := parseEntry(s)
		if err != nil {
			return p, err
		}
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.String(), b.String()) })
	es = slices.Compact(es)
	return Policy{entries: es}, nil
}

// Without returns a Policy with entries removed from p's. Entries are parsed
// as in ParsePolicy, so "Élysée.FR" removes "xn--lyse-9oad.fr"; removing an
// entry that is not there is not an error. p is unchanged.
func (p Policy) Without(entries ...string) (Policy, error) {
	drop := make([]entry, 0, len(entries))
	for _, s := range entries {
		e, err := parseEntry(s)
		if err != nil {
			return p, err
		}
		drop = append(drop, e)
	}
	es := slices.DeleteFunc(slices.Clone(p.entries), func(e entry) bool {
		return slices.Contains(drop, e)
	})
	return Policy{entries: es}, nil
}

// Entries returns the canonical entries, sorted: domains in A-label form,
// sub-domain entries with their "*." prefix. ParsePolicy(p.Entries())
// equals p.
func (p Policy) Entries() []string {
	out := make([]string, len(p.entries))
	for i, e := range p.entries {
		out[i] = e.String()
	}
	return out
}

// Allows reports whether an address in domain may register. domain is
// normalized as by Parse (so "Elysee.FR" is "elysee.fr"); a domain Parse
// would refuse is never allowed. Matching is on label boundaries only:
// "elysee.fr" allows neither "xelysee.fr" nor "elysee.fr.evil.com".
func (p Policy) Allows(domain string) bool {
	if len(p.entries) == 0 || len(domain) > MaxInput {
		return false
	}
	d, err := parseDomain(domain)
	if err != nil {
		return false
	}
	for _, e := range p.entries {
		if e.matches(d) {
			return true
		}
	}
	return false
}

// Check parses s with Parse and checks that its domain is allowed. A
// malformed address gives an error with code CodeInvalid; a well-formed
// address outside the allowed domains gives CodeDomainNotAllowed.
func (p Policy) Check(s string) (Address, error) {
	a, err := Parse(s)
	if err != nil {
		return Address{}, err
	}
	for _, e := range p.entries {
		if e.matches(a.Domain) {
			return a, nil
		}
	}
	return Address{}, &Error{Code: CodeDomainNotAllowed, Reason: "domain not allowed"}
}
