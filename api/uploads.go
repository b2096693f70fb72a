package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/kvreg/kvreg/blobs"
	"github.com/opencontainers/go-digest"
)

func uploadLocation(name, id string) string { return "/v2/" + name + "/blobs/uploads/" + id }

// setUploadHeaders describes an upload in progress, named by ref in the
// request, with the reference its next request must use: a deferred
// upload's token stays in it until the upload has bytes (blobs.UploadRef).
func setUploadHeaders(h http.Header, name, ref string, size int64) {
	ref = blobs.UploadRef(ref, size)
	h.Set("Location", uploadLocation(name, ref))
	h.Set("Docker-Upload-UUID", ref)
	end := size - 1
	if end < 0 {
		end = 0
	}
	h.Set("Range", fmt.Sprintf("0-%d", end))
	h.Set("Content-Length", "0")
}

func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/"+string(d))
	h.Set("Docker-Content-Digest", string(d))
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) startUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	q := r.URL.Query()
	if m := q.Get("mount"); m != "" {
		d, err := parseDigest(m)
		if err != nil {
			return err
		}
		from := q.Get("from")
		if from != "" && !validName(from) {
			return apiErr(kNameInvalid, "invalid repository name %q in from", from)
		}
		// Only from repositories the caller may pull; a source it may not
		// read is answered as a blob that is not there.
		done := s.metrics.op("mount")
		ok, err := s.reg.MountIf(rt.name, from, d, s.pullable(info(r).caller))
		done()
		if err != nil {
			return err
		}
		if ok {
			blobCreated(w, rt.name, d)
			return nil
		}
		// Not mountable: fall through to an ordinary upload session.
	}
	if ds := q.Get("digest"); ds != "" {
		d, err := parseDigest(ds)
		if err != nil {
			return err
		}
		body := &clientBody{r: r.Body}
		defer s.metrics.op("commit_upload")()
		if _, err := s.reg.PutBlobFor(rt.name, d, body, r.ContentLength, s.cfg.MaxBlobBytes, s.clientKey(r, info(r))); err != nil {
			return body.blame(err)
		}
		blobCreated(w, rt.name, d)
		return nil
	}
	id, err := s.reg.StartUpload(rt.name)
	if err != nil {
		return err
	}
	setUploadHeaders(w.Header(), rt.name, id, 0)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// clientBody remembers whether reading the request body failed, so that a
// truncated or oversized body is answered as the client's error.
type clientBody struct {
	r   io.Reader
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.err = err
	}
	return n, err
}

// blame returns err, or a 4xx if the body's reading is what failed.
func (b *clientBody) blame(err error) error {
	if _, ok := classify(err); ok || b.err == nil {
		return err
	}
	return bodyError(b.err, kBlobUploadInvalid)
}

// contentRange parses "<start>-<end>" (optionally prefixed "bytes ").
func contentRange(v string) (start, end int64, ok bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "bytes ")
	a, b, found := strings.Cut(v, "-")
	if !found {
		return 0, 0, false
	}
	var err1, err2 error
	start, err1 = strconv.ParseInt(a, 10, 64)
	end, err2 = strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start || end-start+1 <= 0 {
		return 0, 0, false // the last: a length that overflows
	}
	return start, end, true
}

// appendChunk writes a request body to an upload, checking Content-Range.
func (s *Server) appendChunk(r *http.Request, rt route) (int64, error) {
	start, length := int64(-1), int64(-1)
	if cr := r.Header.Get("Content-Range"); cr != "" {
		st, end, ok := contentRange(cr)
		if !ok {
			size, err := s.reg.UploadSize(rt.name, rt.ref)
			if err != nil {
				return 0, err
			}
			return 0, s.rangeErr(rt, size, "invalid Content-Range %q", cr)
		}
		if r.ContentLength >= 0 && r.ContentLength != end-st+1 {
			return 0, apiErr(kSizeInvalid, "Content-Range %q does not match Content-Length %d", cr, r.ContentLength)
		}
		start, length = st, end-st+1
	}
	body := &clientBody{r: r.Body}
	size, err := s.reg.AppendUploadExact(rt.name, rt.ref, start, length, body, s.cfg.MaxBlobBytes)
	if err != nil {
		if ae, ok := classify(err); ok && ae.kind == kRangeInvalid {
			return 0, s.rangeErr(rt, size, "%v", err)
		}
		return 0, body.blame(err)
	}
	return size, nil
}

// rangeErr is a 416 that tells the client where the upload stands.
func (s *Server) rangeErr(rt route, size int64, format string, args ...any) error {
	e := apiErr(kRangeInvalid, format, args...)
	e.header = http.Header{}
	setUploadHeaders(e.header, rt.name, rt.ref, size)
	e.header.Del("Content-Length")
	return e
}

func (s *Server) patchUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	size, err := s.appendChunk(r, rt)
	if err != nil {
		return err
	}
	setUploadHeaders(w.Header(), rt.name, rt.ref, size)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Server) putUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	ds := r.URL.Query().Get("digest")
	if ds == "" {
		return apiErr(kDigestInvalid, "the digest query parameter is required")
	}
	d, err := parseDigest(ds)
	if err != nil {
		return err
	}
	if r.ContentLength != 0 {
		if _, err := s.appendChunk(r, rt); err != nil {
			return err
		}
	}
	done := s.metrics.op("commit_upload")
	_, err = s.reg.CommitUploadFor(rt.name, rt.ref, d, -1, s.clientKey(r, info(r)))
	done()
	if err != nil {
		return err
	}
	blobCreated(w, rt.name, d)
	return nil
}

func (s *Server) uploadStatus(w http.ResponseWriter, r *http.Request, rt route) error {
	size, err := s.reg.UploadSize(rt.name, rt.ref)
	if err != nil {
		return err
	}
	setUploadHeaders(w.Header(), rt.name, rt.ref, size)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) cancelUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	if err := s.reg.CancelUpload(rt.name, rt.ref); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
