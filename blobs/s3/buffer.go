package s3

// bufTiers are the sizes of the buffers an Append or Seal holds, below
// the part size. A buffer starts at the smallest size that fits what
// it must hold and grows as bytes come, so that the many small blobs of a
// push (configs, small layers) do not each hold a part's worth of memory
// while only a blob of a part or more does.
var bufTiers = [...]int{64 << 10, 256 << 10, 1 << 20, 4 << 20}

// bufKeep is how many idle buffers each tier keeps, the part size's last:
// at most 46 MiB with 8 MiB parts. Kept in free lists rather than
// sync.Pools, which a garbage collection empties: under a push of many
// blobs collections come often, and every upload then allocated its
// buffers anew, which is what made the heap (and the resident size) grow.
var bufKeep = [len(bufTiers) + 1]int{32, 16, 8, 4, 2}

// buffers keeps idle buffers of each tier and of the part size.
type buffers struct {
	partSize int
	free     [len(bufTiers) + 1]chan []byte
}

func newBuffers(partSize int) *buffers {
	b := &buffers{partSize: partSize}
	for t := range b.free {
		b.free[t] = make(chan []byte, bufKeep[t])
	}
	return b
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
	t := 0
	for t < len(bufTiers) && b.size(t) <= n {
		t++
	}
	select {
	case buf := <-b.free[t]:
		return buf[:n]
	default:
		return make([]byte, n, b.size(t))
	}
}

// grow returns a buffer of the next tier holding buf's bytes, and puts buf
// back. buf is full and shorter than a part.
func (b *buffers) grow(buf []byte) []byte {
	next := b.get(cap(buf))
	copy(next, buf)
	b.put(buf)
	return next
}

// put gives a buffer back to its tier's free list, or to the garbage
// collector when the list is full.
func (b *buffers) put(buf []byte) {
	for t := range b.free {
		if cap(buf) == b.size(t) {
			select {
			case b.free[t] <- buf[:0]:
			default:
			}
			return
		}
	}
}
