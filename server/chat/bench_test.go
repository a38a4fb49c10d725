package chat_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"relais/server/bus"
	"relais/server/chat"
	"relais/server/mls"
	"relais/server/mls/mlsframe"
	"relais/server/proto"
	"relais/server/store"
)

// BenchmarkSend measures chat.Service.Send of encrypted messages, the
// domain part of every send (idempotency, access, append, read marker,
// group commit with fsync), with writers each sending to a room of its
// own, one message after the other as a client waiting for acks does.
func BenchmarkSend(b *testing.B) {
	for _, writers := range []int{1, 50} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db, err := store.Open(filepath.Join(b.TempDir(), "relais.db"), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			s := chat.New(db, bus.Discard{}, chat.Options{})
			ctx := context.Background()
			actors := make([]chat.Actor, writers)
			rooms := make([]string, writers)
			for i := range writers {
				actors[i] = chat.Actor{User: fmt.Sprintf("u-%s-%016d", db.Node(), i), Device: "d-abcdefghijklmnop"}
				if rooms[i], err = s.CreateRoom(ctx, actors[i], chat.CreateRoomRequest{Kind: store.Group, Name: "Salle"}); err != nil {
					b.Fatal(err)
				}
				// The founder's first commit publishes the room's MLS
				// group, so that its device may send there.
				commit := &proto.ClientFrame{T: proto.TMLS, ID: "commit-0", Room: rooms[i],
					Data:      base64.StdEncoding.EncodeToString(mlsframe.PrivateCommit(rooms[i], 0)),
					GroupInfo: base64.StdEncoding.EncodeToString(mlsframe.GroupInfo(mls.CipherSuiteXWingAES256GCMSHA512Ed25519, rooms[i], 1))}
				if _, err := s.Commit(ctx, actors[i], commit); err != nil {
					b.Fatal(err)
				}
			}
			data := make([]string, writers) // an MLS application message of about 200 bytes per room
			for i := range writers {
				data[i] = base64.StdEncoding.EncodeToString(mlsframe.Application(rooms[i], 1, []byte(strings.Repeat("ciphertext ", 15))))
			}
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := (b.N + writers - 1) / writers
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range per {
						f := &proto.ClientFrame{T: proto.TSend, ID: "c-" + strconv.Itoa(i), Room: rooms[w], Type: proto.EvEncrypted, Data: data[w]}
						if _, err := s.Send(ctx, actors[w], f); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}
