package api

import (
	"net/http"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/refcount"
)

type indexBody struct {
	SchemaVersion int                   `json:"schemaVersion"`
	MediaType     string                `json:"mediaType"`
	Manifests     []refcount.Descriptor `json:"manifests"`
}

func (s *Server) referrers(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := blobs.ParseDigest(rt.ref)
	if err != nil {
		return apiErr(kDigestInvalid, "%v", err)
	}
	at := r.URL.Query().Get("artifactType")
	descs, err := s.reg.Referrers(rt.name, d, at)
	if err != nil {
		return err
	}
	if at != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, r, http.StatusOK, refcount.MediaTypeOCIIndex, indexBody{
		SchemaVersion: 2, MediaType: refcount.MediaTypeOCIIndex, Manifests: descs,
	})
}
