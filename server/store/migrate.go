package store

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"

	"relais/server/id"
)

// A migration moves the store from version i to i+1 (its index plus one)
// inside one transaction, so a crash leaves either the old or the new
// version. Migrations are append-only: a released one is never edited.
type migration struct {
	name string
	run  func(tx *bolt.Tx) error
}

var migrations = []migration{
	{"initial schema", migrateInitial},
	{"end-to-end encryption and files", migrateE2EEFiles},
	{"client ids in two generations", migrateIdemGenerations},
	{"audit log", migrateAudit},
	{"federation peers", migrateFedPeers},
	{"rooms shared with other administrations", migrateFederation},
	{"search index", migrateSearch},
}

// SchemaVersion is the version a store has after Open.
func SchemaVersion() int { return len(migrations) }

func migrateInitial(tx *bolt.Tx) error {
	for _, name := range [][]byte{
		bMeta, bUsers, bEmails, bNames, bSessions, bDevices, bTokens, bRooms,
		bMembers, bUserRooms, bDMs, bForums, bEvents, bIdem, bReads, bMentions, bFeed,
	} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bMeta)
	if meta.Get(kNode) == nil {
		if err := meta.Put(kNode, []byte(id.NewNode())); err != nil {
			return err
		}
		if err := meta.Put(kCreated, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
			return err
		}
	}
	return nil
}

// migrateE2EEFiles adds the buckets of the MLS Delivery Service (mls.go)
// and of attachments (files.go).
func migrateE2EEFiles(tx *bolt.Tx) error {
	for _, name := range append(append([][]byte{}, mlsBuckets...), fileBuckets...) {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// migrateIdemGenerations adds the second bucket of client ids; the
// existing one stays current until it is IdemWindow old (rooms.go).
func migrateIdemGenerations(tx *bolt.Tx) error {
	_, err := tx.CreateBucketIfNotExists(bIdemB)
	return err
}

// migrateAudit adds the audit log of administrative actions (audit.go).
func migrateAudit(tx *bolt.Tx) error {
	_, err := tx.CreateBucketIfNotExists(bAudit)
	return err
}

// migrateFedPeers adds the buckets of peering (fed.go).
func migrateFedPeers(tx *bolt.Tx) error {
	for _, name := range fedBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// migrateFederation adds the buckets of shared rooms (fedrooms.go).
func migrateFederation(tx *bolt.Tx) error {
	for _, name := range [][]byte{bFedLog, bFedHead, bFedRooms} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

func migrate(b *bolt.DB, ms []migration, log *slog.Logger) error {
	return b.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		var have uint64
		if meta != nil {
			if v := meta.Get(kSchema); len(v) == 8 {
				have = binary.BigEndian.Uint64(v)
			}
		}
		if have > uint64(len(ms)) {
			return fmt.Errorf("store: schema version %d is newer than this binary knows (%d): use a newer relais", have, len(ms))
		}
		for v := have; v < uint64(len(ms)); v++ {
			m := ms[v]
			if err := m.run(tx); err != nil {
				return fmt.Errorf("store: migration %d (%s): %w", v+1, m.name, err)
			}
			if err := tx.Bucket(bMeta).Put(kSchema, u64(v+1)); err != nil {
				return err
			}
			if have > 0 {
				log.Info("store migrated", "version", v+1, "migration", m.name)
			}
		}
		return nil
	})
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}
