package api

import (
	"net/http"

	"github.com/opencontainers/go-digest"
)

// redirectBlob answers a blob GET with 307 Temporary Redirect to a
// presigned URL of the blob's bytes in the blob store, valid for
// Config.BlobRedirect, so that the bytes go from the store to the client
// without kvreg. Whether the caller gets the blob is decided as for bytes
// served here: the repository must link it visibly, and the store must hold
// it (else 404 BLOB_UNKNOWN, no redirect). The store answers Range itself;
// clients send the same request, Range included, to the Location.
func (s *Server) redirectBlob(w http.ResponseWriter, repo string, d digest.Digest) error {
	st, err := s.reg.StatBlobRecord(repo, d)
	if err != nil {
		return err
	}
	// The record's incarnation and location let the store presign with no
	// request to the storage.
	u, err := s.reg.Blobs().PresignGet(d, st.Created, st.Location, s.cfg.BlobRedirect)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Location", u)
	h.Set("Docker-Content-Digest", string(d))
	// The URL expires: no cache may keep the redirect past it.
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusTemporaryRedirect)
	return nil
}
