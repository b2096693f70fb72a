package s3

import (
	"bytes"
	"testing"
)

// A buffer starts in the smallest tier that has room past what it must
// hold, grows tier by tier keeping its bytes, and tops out at the part
// size.
func TestBuffersGrowByTier(t *testing.T) {
	b := newBuffers(6 << 20)
	for _, c := range []struct{ n, cap int }{
		{0, 64 << 10}, {64<<10 - 1, 64 << 10}, {64 << 10, 256 << 10}, {1 << 20, 4 << 20}, {4 << 20, 6 << 20}, {6<<20 - 1, 6 << 20},
	} {
		buf := b.get(c.n)
		if len(buf) != c.n || cap(buf) != c.cap {
			t.Errorf("get(%d): len %d cap %d, want cap %d", c.n, len(buf), cap(buf), c.cap)
		}
		b.put(buf)
	}
	buf := b.get(0)
	var want []byte
	for i := 0; cap(buf) < b.partSize; i++ {
		buf = buf[:cap(buf)]
		for j := range buf[len(want):] {
			buf[len(want)+j] = byte(i + j)
		}
		want = append(want[:0], buf...)
		buf = b.grow(buf)
		if !bytes.Equal(buf, want) {
			t.Fatalf("grow to %d lost bytes", cap(buf))
		}
	}
	if cap(buf) != b.partSize {
		t.Fatalf("top tier %d, want the part size", cap(buf))
	}
}

// Chunks of exactly a tier's size, and a byte either side, are stored
// whole: the byte looked for past a full buffer is kept, and its absence
// ends the chunk.
func TestAppendAtTierSizes(t *testing.T) {
	d := newDriver(t)
	var want []byte
	if err := d.CreateUpload("tiers", "r"); err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{64<<10 - 1, 64 << 10, 64<<10 + 1, 256 << 10, 1 << 20, 4 << 20} {
		want = append(want, appendAll(t, d, "tiers", randomBytes(n, uint64(i)))...)
	}
	if err := d.Seal("tiers"); err != nil {
		t.Fatal(err)
	}
	if got := readUpload(t, d, "tiers"); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d, equal %v", len(got), len(want), bytes.Equal(got, want))
	}
}
