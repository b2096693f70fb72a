package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/opencontainers/go-digest"
)

func parseDigest(s string) (digest.Digest, error) {
	d, err := blobs.ParseDigest(s)
	if err != nil {
		return "", apiErr(kDigestInvalid, "%v", err)
	}
	return d, nil
}

func (s *Server) getBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	if rt.mirror != nil {
		return s.cachedBlob(w, r, rt)
	}
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	h := w.Header()
	if r.Method == http.MethodHead {
		size, err := s.reg.StatBlob(rt.name, d, true, s.clientKey(r, info(r)))
		if err != nil {
			return err
		}
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		h.Set("Accept-Ranges", "bytes")
		setDigestHeaders(h, d)
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if s.cfg.BlobRedirect > 0 {
		return s.redirectBlob(w, rt.name, d)
	}
	f, _, err := s.reg.OpenBlob(rt.name, d)
	if err != nil {
		return err
	}
	defer f.Close()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Cache-Control", "max-age=31536000")
	setDigestHeaders(h, d)
	// ServeContent answers Range and If-Range requests.
	http.ServeContent(w, r, "", time.Time{}, f)
	return nil
}

func (s *Server) deleteBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	defer s.metrics.op("delete_blob")()
	freed, err := s.reg.DeleteBlob(rt.name, d)
	if err != nil {
		return err
	}
	s.metrics.reclaimed.Add(float64(freed))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
