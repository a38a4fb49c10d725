package cluster

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestPublishSubscribeInOrder(t *testing.T) {
	n, err := Start(Options{Name: "ntest"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	var mu sync.Mutex
	var got []string
	sub, err := n.Subscribe("relais.ev.>", func(subject string, data []byte) {
		mu.Lock()
		got = append(got, subject+"="+string(data))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	const count = 1000
	for i := range count {
		if err := n.Publish(fmt.Sprintf("relais.ev.r%d", i%3), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	n.Publish("relais.other.x", []byte("ignored"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		l := len(got)
		mu.Unlock()
		if l == count || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	for i := range count {
		if want := fmt.Sprintf("relais.ev.r%d=%d", i%3, i); i >= len(got) || got[i] != want {
			t.Fatalf("message %d: got %v, want %q", i, got[min(i, len(got)-1)], want)
		}
	}
	mu.Unlock()

	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	n.Publish("relais.ev.r1", []byte("late"))
	n.Flush()
	mu.Lock()
	if len(got) != count {
		t.Errorf("delivered after Unsubscribe: %v", got[count:])
	}
	mu.Unlock()
}

func TestCloseIsIdempotent(t *testing.T) {
	n, err := Start(Options{Name: "ntest2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Publish("x", nil); err == nil {
		t.Error("publish after close succeeded")
	}
}

func BenchmarkPublishDeliver(b *testing.B) {
	n, err := Start(Options{Name: "nbench"})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	done := make(chan struct{})
	count := 0
	n.Subscribe("relais.ev.>", func(string, []byte) {
		count++
		if count == b.N {
			close(done)
		}
	})
	payload := make([]byte, 512)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		n.Publish("relais.ev.r-n12345678-abcdefghijklmnop", payload)
	}
	<-done
}
