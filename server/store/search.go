package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/text/unicode/norm"
)

// The search index of unencrypted rooms: the words of each message's text,
// written in the same transaction as the message, its edits and its
// deletion, so that the index never names a word the log no longer holds.
//
//	search      room id \x00 word \x00 seq (8) → nil
//
// The room comes first so that a search, always limited to rooms the
// reader may read, seeks each room on its own; within a room a word's
// postings are in seq order, read newest first.
var bSearch = []byte("search")

// MaxWord is the length in bytes past which a folded word is cut, in the
// index and in queries alike (a long URL or hash is found by its start).
const MaxWord = 48

// WordToken is one word of a text: its folded form (no accents, lower case)
// and where it lies in the text, in bytes.
type WordToken struct {
	Word       string
	Start, End int
}

// Tokens splits text into words, runs of letters and digits, and folds
// each one. Apostrophes, hyphens and punctuation separate words
// ("l'école" is "l" and "ecole").
func Tokens(text string) []WordToken {
	var out []WordToken
	var w strings.Builder
	start := -1
	flush := func(end int) {
		if start >= 0 && w.Len() > 0 {
			out = append(out, WordToken{Word: cut(w.String()), Start: start, End: end})
		}
		w.Reset()
		start = -1
	}
	for i, r := range text {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if start < 0 {
				start = i
			}
			foldRune(&w, r)
		case unicode.Is(unicode.Mn, r) && start >= 0:
			// A combining accent of a decomposed letter: part of the word,
			// dropped by folding.
		default:
			flush(i)
		}
	}
	flush(len(text))
	return out
}

// foldRune writes r without its accents and in lower case.
func foldRune(w *strings.Builder, r rune) {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		w.WriteByte(byte(r))
		return
	}
	if r < rune(len(latinFolds)) {
		w.WriteString(latinFolds[r])
		return
	}
	w.WriteString(foldSlow(r))
}

// latinFolds are the folded forms of the Latin letters, most of what
// French text holds, computed once.
var latinFolds = func() []string {
	t := make([]string, 0x250)
	for r := range t {
		t[r] = foldSlow(rune(r))
	}
	return t
}()

func foldSlow(r rune) string {
	var w strings.Builder
	switch r {
	case 'œ', 'Œ':
		return "oe"
	case 'æ', 'Æ':
		return "ae"
	case 'ß':
		return "ss"
	}
	var buf [utf8.UTFMax]byte
	d := norm.NFD.Append(nil, buf[:utf8.EncodeRune(buf[:], r)]...)
	for len(d) > 0 {
		c, n := utf8.DecodeRune(d)
		d = d[n:]
		if !unicode.Is(unicode.Mn, c) {
			w.WriteRune(unicode.ToLower(c))
		}
	}
	return w.String()
}

// cut shortens a folded word to MaxWord bytes, on a character boundary.
func cut(w string) string {
	if len(w) <= MaxWord {
		return w
	}
	n := MaxWord
	for n > 0 && !utf8.RuneStart(w[n]) {
		n--
	}
	return w[:n]
}

// indexWords returns the distinct words of text.
func indexWords(text string) []string {
	var words []string
	for _, t := range Tokens(text) {
		words = append(words, t.Word)
	}
	slices.Sort(words)
	return slices.Compact(words)
}

