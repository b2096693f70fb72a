package s3

import "sync"

// bufTiers are the sizes of the buffers an Append or Seal holds, below
// the part size. A buffer starts at the smallest size that fits what
// it must hold and grows as bytes come, so that the many small blobs of a
// push (configs, small layers) do not each hold a part's worth of memory
// while only a blob of a part or more does.
var bufTiers = [...]int{64 << 10, 256 << 10, 1 << 20, 4 << 20}

// buffers pools buffers of each tier and of the part size.
type buffers struct {
	partSize int
	pools    [len(bufTiers) + 1]sync.Pool
}

func (b *buffers) size(tier int) int {
	if tier < len(bufTiers) {
		return bufTiers[tier]
	}
	return b.partSize
}

// get returns a buffer of length n from the smallest tier that holds at
// least min(n+1, part size) bytes, so that a caller can read into it.
func (b *buffers) get(n int) []byte {
	for t := range b.pools {
		if sz := b.size(t); sz > n || t == len(bufTiers) {
			if p, ok := b.pools[t].Get().(*[]byte); ok {
				return (*p)[:n]
			}
			return make([]byte, n, sz)
		}
	}
	panic("unreachable")
}

// grow returns a buffer of the next tier holding buf's bytes, and puts buf
// back. buf is full and shorter than a part.
func (b *buffers) grow(buf []byte) []byte {
	next := b.get(cap(buf))
	copy(next, buf)
	b.put(buf)
	return next
}

// put gives a buffer back to its tier's pool.
func (b *buffers) put(buf []byte) {
	for t := range b.pools {
		if cap(buf) == b.size(t) {
			buf = buf[:0]
			b.pools[t].Put(&buf)
			return
		}
	}
}
