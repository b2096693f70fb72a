package local

import (
	"os"

	"golang.org/x/sys/unix"
)

// writebackEvery is how many bytes an upload writes before it asks the
// kernel to start writing them to disk, so that the fsync at commit only
// waits for the tail instead of the whole blob.
const writebackEvery = 16 << 20

// writebackWriter writes to f (opened for append at offset off) and starts
// writeback of each full stretch as it goes.
type writebackWriter struct {
	f       *os.File
	off     int64 // where the unflushed stretch starts
	pending int64
}

func (w *writebackWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.pending += int64(n)
	if w.pending >= writebackEvery {
		// Advisory: an error only means the final fsync does all the work.
		unix.SyncFileRange(int(w.f.Fd()), w.off, w.pending, unix.SYNC_FILE_RANGE_WRITE)
		w.off += w.pending
		w.pending = 0
	}
	return n, err
}
