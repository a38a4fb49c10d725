package password

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Known answers computed with the reference C implementation (Debian's
// libargon2 1, argon2id_hash_encoded).
var referenceHashes = []struct{ password, encoded string }{
	{"correct horse battery staple", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"mot de passe \u00e9lev\u00e9", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$CmG/ArdjAjhr99ik+Vp2XQ"},
	{"password", "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$gduXp+Z6iReEolmbyHn5V8s1EtJzmEvZfYoY/Fn/AeI"},
}

func TestReferenceHashes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range referenceHashes {
		ok, err := Verify(ctx, tc.encoded, tc.password)
		if err != nil || !ok {
			t.Errorf("Verify(%q, %q) = %v, %v; want true", tc.encoded, tc.password, ok, err)
		}
		ok, err = Verify(ctx, tc.encoded, tc.password+"x")
		if err != nil || ok {
			t.Errorf("Verify(%q, wrong) = %v, %v; want false", tc.encoded, ok, err)
		}
	}
	// The same password with the accents decomposed (NFD) verifies too.
	ok, err := Verify(ctx, referenceHashes[1].encoded, "mot de passe e\u0301leve\u0301")
	if err != nil || !ok {
		t.Errorf("NFD password: %v, %v; want true", ok, err)
	}
}

func TestHashVerify(t *testing.T) {
	ctx := context.Background()
	for _, p := range []Params{TestParams, {Memory: 256, Time: 2, Threads: 2, SaltLen: 8, KeyLen: 16}, {Memory: 1024, Time: 1, Threads: 4, SaltLen: 64, KeyLen: 64}} {
		t.Run(fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads), func(t *testing.T) {
			h, err := Hash(ctx, "un mot de passe solide", p)
			if err != nil {
				t.Fatal(err)
			}
			prefix := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$", p.Memory, p.Time, p.Threads)
			if !strings.HasPrefix(h, prefix) {
				t.Errorf("Hash = %q, want prefix %q", h, prefix)
			}
			if ok, err := Verify(ctx, h, "un mot de passe solide"); !ok || err != nil {
				t.Errorf("Verify(right) = %v, %v", ok, err)
			}
			for _, wrong := range []string{"", "un mot de passe solidE", "un mot de passe solide ", "un mot de passe solid"} {
				if ok, err := Verify(ctx, h, wrong); ok || err != nil {
					t.Errorf("Verify(%q) = %v, %v; want false, nil", wrong, ok, err)
				}
			}
			h2, _ := Hash(ctx, "un mot de passe solide", p)
			if h2 == h {
				t.Error("two hashes of the same password are equal: salt not random")
			}
			if NeedsRehash(h, p) {
				t.Error("NeedsRehash with the same params")
			}
		})
	}
}

func TestHashBadParams(t *testing.T) {
	for _, p := range []Params{
		{},
		{Memory: 64, Time: 1, Threads: 0, SaltLen: 16, KeyLen: 32},
		{Memory: 7, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 16, Time: 1, Threads: 4, SaltLen: 16, KeyLen: 32}, // < 8 KiB per lane
		{Memory: MaxMemory + 1, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: MaxTime + 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 1024, Time: 1, Threads: MaxThreads + 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 8},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 1 << 20},
	} {
		if _, err := Hash(context.Background(), "x", p); !errors.Is(err, ErrBadParams) {
			t.Errorf("Hash with %+v: %v, want ErrBadParams", p, err)
		}
	}
	if err := Default.Validate(); err != nil {
		t.Errorf("Default: %v", err)
	}
	if err := TestParams.Validate(); err != nil {
		t.Errorf("TestParams: %v", err)
	}
}

