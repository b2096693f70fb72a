package api

import (
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/kvreg/kvreg/blobs"
	"github.com/opencontainers/go-digest"
)

// reference parses a manifest reference: a digest (anything with a colon)
// or a tag.
func reference(ref string) (digest.Digest, string, *Error) {
	if strings.Contains(ref, ":") {
		d, err := blobs.ParseDigest(ref)
		if err != nil {
			return "", "", apiErr(kDigestInvalid, "%v", err)
		}
		return d, "", nil
	}
	if !validTag(ref) {
		return "", "", apiErr(kManifestInvalid, "invalid tag %q", ref)
	}
	return "", ref, nil
}

func setDigestHeaders(h http.Header, d digest.Digest) {
	h.Set("Docker-Content-Digest", string(d))
	h.Set("ETag", `"`+string(d)+`"`)
}

// lookupReference is reference for reads and deletes: a tag that could not
// have been pushed is simply unknown.
func lookupReference(ref string) (digest.Digest, string, *Error) {
	d, tag, err := reference(ref)
	if err != nil && err.kind == kManifestInvalid {
		return "", "", apiErr(kManifestUnknown, "manifest unknown: %q is not a valid tag", ref)
	}
	return d, tag, err
}

func (s *Server) getManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	if _, _, err := lookupReference(rt.ref); err != nil {
		return err
	}
	if rt.mirror != nil {
		return s.cachedManifest(w, r, rt)
	}
	head := r.Method == http.MethodHead
	info, err := s.reg.GetManifest(rt.name, rt.ref, !head)
	if err != nil {
		return err
	}
	if !head {
		s.notePull(rt.name, info.Digest)
	}
	// The exact bytes pushed, whatever the Accept header says.
	h := w.Header()
	h.Set("Content-Type", info.MediaType)
	h.Set("Content-Length", strconv.FormatInt(info.Size, 10))
	setDigestHeaders(h, info.Digest)
	w.WriteHeader(http.StatusOK)
	if !head {
		w.Write(info.Content)
		s.pulled(r, rt, info)
	}
	return nil
}

func (s *Server) putManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	d, tag, aerr := reference(rt.ref)
	if aerr != nil {
		return aerr
	}
	var tags []string
	if tag != "" {
		tags = []string{tag}
	}
	extra := r.URL.Query()["tag"]
	if len(extra) > 0 && d == "" {
		return apiErr(kManifestInvalid, "tag query parameters go with a push by digest")
	}
	if len(extra) > 100 {
		return apiErr(kManifestInvalid, "at most 100 tags per request")
	}
	for _, t := range extra {
		if !validTag(t) {
			return apiErr(kManifestInvalid, "invalid tag %q", t)
		}
		tags = append(tags, t)
	}
	if r.ContentLength > s.cfg.MaxManifestBytes {
		return apiErr(kManifestTooLarge, "manifest of %d bytes is over the limit of %d", r.ContentLength, s.cfg.MaxManifestBytes)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxManifestBytes+1))
	if err != nil {
		return bodyError(err, kManifestInvalid)
	}
	if int64(len(body)) > s.cfg.MaxManifestBytes {
		return apiErr(kManifestTooLarge, "manifest is over the limit of %d bytes", s.cfg.MaxManifestBytes)
	}
	if r.ContentLength >= 0 && int64(len(body)) != r.ContentLength {
		return apiErr(kSizeInvalid, "body has %d bytes, Content-Length says %d", len(body), r.ContentLength)
	}
	done := s.metrics.op("put_manifest")
	res, err := s.reg.PutManifestBy(s.origin(r), rt.name, d, tags, r.Header.Get("Content-Type"), body, s.clientKey(r, info(r)))
	done()
	if err != nil {
		return err
	}
	s.metrics.reclaimed.Add(float64(res.Reclaimed))
	h := w.Header()
	h.Set("Location", "/v2/"+rt.name+"/manifests/"+string(res.Digest))
	setDigestHeaders(h, res.Digest)
	if res.Subject != "" {
		h.Set("OCI-Subject", res.Subject)
	}
	if len(extra) > 0 {
		h.Set("OCI-Tag", strings.Join(extra, ", "))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) deleteManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	d, tag, aerr := lookupReference(rt.ref)
	if aerr != nil {
		return aerr
	}
	var err error
	var freed int64
	if d != "" {
		defer s.metrics.op("delete_manifest")()
		freed, err = s.reg.DeleteManifestBy(s.origin(r), rt.name, d)
	} else {
		defer s.metrics.op("delete_tag")()
		freed, err = s.reg.DeleteTagBy(s.origin(r), rt.name, tag)
	}
	if err != nil {
		return err
	}
	s.metrics.reclaimed.Add(float64(freed))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
