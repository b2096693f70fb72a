package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"sync/atomic"
)

// reqInfo is what the layers of one request learn about it, for the access
// log and the metrics written when it ends.
type reqInfo struct {
	id     string
	route  string // routeNames, or "metrics", "healthz", "readyz", "ui", "invalid", "other"
	caller principal
}

// reqInfoKey is the context key of a request's *reqInfo.
type reqInfoKey struct{}

// info returns the request's reqInfo (a fresh one for requests that did not
// come through ServeHTTP, which keeps handlers callable on their own).
func info(r *http.Request) *reqInfo {
	if ri, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{route: "other"}
}

func withInfo(r *http.Request, ri *reqInfo) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri))
}

var routeNames = [...]string{
	routeBase:        "base",
	routeCatalog:     "catalog",
	routeTags:        "tags",
	routeManifest:    "manifest",
	routeBlob:        "blob",
	routeUploadStart: "upload_start",
	routeUpload:      "upload",
	routeReferrers:   "referrers",
}

// requestID is the client's X-Request-Id when it is a sane token, or a new
// random one.
func requestID(r *http.Request) string {
	if v := r.Header.Get("X-Request-Id"); v != "" && len(v) <= 128 {
		ok := true
		for i := 0; i < len(v) && ok; i++ {
			c := v[i]
			ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
		}
		if ok {
			return v
		}
	}
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recorder remembers the status and counts the bytes of a response.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	bytes  int64
	stall  *stallGuard
	// sameHost: the client is on this machine (sameHost), where a copy
	// through user space serves it faster than sendfile.
	sameHost bool
}

func (w *recorder) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	w.stall.beforeWrite()
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the server's sendfile path for blobs (http.ServeContent
// copies an *os.File) while counting the bytes and renewing the stall
// deadline every sendChunk bytes; for a client on this machine it copies
// through user space instead (see sameHost).
func (w *recorder) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok || w.sameHost {
		return copyThrough(w, src)
	}
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	inner, limit := src, int64(-1)
	lr, isLimited := src.(*io.LimitedReader)
	if isLimited {
		inner, limit = lr.R, lr.N
	}
	var total int64
	var err error
	for limit < 0 || total < limit {
		chunk := int64(sendChunk)
		if limit >= 0 && limit-total < chunk {
			chunk = limit - total
		}
		w.stall.beforeWrite()
		var n int64
		n, err = rf.ReadFrom(&io.LimitedReader{R: inner, N: chunk})
		total += n
		w.bytes += n
		if err != nil || n < chunk {
			break
		}
	}
	if isLimited {
		lr.N -= total
	}
	return total, err
}

const sendChunk = 256 << 10

type writerOnly struct{ io.Writer }

// Unwrap lets http.ResponseController reach the connection.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n     atomic.Int64
	stall *stallGuard
}

func (b *countingBody) Read(p []byte) (int, error) {
	b.stall.beforeRead()
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	if err == io.EOF {
		b.stall.atEOF()
	}
	return n, err
}