func searchKey(roomID, word string, seq uint64) []byte {
	k := make([]byte, 0, len(roomID)+len(word)+10)
	k = append(k, roomID...)
	k = append(k, 0)
	k = append(k, word...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// IndexText adds the words of a message's text to the search index.
func (tx *Tx) IndexText(roomID string, seq uint64, text string) error {
	b := tx.bucket(bSearch)
	for _, w := range indexWords(text) {
		if err := b.Put(searchKey(roomID, w, seq), nil); err != nil {
			return fmt.Errorf("store: index %s/%d: %w", roomID, seq, err)
		}
	}
	return nil
}

// UnindexText removes the words of a message's former text from the
// search index (on an edit, before the new text is indexed, and on a
// deletion).
func (tx *Tx) UnindexText(roomID string, seq uint64, text string) error {
	b := tx.bucket(bSearch)
	for _, w := range indexWords(text) {
		if err := b.Delete(searchKey(roomID, w, seq)); err != nil {
			return fmt.Errorf("store: unindex %s/%d: %w", roomID, seq, err)
		}
	}
	return nil
}

// MaxPrefixWords bounds the words a prefix search merges in one room: a
// one-letter prefix in a big forum stops there.
const MaxPrefixWords = 200

// SearchPostings returns, newest first, up to max seqs below before (0:
// no bound) of the room's messages holding word, or, with prefix, a word
// that starts with it. A prefix search merges at most MaxPrefixWords
// words; truncated says it stopped there.
func (tx *Tx) SearchPostings(roomID, word string, prefix bool, before uint64, max int) (seqs []uint64, truncated bool) {
	if before == 0 {
		before = ^uint64(0)
	}
	c := tx.bucket(bSearch).Cursor()
	if !prefix {
		return postings(c, roomID, word, before, max, nil), false
	}
	// The words with the prefix, each one's key range skipped at once.
	base := append(append([]byte(roomID), 0), word...)
	var words []string
	for k, _ := c.Seek(base); k != nil && bytes.HasPrefix(k, base); {
		rest := k[len(roomID)+1:]
		end := bytes.IndexByte(rest, 0)
		if end < 0 {
			k, _ = c.Next()
			continue
		}
		if len(words) == MaxPrefixWords {
			truncated = true
			break
		}
		w := string(rest[:end])
		words = append(words, w)
		k, _ = c.Seek(append(searchKey(roomID, w, ^uint64(0)), 0))
	}
	// Each word's newest max below before, merged: the newest max of all.
	for _, w := range words {
		seqs = postings(c, roomID, w, before, max, seqs)
	}
	slices.SortFunc(seqs, func(a, b uint64) int { return -cmpU64(a, b) })
	seqs = slices.Compact(seqs)
	if len(seqs) > max {
		seqs = seqs[:max]
	}
	return seqs, truncated
}

// postings appends to out up to max seqs below before of one word's
// postings, newest first.
func postings(c *bolt.Cursor, roomID, word string, before uint64, max int, out []uint64) []uint64 {
	base := searchKey(roomID, word, 0)
	base = base[:len(base)-8]
	k, _ := c.Seek(searchKey(roomID, word, before))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	for n := 0; k != nil && bytes.HasPrefix(k, base) && n < max; k, _ = c.Prev() {
		if len(k) == len(base)+8 {
			out = append(out, binary.BigEndian.Uint64(k[len(base):]))
			n++
		}
	}
	return out
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// migrateSearch adds the search index and fills it with the text of the
// live messages of every unencrypted room.
func migrateSearch(tx *bolt.Tx) error {
	idx, err := tx.CreateBucketIfNotExists(bSearch)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bSearch, err)
	}
	rooms, events := tx.Bucket(bRooms), tx.Bucket(bEvents)
	return rooms.ForEach(func(k, v []byte) error {
		var r Room
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("room %s: %w", k, err)
		}
		log := events.Bucket(k)
		if r.Encrypted || log == nil {
			return nil
		}
		return log.ForEach(func(sk, sv []byte) error {
			seq := binary.BigEndian.Uint64(sk)
			ev, frame, err := decodeEventHeader(seq, sv)
			if err != nil || ev.Flags&Redacted != 0 || ev.Flags&Countable == 0 {
				return err
			}
			var m struct {
				Type    string `json:"type"`
				Body    string `json:"body"`
				Deleted bool   `json:"deleted"`
			}
			if err := json.Unmarshal(frame, &m); err != nil {
				return fmt.Errorf("event %s/%d: %w", k, seq, err)
			}
			if m.Deleted || (m.Type != "text" && m.Type != "file") {
				return nil
			}
			for _, w := range indexWords(m.Body) {
				if err := idx.Put(searchKey(string(k), w, seq), nil); err != nil {
					return err
				}
			}
			return nil
		})
	})
}
