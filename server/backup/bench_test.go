package backup_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"relais/cluster/nodetest"
	"relais/server/backup"
	"relais/server/media/mediatest"
	"relais/server/proto"
)

// BenchmarkBackup measures relais backup and relais restore of a node
// with 64 MiB of attachments (32 files of 2 MiB), plain and encrypted at
// the default work factor; the bytes per operation are the archive's.
//
//	go test -run XXX -bench Backup -benchtime 3x ./server/backup/
func BenchmarkBackup(b *testing.B) {
	n := nodetest.Start(b)
	alice := n.NewUser("Alice Martin")
	ctx := context.Background()
	conn := nodetest.Synced(b, ctx, alice)
	room := nodetest.Forum(b, ctx, conn, "Archives")
	for i := range 32 {
		if _, err := alice.UploadFile(ctx, proto.UploadRequest{Room: room, Name: fmt.Sprintf("scan-%d.pdf", i), Type: "application/pdf"}, mediatest.PDF(fmt.Sprintf("scan %d", i), 2<<20), 0); err != nil {
			b.Fatal(err)
		}
	}
	data := filepath.Dir(n.DB.Path())
	for _, mode := range []struct {
		name string
		pass []byte
	}{{"plain", nil}, {"encrypted", []byte("Bureau-du-maire-2026")}} {
		file := filepath.Join(b.TempDir(), "relais.backup")
		b.Run("create/"+mode.name, func(b *testing.B) {
			for range b.N {
				if _, err := backup.Create(ctx, backup.CreateOptions{Data: data, File: file, Passphrase: mode.pass}); err != nil {
					b.Fatal(err)
				}
			}
			fi, _ := os.Stat(file)
			b.SetBytes(fi.Size())
		})
		b.Run("restore/"+mode.name, func(b *testing.B) {
			fi, _ := os.Stat(file)
			b.SetBytes(fi.Size())
			for i := range b.N {
				if _, err := backup.Restore(ctx, backup.RestoreOptions{File: file, Data: filepath.Join(b.TempDir(), fmt.Sprint(i)),
					Passphrase: func() ([]byte, error) { return mode.pass, nil }}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
