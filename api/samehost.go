package api

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
)

// sameHost reports whether the request came over a connection that never
// leaves this machine: from a loopback address, or from the server's own
// address (Linux routes that through the loopback device too).
//
// There sendfile does not pay: the kernel hands the file's page-cache pages
// to the client's socket and the client's read does the one copy, from
// memory no CPU cache holds. A Go client that also hashes what it reads
// (go-containerregistry verifies every blob) then spends about a third more
// CPU per byte than when the server copies the file through a small buffer
// of its own, whose bytes are still in cache when the client reads them
// back. Over a real network the client reads from its own NIC's buffers
// whatever the server did, and sendfile saves the server a copy.
func sameHost(r *http.Request) bool {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return sameHostAddr(local, r.RemoteAddr)
}

// SameHost reports whether a connection between local and remote never
// leaves this machine (see sameHost); the server's connection settings
// follow it too.
func SameHost(local, remote net.Addr) bool {
	return remote != nil && sameHostAddr(local, remote.String())
}

func sameHostAddr(local net.Addr, remote string) bool {
	rp, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	ip := rp.Addr().Unmap()
	if ip.IsLoopback() {
		return true
	}
	if local == nil {
		return false
	}
	lp, err := netip.ParseAddrPort(local.String())
	return err == nil && lp.Addr().Unmap() == ip
}

// copyChunk is the buffer of a copy through user space: small enough to stay
// in a CPU cache between the server's write and the client's read, large
// enough that syscalls cost little per byte.
const copyChunk = 128 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyChunk); return &b }}

// copyThrough writes src to w with read and write calls through a pooled
// buffer (w's own ReadFrom would use sendfile).
func copyThrough(w io.Writer, src io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(writerOnly{w}, src, *bp)
}
