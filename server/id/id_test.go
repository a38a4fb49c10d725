package id

import "testing"

func TestRoundTrip(t *testing.T) {
	node := NewNode()
	cases := []struct {
		name string
		kind Kind
		id   string
	}{
		{"node", Node, node},
		{"user", User, NewUser(node)},
		{"room", Room, NewRoom(node)},
		{"device", Device, NewDevice()},
		{"file", File, NewFile(node)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !Valid(c.kind, c.id) {
				t.Fatalf("Valid(%c, %q) = false", c.kind, c.id)
			}
			for _, other := range []Kind{Node, User, Room, Device, File} {
				if other != c.kind && Valid(other, c.id) {
					t.Errorf("%q also valid as %c", c.id, other)
				}
			}
		})
	}
	if h := Home(NewRoom(node)); h != node {
		t.Errorf("Home = %q, want %q", h, node)
	}
}

func TestInvalid(t *testing.T) {
	node := NewNode()
	user := NewUser(node)
	for _, s := range []string{
		"", "n", "nABCDEFGH", "n1234567", "n12345678", user + "a", user[:len(user)-1],
		"u." + user[2:], "r" + user[1:len(user)-1] + "!", "d-ABCDEFGHIJKLMNOP", "u-" + node + "-abc.efghijklmnop",
		"f-", "f-" + node, "f-" + node + "-", "f-" + node + "-ABCDEFGHIJKLMNOP", "f-" + node + "-abcdefghijklmno",
		"f-" + node + "-abcdefghijklmnop1", "f-../../etc/passwd", "f-" + node + "-abcdefghijklmn/.", "f-x-abcdefghijklmnop",
	} {
		if Valid(User, s) || Valid(Node, s) || Valid(Device, s) || Valid(Room, s) || Valid(File, s) {
			t.Errorf("%q accepted", s)
		}
	}
	if Home("x") != "" {
		t.Error("Home of garbage")
	}
}

// FuzzValid: identifiers arrive from clients and other nodes; checking one
// never panics, and an accepted one has the shape the store keys rely on.
func FuzzValid(f *testing.F) {
	node := NewNode()
	for _, s := range []string{node, NewUser(node), NewRoom(node), NewDevice(), NewFile(node), "", "u-", "u-n1234567-", "r-nAAAAAAAA-aaaaaaaaaaaaaaaa"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, k := range []Kind{Node, User, Room, Device, File} {
			if !Valid(k, s) {
				continue
			}
			for _, c := range []byte(s) {
				if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7' || c == '-') {
					t.Fatalf("Valid(%c, %q) accepts byte %q", k, s, c)
				}
			}
			if (k == User || k == Room) && !Valid(Node, Home(s)) {
				t.Fatalf("Home(%q) = %q is not a node", s, Home(s))
			}
		}
	})
}
