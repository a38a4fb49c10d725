package fed

import (
	"bytes"
	"testing"

	"relais/server/id"
)

func seedRecords(f *testing.F) []Record {
	a, b := newAdmin(f), newAdmin(f)
	room, u := id.NewRoom(a.node), id.NewUser(b.node)
	r1 := record(a, b, u, room, 1, Hash{}, `{"t":"ev","seq":1}`)
	r2 := record(a, b, u, room, 2, r1.Order.EventHash, `{"t":"ev","seq":2}`)
	return []Record{r1, r2}
}

// FuzzParseRecord: the envelope parser never panics, and what it accepts
// re-encodes to the same bytes (one encoding per record, so a signature
// over the encoding is one over the fields).
func FuzzParseRecord(f *testing.F) {
	for _, r := range seedRecords(f) {
		f.Add(AppendRecord(nil, &r))
	}
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := ParseRecord(b)
		if err != nil {
			return
		}
		if !bytes.Equal(AppendRecord(nil, &rec), b) {
			t.Fatalf("accepted bytes that do not re-encode the same")
		}
		if len(rec.Frame) > MaxFrame || HashOf(rec.Frame) != rec.Order.EventHash {
			t.Fatalf("accepted a record whose frame is over the limit or does not match its hash")
		}
	})
}

// FuzzParseFrames: the decoders of the federation frames (batches, send
// and sync requests, ephemerals) never panic, and what they accept re-encodes the same.
func FuzzParseFrames(f *testing.F) {
	recs := seedRecords(f)
	f.Add(byte(0), AppendBatchFrame(nil, &Batch{Records: recs}))
	f.Add(byte(1), AppendSendRequest(nil, &SendRequest{Origin: recs[0].Origin, OriginSig: recs[0].OriginSig, Device: id.NewDevice(), Frame: []byte(`{"t":"send"}`)}))
	f.Add(byte(2), AppendSyncRequest(nil, SyncRequest{Room: recs[0].Order.Room, After: 3, Max: 10}))
	f.Add(byte(3), AppendEphemeral(nil, Ephemeral{Room: recs[0].Order.Room, User: recs[0].Origin.Sender, Kind: EphReceipt, Seq: 9}))
	f.Fuzz(func(t *testing.T, kind byte, b []byte) {
		switch kind % 4 {
		case 3:
			e, err := ParseEphemeral(b)
			if err == nil && !bytes.Equal(AppendEphemeral(nil, e), b) {
				t.Fatal("ephemeral does not re-encode the same")
			}
		case 0:
			fr, err := ParseBatchFrame(b)
			if err == nil && !bytes.Equal(AppendBatchFrame(nil, &fr), b) {
				t.Fatal("batch does not re-encode the same")
			}
		case 1:
			q, err := ParseSendRequest(b)
			if err == nil && !bytes.Equal(AppendSendRequest(nil, &q), b) {
				t.Fatal("send request does not re-encode the same")
			}
		case 2:
			q, err := ParseSyncRequest(b)
			if err == nil && (q.Max < 1 || q.Max > MaxBatch) {
				t.Fatalf("sync request with max %d", q.Max)
			}
		}
	})
}