// hostileHashes must be refused by the parser without computing anything.
var hostileHashes = []struct{ name, encoded string }{
	{"empty", ""},
	{"garbage", "not a hash"},
	{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
	{"argon2i", "$argon2i$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"argon2d", "$argon2d$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"upper-case type", "$Argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"no version (argon2 1.0)", "$argon2id$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"version 16", "$argon2id$v=16$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"version leading zero", "$argon2id$v=019$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"huge memory", "$argon2id$v=19$m=4194304,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"memory overflow", "$argon2id$v=19$m=99999999999999999999,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"memory wraps uint32", "$argon2id$v=19$m=4294967552,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"huge time", "$argon2id$v=19$m=256,t=1000000,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"huge parallelism", "$argon2id$v=19$m=256,t=2,p=255$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"parallelism wraps uint8", "$argon2id$v=19$m=256,t=2,p=258$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"zero time", "$argon2id$v=19$m=256,t=0,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"zero parallelism", "$argon2id$v=19$m=256,t=2,p=0$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"memory below 8p", "$argon2id$v=19$m=8,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"negative memory", "$argon2id$v=19$m=-256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"plus sign", "$argon2id$v=19$m=+256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"leading zero", "$argon2id$v=19$m=0256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"hex", "$argon2id$v=19$m=0x100,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"parameters reordered", "$argon2id$v=19$t=2,m=256,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"missing parameter", "$argon2id$v=19$m=256,t=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"extra parameter", "$argon2id$v=19$m=256,t=2,p=2,keyid=x$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"space in parameters", "$argon2id$v=19$m=256, t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"padded salt", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA==$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"url base64", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$CmG_ArdjAjhr99ik-Vp2XQ"},
	{"bad base64 salt", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNh*HRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"newline in key", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7\nfwGcOW31oSE"},
	{"non-canonical trailing bits", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdB$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"short salt", "$argon2id$v=19$m=256,t=2,p=2$c2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"empty salt", "$argon2id$v=19$m=256,t=2,p=2$$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"short key", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40"},
	{"empty key", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$"},
	{"huge key", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$" + strings.Repeat("A", 120)},
	{"huge salt", "$argon2id$v=19$m=256,t=2,p=2$" + strings.Repeat("A", 120) + "$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"very long", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$" + strings.Repeat("A", 1<<20)},
	{"missing field", "$argon2id$v=19$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"extra field", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE$"},
	{"no leading dollar", "argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE"},
	{"trailing newline", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHRzb21lc2FsdA$C63DGsGMKpyLM40XjALOdOfE0rBx7nP7fwGcOW31oSE\n"},
}

func TestVerifyHostileHashes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range hostileHashes {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			ok, err := Verify(ctx, tc.encoded, "correct horse battery staple")
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Errorf("Verify = %v, %v; want false, ErrMalformedHash", ok, err)
			}
			if d := time.Since(start); d > 50*time.Millisecond {
				t.Errorf("rejecting took %v: work was done", d)
			}
			if !NeedsRehash(tc.encoded, Default) {
				t.Error("NeedsRehash = false for a malformed hash")
			}
		})
	}
}

func TestTampered(t *testing.T) {
	ctx := context.Background()
	h, err := Hash(ctx, "un mot de passe solide", TestParams)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndexByte(h, '$')
	// Change one character of the salt and of the key, and the parameters.
	for _, tampered := range []string{
		h[:i-1] + flip(h[i-1]) + h[i:],
		h[:i+1] + flip(h[i+1]) + h[i+2:],
		strings.Replace(h, "t=1", "t=2", 1),
		strings.Replace(h, "m=64", "m=72", 1),
	} {
		ok, err := Verify(ctx, tampered, "un mot de passe solide")
		if ok {
			t.Errorf("tampered hash %q verified", tampered)
		}
		if err != nil && !errors.Is(err, ErrMalformedHash) {
			t.Errorf("tampered hash %q: unexpected error %v", tampered, err)
		}
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestNeedsRehash(t *testing.T) {
	h, err := Hash(context.Background(), "un mot de passe solide", TestParams)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    Params
		want bool
	}{
		{"same", TestParams, false},
		{"default", Default, true},
		{"memory", Params{Memory: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, true},
		{"time", Params{Memory: 64, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, true},
		{"threads", Params{Memory: 64, Time: 1, Threads: 2, SaltLen: 16, KeyLen: 32}, true},
		{"salt length", Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 32, KeyLen: 32}, true},
		{"key length", Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 64}, true},
	} {
		if got := NeedsRehash(h, tc.p); got != tc.want {
			t.Errorf("%s: NeedsRehash = %v, want %v", tc.name, got, tc.want)
		}
	}
	if NeedsRehash(referenceHashes[2].encoded, Default) {
		t.Error("reference hash with Default parameters needs rehash")
	}
}

// TestSemaphore checks that at most NumCPU computations run at once and
// that a waiting caller can give up.
func TestSemaphore(t *testing.T) {
	// Fill every slot, as a flood of logins would.
	for range cap(sem) {
		sem <- struct{}{}
	}
	release := func() {
		for range cap(sem) {
			<-sem
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Hash(ctx, "x", TestParams); !errors.Is(err, context.DeadlineExceeded) {
		release()
		t.Fatalf("Hash with full semaphore: %v, want DeadlineExceeded", err)
	}
	if _, err := Verify(ctx, referenceHashes[0].encoded, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Verify with full semaphore: %v, want DeadlineExceeded", err)
	}
	if err := DummyVerify(ctx, "x", TestParams); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("DummyVerify with full semaphore: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("giving up took %v", d)
	}

	// A waiter proceeds as soon as a slot frees.
	done := make(chan error, 1)
	go func() {
		_, err := Hash(context.Background(), "x", TestParams)
		done <- err
	}()
	select {
	case err := <-done:
		release()
		t.Fatalf("Hash returned %v with every slot taken", err)
	case <-time.After(20 * time.Millisecond):
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Many concurrent callers all finish.
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			h, err := Hash(context.Background(), "un mot de passe solide", TestParams)
			if err != nil {
				t.Error(err)
				return
			}
			if ok, err := Verify(context.Background(), h, "un mot de passe solide"); !ok || err != nil {
				t.Errorf("Verify = %v, %v", ok, err)
			}
		})
	}
	wg.Wait()
	if len(sem) != 0 {
		t.Errorf("%d slots still held", len(sem))
	}
}

func TestDummyVerify(t *testing.T) {
	ctx := context.Background()
	if err := DummyVerify(ctx, "x", TestParams); err != nil {
		t.Fatal(err)
	}
	// Invalid parameters fall back to Default rather than doing no work.
	if err := DummyVerify(ctx, "x", Params{}); err != nil {
		t.Fatal(err)
	}
	// The dummy takes about as long as a real verification with the same
	// parameters (moderate ones, to keep the test fast).
	p := Params{Memory: 8 * 1024, Time: 2, Threads: 2, SaltLen: 16, KeyLen: 32}
	h, err := Hash(ctx, "un mot de passe solide", p)
	if err != nil {
		t.Fatal(err)
	}
	// Interleave and keep the fastest run of each, to resist a busy machine.
	realBest, dummyBest := time.Hour, time.Hour
	for range 7 {
		start := time.Now()
		Verify(ctx, h, "autre chose")
		realBest = min(realBest, time.Since(start))
		start = time.Now()
		DummyVerify(ctx, "autre chose", p)
		dummyBest = min(dummyBest, time.Since(start))
	}
	t.Logf("Verify %v, DummyVerify %v", realBest, dummyBest)
	if dummyBest < realBest/3 || dummyBest > realBest*3 {
		t.Errorf("DummyVerify took %v, Verify %v", dummyBest, realBest)
	}
}

func BenchmarkHashDefault(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		if _, err := Hash(ctx, "un mot de passe solide", Default); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashDefaultParallel(b *testing.B) {
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := Hash(ctx, "un mot de passe solide", Default); err != nil {
				b.Error(err)
			}
		}
	})
}

func BenchmarkHashTestParams(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		if _, err := Hash(ctx, "un mot de passe solide", TestParams); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzDecode checks that the hash parser never panics, that whatever it
// accepts is within bounds, and that accepted strings are canonical.
func FuzzDecode(f *testing.F) {
	for _, tc := range referenceHashes {
		f.Add(tc.encoded)
	}
	for _, tc := range hostileHashes {
		if len(tc.encoded) < 1000 {
			f.Add(tc.encoded)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := decode(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("decode(%q): error %v does not wrap ErrMalformedHash", s, err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("decode(%q) accepted out-of-bounds %+v: %v", s, p, err)
		}
		if got := encode(p, salt, key); got != s {
			t.Fatalf("decode(%q) accepted a non-canonical form of %q", s, got)
		}
	})
}
