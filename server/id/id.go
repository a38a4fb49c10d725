// Package id makes and checks the identifiers of nodes, users, rooms,
// devices and files.
//
// Identifiers are designed for the mesh: a user or room identifier names its
// home node, so any node can route to it without a lookup, and every
// identifier is a valid NATS subject token (lower-case base32 and '-'), so it
// can be used in subjects as is.
//
//	node    n<8>                 e.g. nk3j4h5g6
//	user    u-<node>-<16>        e.g. u-nk3j4h5g6-abcdefghijklmnop
//	room    r-<node>-<16>
//	device  d-<16>
//	file    f-<node>-<16>        an attachment, named by the node that stored it
package id

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// Kind is the first letter of an identifier.
type Kind byte

// The kinds of identifier.
const (
	Node   Kind = 'n'
	User   Kind = 'u'
	Room   Kind = 'r'
	Device Kind = 'd'
	File   Kind = 'f'
)

const (
	nodeLen   = 1 + 8
	randLen   = 16
	scopedLen = 2 + nodeLen + 1 + randLen // u-<node>-<rand>
	deviceLen = 2 + randLen
)

var enc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func random(n int) string {
	// 10 random bytes give 16 base32 characters (80 bits).
	b := make([]byte, (n*5+7)/8)
	rand.Read(b)
	return enc.EncodeToString(b)[:n]
}

// NewNode returns a fresh node identifier.
func NewNode() string { return "n" + random(8) }

// NewUser returns a fresh user identifier homed on node.
func NewUser(node string) string { return "u-" + node + "-" + random(randLen) }

// NewRoom returns a fresh room identifier homed on node.
func NewRoom(node string) string { return "r-" + node + "-" + random(randLen) }

// NewFile returns a fresh file identifier, stored on node.
func NewFile(node string) string { return "f-" + node + "-" + random(randLen) }

// NewDevice returns a fresh device identifier.
func NewDevice() string { return "d-" + random(randLen) }

// Valid reports whether s is a well-formed identifier of kind k.
func Valid(k Kind, s string) bool {
	switch k {
	case Node:
		return len(s) == nodeLen && s[0] == 'n' && isB32(s[1:])
	case User, Room, File:
		return len(s) == scopedLen && s[0] == byte(k) && s[1] == '-' &&
			Valid(Node, s[2:2+nodeLen]) && s[2+nodeLen] == '-' && isB32(s[3+nodeLen:])
	case Device:
		return len(s) == deviceLen && s[0] == 'd' && s[1] == '-' && isB32(s[2:])
	}
	return false
}

// Home returns the home node of a user or room identifier, or "" when s is
// not one.
func Home(s string) string {
	if !Valid(User, s) && !Valid(Room, s) {
		return ""
	}
	return s[2 : 2+nodeLen]
}

func isB32(s string) bool {
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz234567") == ""
}
