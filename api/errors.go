package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/manifest"
)

// kind is an error's identity; table gives each its OCI code and status.
type kind int

const (
	kBlobUnknown kind = iota
	kBlobUploadInvalid
	kBlobUploadUnknown
	kDigestInvalid
	kManifestBlobUnknown
	kManifestInvalid
	kManifestUnknown
	kNameInvalid
	kNameUnknown
	kSizeInvalid
	kUnauthorized
	kDenied
	kUnsupported
	kTooManyRequests
	kRangeInvalid     // an out-of-order chunk: the spec demands 416
	kManifestTooLarge // over the manifest size limit: the spec says 413
	kBlobTooLarge     // over the blob size limit
	kInUse            // deleting would break a manifest that uses it
	kMethodNotAllowed // no such operation on this route
	kPageInvalid      // n of a listing is not a non-negative integer
	kUnavailable      // the database or blob storage does not answer now; the client may retry
	kInternal         // the server failed; the cause is logged, not sent
	kBadRequest       // a token request that cannot be answered as asked
)

var table = [...]struct {
	code   string
	status int
}{
	kBlobUnknown:         {"BLOB_UNKNOWN", http.StatusNotFound},
	kBlobUploadInvalid:   {"BLOB_UPLOAD_INVALID", http.StatusBadRequest},
	kBlobUploadUnknown:   {"BLOB_UPLOAD_UNKNOWN", http.StatusNotFound},
	kDigestInvalid:       {"DIGEST_INVALID", http.StatusBadRequest},
	kManifestBlobUnknown: {"MANIFEST_BLOB_UNKNOWN", http.StatusBadRequest},
	kManifestInvalid:     {"MANIFEST_INVALID", http.StatusBadRequest},
	kManifestUnknown:     {"MANIFEST_UNKNOWN", http.StatusNotFound},
	kNameInvalid:         {"NAME_INVALID", http.StatusBadRequest},
	kNameUnknown:         {"NAME_UNKNOWN", http.StatusNotFound},
	kSizeInvalid:         {"SIZE_INVALID", http.StatusBadRequest},
	kUnauthorized:        {"UNAUTHORIZED", http.StatusUnauthorized},
	kDenied:              {"DENIED", http.StatusForbidden},
	kUnsupported:         {"UNSUPPORTED", http.StatusMethodNotAllowed},
	kTooManyRequests:     {"TOOMANYREQUESTS", http.StatusTooManyRequests},
	kRangeInvalid:        {"BLOB_UPLOAD_INVALID", http.StatusRequestedRangeNotSatisfiable},
	kManifestTooLarge:    {"SIZE_INVALID", http.StatusRequestEntityTooLarge},
	kBlobTooLarge:        {"SIZE_INVALID", http.StatusRequestEntityTooLarge},
	kInUse:               {"DENIED", http.StatusConflict},
	kMethodNotAllowed:    {"UNSUPPORTED", http.StatusMethodNotAllowed},
	kPageInvalid:         {"PAGINATION_NUMBER_INVALID", http.StatusBadRequest},
	kUnavailable:         {"UNAVAILABLE", http.StatusServiceUnavailable},
	kInternal:            {"UNKNOWN", http.StatusInternalServerError},
	kBadRequest:          {"UNSUPPORTED", http.StatusBadRequest},
}

// Error is an error a handler returns to be written as the spec's JSON body.
type Error struct {
	kind    kind
	message string
	detail  any
	header  http.Header // extra response headers (e.g. Range on a 416)
}

func (e *Error) Error() string { return table[e.kind].code + ": " + e.message }

// unavailable is a 503 that asks the client to come back in a second.
func unavailable(msg string) *Error {
	e := apiErr(kUnavailable, "%s", msg)
	e.header = http.Header{"Retry-After": []string{"1"}}
	return e
}

func apiErr(k kind, format string, args ...any) *Error {
	return &Error{kind: k, message: fmt.Sprintf(format, args...)}
}

// classify turns any error from the packages below into an API error;
// anything unknown is a 500 whose cause is logged, not sent.
func classify(err error) (*Error, bool) {
	var ae *Error
	if errors.As(err, &ae) {
		return ae, true
	}
	if me, ok := refcount.IsMissing(err); ok {
		return &Error{kind: kManifestBlobUnknown, message: me.Error(), detail: map[string]any{"digests": me.Digests}}, true
	}
	switch {
	case errors.Is(err, refcount.ErrNameUnknown) && !errors.Is(err, refcount.ErrManifestUnknown):
		return apiErr(kNameUnknown, "repository name not known to registry"), true
	case errors.Is(err, refcount.ErrManifestUnknown):
		if errors.Is(err, refcount.ErrNameUnknown) {
			return apiErr(kNameUnknown, "repository name not known to registry"), true
		}
		return apiErr(kManifestUnknown, "manifest unknown to registry"), true
	case errors.Is(err, refcount.ErrBlobUnknown), errors.Is(err, blobs.ErrNotFound):
		return apiErr(kBlobUnknown, "blob unknown to registry"), true
	case errors.Is(err, manifest.ErrInvalid):
		return apiErr(kManifestInvalid, "%s", err.Error()), true
	case errors.Is(err, refcount.ErrDigestMismatch), errors.Is(err, blobs.ErrDigestMismatch):
		return apiErr(kDigestInvalid, "%s", err.Error()), true
	case errors.Is(err, blobs.ErrDigestInvalid):
		return apiErr(kDigestInvalid, "%s", err.Error()), true
	case errors.Is(err, refcount.ErrQuota):
		return apiErr(kDenied, "%s", err.Error()), true
	case errors.Is(err, refcount.ErrInUse):
		return apiErr(kInUse, "%s", err.Error()), true
	case errors.Is(err, refcount.ErrImmutable), errors.Is(err, refcount.ErrRetention):
		return apiErr(kDenied, "%s", err.Error()), true
	case errors.Is(err, blobs.ErrUploadUnknown):
		return apiErr(kBlobUploadUnknown, "blob upload unknown to registry"), true
	case errors.Is(err, blobs.ErrRangeInvalid):
		return apiErr(kRangeInvalid, "%s", err.Error()), true
	case errors.Is(err, blobs.ErrTooLarge):
		return apiErr(kBlobTooLarge, "%s", err.Error()), true
	case errors.Is(err, blobs.ErrNoSpace):
		return apiErr(kBlobTooLarge, "no space left on the registry's disk for this upload; it was discarded"), true
	case errors.Is(err, kv.ErrNoSpace):
		return apiErr(kBlobTooLarge, "no space left on the registry's disk; nothing was stored"), true
	case errors.Is(err, blobs.ErrSizeInvalid):
		return apiErr(kSizeInvalid, "%s", err.Error()), true
	case errors.Is(err, blobs.ErrRecordUnknown):
		return unavailable("the registry's database did not say whether the blob was stored; send the commit again"), true
	case errors.Is(err, kv.ErrUnavailable):
		return unavailable("the registry's database is not answering; try again shortly"), true
	case errors.Is(err, blobs.ErrUnavailable):
		return unavailable("the registry's blob storage is not answering; try again shortly"), true
	case errors.Is(err, blobs.ErrLockUnavailable):
		return unavailable("the registry could not take a lock shared with its other processes; try again shortly"), true
	case errors.Is(err, kv.ErrConflict):
		return unavailable("the registry is too busy with conflicting writes; try again shortly"), true
	}
	return nil, false
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError is the one place that writes an error response.
func writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	ent := table[e.kind]
	for k, vs := range e.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: ent.code, Message: e.message, Detail: e.detail}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(ent.status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
