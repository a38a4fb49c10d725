package store

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestAuditNewestFirstWithinPeriod: entries come back newest first,
// bounded by [from, to), and two entries of the same instant both stay.
func TestAuditNewestFirstWithinPeriod(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	entries := []AuditEntry{
		{Time: t0, Actor: "cli", Action: "a"},
		{Time: t0.Add(time.Minute), Actor: "u1", Action: "b"},
		{Time: t0.Add(time.Minute), Actor: "u1", Action: "c"}, // same instant
		{Time: t0.Add(time.Hour), Actor: "u2", Action: "d"},
	}
	for _, e := range entries {
		if err := db.Update(ctx, func(tx *Tx) error { return tx.AppendAudit(e) }); err != nil {
			t.Fatal(err)
		}
	}
	actions := func(from, to time.Time) string {
		var got []string
		if err := db.View(func(tx *Tx) error {
			return tx.Audit(from, to, func(e AuditEntry) bool { got = append(got, e.Action); return true })
		}); err != nil {
			t.Fatal(err)
		}
		return strings.Join(got, "")
	}
	for _, c := range []struct {
		name     string
		from, to time.Time
		want     string
	}{
		{"everything", time.Time{}, time.Time{}, "dcba"},
		{"from the minute", t0.Add(time.Minute), time.Time{}, "dcb"},
		{"until the hour, excluded", time.Time{}, t0.Add(time.Hour), "cba"},
		{"one minute", t0.Add(time.Minute), t0.Add(2 * time.Minute), "cb"},
		{"before everything", time.Time{}, t0, ""},
		{"after everything", t0.Add(2 * time.Hour), time.Time{}, ""},
	} {
		if got := actions(c.from, c.to); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestAuditHasNoMethodToChangeOrDelete: the store's only methods on the
// audit log append and read; none rewrites or deletes an entry, so no API
// built on the store can.
func TestAuditHasNoMethodToChangeOrDelete(t *testing.T) {
	var got []string
	for m := range reflect.TypeFor[*Tx]().Methods() {
		if strings.Contains(m.Name, "Audit") {
			got = append(got, m.Name)
		}
	}
	if want := []string{"AppendAudit", "Audit"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("methods of the audit log: %v, want only %v", got, want)
	}
}
