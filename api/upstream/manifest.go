package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
)

// The manifest types kvreg stores, the Accept header of every manifest
// request.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// ManifestTypes lists them.
var ManifestTypes = []string{MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifest, MediaTypeDockerList}

var acceptManifests = strings.Join(ManifestTypes, ", ")

// Manifest is a manifest as the upstream sent it.
type Manifest struct {
	MediaType string
	Digest    digest.Digest // sha256 of Bytes
	Bytes     []byte
}

// Manifest fetches the manifest ref (a tag or a digest) of repo. Its
// digest is the sha256 of its bytes; the Docker-Content-Digest the
// upstream announces, and a digest asked for, must match the bytes
// (ErrDigestMismatch). A body over the size limit is ErrTooLarge.
func (c *Client) Manifest(ctx context.Context, repo, ref string) (m Manifest, err error) {
	defer func() { c.counts.add(KindManifest, err) }()
	want, err := c.checkManifestRef(repo, ref)
	if err != nil {
		return Manifest{}, err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.get(ctx, http.MethodGet, repo, c.v2(repo, "manifests", ref), acceptManifests)
	if err != nil {
		return Manifest{}, err
	}
	if err := check(resp, http.StatusOK); err != nil {
		return Manifest{}, err
	}
	defer resp.Body.Close()
	where := fmt.Sprintf("GET %s", safeURL(resp.Request.URL))
	b, err := readLimited(resp.Body, c.cfg.MaxManifestBytes, "manifest")
	if err != nil {
		return Manifest{}, bodyError(ctx, resp, err)
	}
	m = Manifest{Bytes: b, Digest: digest.SHA256.FromBytes(b)}
	if err := verifyDigest(b, want, "asked for"); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", where, err)
	}
	if dcd := resp.Header.Get("Docker-Content-Digest"); dcd != "" {
		d, err := digest.Parse(dcd)
		if err != nil {
			return Manifest{}, fmt.Errorf("%w: %s: Docker-Content-Digest %q: %v", ErrInvalid, where, dcd, err)
		}
		if err := verifyDigest(b, d, "announced"); err != nil {
			return Manifest{}, fmt.Errorf("%s: %w", where, err)
		}
	}
	if cl := resp.ContentLength; cl >= 0 && cl != int64(len(b)) {
		return Manifest{}, fmt.Errorf("%w: %s: %d bytes, Content-Length %d", ErrDigestMismatch, where, len(b), cl)
	}
	if m.MediaType, err = manifestType(resp.Header.Get("Content-Type"), b); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", where, err)
	}
	return m, nil
}

// HeadManifest asks the upstream what ref of repo is now, without its
// body: for tag rechecks. An upstream that announces no
// Docker-Content-Digest is asked with a GET instead.
func (c *Client) HeadManifest(ctx context.Context, repo, ref string) (d digest.Digest, mediaType string, size int64, err error) {
	want, err := c.checkManifestRef(repo, ref)
	if err != nil {
		c.counts.add(KindManifestHead, err)
		return "", "", 0, err
	}
	d, mediaType, size, err = c.headManifest(ctx, repo, ref, want)
	c.counts.add(KindManifestHead, err)
	if err != nil || d != "" {
		return d, mediaType, size, err
	}
	m, err := c.Manifest(ctx, repo, ref)
	if err != nil {
		return "", "", 0, err
	}
	return m.Digest, m.MediaType, int64(len(m.Bytes)), nil
}

// headManifest is the HEAD; d is "" when the upstream announced no digest.
func (c *Client) headManifest(ctx context.Context, repo, ref string, want digest.Digest) (d digest.Digest, mediaType string, size int64, err error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.get(ctx, http.MethodHead, repo, c.v2(repo, "manifests", ref), acceptManifests)
	if err != nil {
		return "", "", 0, err
	}
	if err := check(resp, http.StatusOK); err != nil {
		return "", "", 0, err
	}
	resp.Body.Close()
	where := fmt.Sprintf("HEAD %s", safeURL(resp.Request.URL))
	dcd := resp.Header.Get("Docker-Content-Digest")
	if dcd == "" {
		return "", "", 0, nil
	}
	if d, err = digest.Parse(dcd); err != nil {
		return "", "", 0, fmt.Errorf("%w: %s: Docker-Content-Digest %q: %v", ErrInvalid, where, dcd, err)
	}
	if want != "" && d != want {
		return "", "", 0, fmt.Errorf("%w: %s: announces %s", ErrDigestMismatch, where, d)
	}
	if d.Algorithm() != digest.SHA256 {
		// Only a GET tells the sha256 kvreg keeps manifests by.
		return "", "", 0, nil
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	size = resp.ContentLength
	if size < 0 {
		if size, err = strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); err != nil {
			size = -1
		}
	}
	return d, mt, size, nil
}

func (c *Client) checkManifestRef(repo, ref string) (digest.Digest, error) {
	if err := checkRepo(repo); err != nil {
		return "", err
	}
	return checkRef(ref)
}

// verifyDigest checks that b hashes to d (nothing to check when d is "").
func verifyDigest(b []byte, d digest.Digest, what string) error {
	if d == "" {
		return nil
	}
	if !d.Algorithm().Available() {
		return fmt.Errorf("%w: digest %s %s: unknown algorithm", ErrInvalid, d, what)
	}
	if got := d.Algorithm().FromBytes(b); got != d {
		return fmt.Errorf("%w: digest %s %s, bytes hash to %s", ErrDigestMismatch, d, what, got)
	}
	return nil
}

// manifestType is the media type of a manifest: its Content-Type when
// that is a type kvreg stores, else the mediaType field of the manifest
// itself (some registries answer application/json).
func manifestType(contentType string, b []byte) (string, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if slices.Contains(ManifestTypes, mt) {
		return mt, nil
	}
	var body struct {
		MediaType string `json:"mediaType"`
	}
	if json.Unmarshal(b, &body) == nil && slices.Contains(ManifestTypes, body.MediaType) {
		return body.MediaType, nil
	}
	return "", fmt.Errorf("%w: manifest of type %q (Content-Type %q): not one kvreg stores", ErrInvalid, body.MediaType, contentType)
}
