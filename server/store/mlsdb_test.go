package store

import (
	"bytes"
	"context"
	"testing"
	"time"
)

func ref(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func TestKeyPackageStock(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	future, past := uint64(now.Unix()+3600), uint64(now.Unix()-1)
	const u, d = "u-nabcdefgh-aaaaaaaaaaaaaaaa", "d-aaaaaaaaaaaaaaaa"
	update := func(fn func(tx *Tx) error) {
		t.Helper()
		if err := db.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	update(func(tx *Tx) error {
		for _, kp := range []KeyPackage{
			{Suite: 1, Ref: ref(1, 32), NotAfter: past, Data: []byte("expired")},
			{Suite: 1, Ref: ref(2, 32), NotAfter: future, Data: []byte("s1-a")},
			{Suite: 1, Ref: ref(0x7e, 32), NotAfter: future, Data: []byte("s1-tilde")}, // starts like the last-resort mark
			{Suite: 1, Ref: ref(9, 32), LastResort: true, NotAfter: future, Data: []byte("s1-last")},
			{Suite: 83, Ref: ref(3, 64), NotAfter: future, Data: []byte("s83-a")},
			{Suite: 83, Ref: ref(8, 64), LastResort: true, NotAfter: past, Data: []byte("s83-last-expired")},
		} {
			if err := tx.PutKeyPackage(u, d, kp); err != nil {
				return err
			}
		}
		return nil
	})
	var n int
	db.View(func(tx *Tx) error { n = tx.KeyPackageCount(u, d); return nil })
	if n != 4 {
		t.Fatalf("stock %d, want 4 (last-resort ones left out)", n)
	}
	take := func(suite uint16) (KeyPackage, bool) {
		var kp KeyPackage
		var ok bool
		update(func(tx *Tx) error {
			var err error
			kp, ok, err = tx.TakeKeyPackage(u, d, suite, now)
			return err
		})
		return kp, ok
	}
	for _, want := range []string{"s1-a", "s1-tilde", "s1-last", "s1-last"} {
		if kp, ok := take(1); !ok || string(kp.Data) != want || kp.LastResort != (want == "s1-last") {
			t.Fatalf("take suite 1: %q %v, want %q", kp.Data, ok, want)
		}
	}
	if kp, ok := take(83); !ok || string(kp.Data) != "s83-a" || !bytes.Equal(kp.Ref, ref(3, 64)) {
		t.Fatalf("take suite 83: %q", kp.Data)
	}
	if kp, ok := take(83); ok {
		t.Fatalf("the expired last resort of suite 83 was handed out: %q", kp.Data)
	}
	if kp, ok := take(0); !ok || string(kp.Data) != "s1-last" {
		t.Fatalf("take any suite: %q %v", kp.Data, ok)
	}
	db.View(func(tx *Tx) error {
		if _, err := tx.KeyPackageRef(ref(1, 32)); err != ErrNotFound {
			t.Error("the expired package's ref is still indexed")
		}
		if r, err := tx.KeyPackageRef(ref(2, 32)); err != nil || r.User != u || r.Device != d {
			t.Errorf("a claimed package's ref must stay until its Welcome: %+v %v", r, err)
		}
		if n := tx.KeyPackageCount(u, d); n != 0 {
			t.Errorf("stock %d after taking everything", n)
		}
		return nil
	})
}

func TestWelcomeBlobsAreShared(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	const room = "r-nabcdefgh-aaaaaaaaaaaaaaaa"
	a := DeviceRef{"u-nabcdefgh-aaaaaaaaaaaaaaaa", "d-aaaaaaaaaaaaaaaa"}
	b := DeviceRef{"u-nabcdefgh-bbbbbbbbbbbbbbbb", "d-bbbbbbbbbbbbbbbb"}
	blobs := func() int {
		n := 0
		db.View(func(tx *Tx) error {
			c := tx.bucket(bWelcomes).Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if k[0] == 'w' {
					n++
				}
			}
			return nil
		})
		return n
	}
	welcomes := func(d DeviceRef) []Welcome {
		var ws []Welcome
		db.View(func(tx *Tx) error { var err error; ws, err = tx.Welcomes(d); return err })
		return ws
	}
	db.Update(ctx, func(tx *Tx) error {
		return tx.PutWelcome(Welcome{Room: room, Seq: 7, Epoch: 3, Data: []byte("w1")}, []DeviceRef{a, b})
	})
	if blobs() != 1 || len(welcomes(a)) != 1 || string(welcomes(b)[0].Data) != "w1" || welcomes(b)[0].Epoch != 3 {
		t.Fatalf("one welcome for two devices: %d blobs, %+v", blobs(), welcomes(b))
	}
	// A newer Welcome to the room replaces a's; the old blob stays for b.
	db.Update(ctx, func(tx *Tx) error {
		return tx.PutWelcome(Welcome{Room: room, Seq: 9, Epoch: 5, Data: []byte("w2")}, []DeviceRef{a})
	})
	if blobs() != 2 || string(welcomes(a)[0].Data) != "w2" || string(welcomes(b)[0].Data) != "w1" {
		t.Fatalf("after a second welcome: %d blobs", blobs())
	}
	db.Update(ctx, func(tx *Tx) error { _, err := tx.DeleteWelcome(b, room); return err })
	if blobs() != 1 || len(welcomes(b)) != 0 {
		t.Fatalf("the first blob outlived its last device: %d blobs", blobs())
	}
	db.Update(ctx, func(tx *Tx) error { _, err := tx.DeleteWelcome(a, room); return err })
	if blobs() != 0 {
		t.Fatalf("%d blobs left", blobs())
	}
}

func TestGroupDevices(t *testing.T) {
	db := openTest(t)
	const room = "r-nabcdefgh-aaaaaaaaaaaaaaaa"
	a1 := DeviceRef{"u-nabcdefgh-aaaaaaaaaaaaaaaa", "d-aaaaaaaaaaaaaaa1"}
	a2 := DeviceRef{"u-nabcdefgh-aaaaaaaaaaaaaaaa", "d-aaaaaaaaaaaaaaa2"}
	b := DeviceRef{"u-nabcdefgh-aaaaaaaaaaaaaaab", "d-bbbbbbbbbbbbbbbb"} // a user id that a's is a prefix of, but for the last letter
	db.Update(context.Background(), func(tx *Tx) error {
		for _, d := range []DeviceRef{a1, a2, b} {
			if err := tx.SetGroupDevice(room, d, true); err != nil {
				return err
			}
		}
		return tx.PutGroupInfo(room, []byte("gi"))
	})
	db.View(func(tx *Tx) error {
		if got := tx.GroupDevices(room, a1.User); len(got) != 2 || got[0] != a1 || got[1] != a2 {
			t.Errorf("a's devices: %v", got)
		}
		if got := tx.GroupDevices(room, ""); len(got) != 3 {
			t.Errorf("all devices: %v (the GroupInfo is not a device)", got)
		}
		if !tx.InGroup(room, b) || tx.InGroup(room, DeviceRef{b.User, a1.Device}) || !tx.HasGroupDevices(room, b.User) {
			t.Error("membership of the group is wrong")
		}
		if g, err := tx.MLSGroup(room); err != nil || g.Epoch != 0 {
			t.Errorf("an unpublished group: %+v %v", g, err)
		}
		return nil
	})
}
